//! A toy job for these tests: "index" a document by upserting one point into the environment's
//! collection under its project, with a vector derived from the text.

use std::time::Duration;

use harness::queue::{ClaimedJob, JobFailure};
use harness::ScopedQdrant;
use qdrant_client::qdrant::PointStruct;
use serde_json::json;

pub type TestResult = anyhow::Result<()>;

pub const WAIT: Duration = Duration::from_secs(60);
pub const DIM: u64 = 8;

/// A deterministic vector for `text`.
pub fn vector(text: &str) -> Vec<f32> {
    let mut v = vec![0.1f32; DIM as usize];
    for (i, b) in text.bytes().enumerate() {
        v[i % DIM as usize] += f32::from(b) / 255.0;
    }
    v
}

/// A handler that stores the job's `doc` as a point of `scoped`'s project.
pub fn indexer(
    scoped: ScopedQdrant,
    project: String,
) -> impl Fn(
    ClaimedJob,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), JobFailure>> + Send>>
       + Send
       + Sync
       + 'static {
    move |job: ClaimedJob| {
        let (scoped, project) = (scoped.clone(), project.clone());
        Box::pin(async move {
            let doc = job.payload["doc"].as_str().unwrap_or_default().to_owned();
            let point = PointStruct::new(
                job.id as u64,
                vector(&doc),
                [
                    ("project", json!(project).into()),
                    ("doc", json!(doc).into()),
                ],
            );
            scoped
                .upsert(vec![point])
                .await
                .map_err(|e| JobFailure::transient(e.to_string()))
        })
    }
}

/// The `doc` payloads of points found by a project-scoped search.
pub fn docs(points: &[qdrant_client::qdrant::ScoredPoint]) -> Vec<String> {
    let mut docs: Vec<String> = points
        .iter()
        .filter_map(|p| p.payload.get("doc").and_then(|v| v.as_str().cloned()))
        .collect();
    docs.sort();
    docs
}
