//! Re-indexing one path: whatever order requests are worked in, and however they overlap, the
//! path ends with the newest request's chunks only.

use std::cmp::Reverse;

use queue::worker::{Outcome, Worker, WorkerConfig};
use serde_json::Value;
use service::worker::IndexHandler;

use crate::support::{spawn_app_with, TestApp, TestResult};

/// The hits of a search for `query`, as (path, content).
async fn hits(app: &TestApp, query: &str) -> anyhow::Result<Vec<(String, String)>> {
    let results = app.search(query).await?;
    Ok(results["hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .map(|hit| {
                    let text = |field: &str| hit[field].as_str().unwrap_or("").to_owned();
                    (text("path"), text("content"))
                })
                .collect()
        })
        .unwrap_or_default())
}

#[tokio::test]
async fn an_older_request_worked_last_does_not_bring_its_chunks_back() -> TestResult {
    // Arrange: two requests for one path, no background workers.
    let app = spawn_app_with(|settings| settings.worker.concurrency = 0).await?;
    let older = app
        .index_files(&[(
            "src/lib.rs",
            "/// Parses a JSON file.\npub fn parse_json() {}\n",
        )])
        .await?;
    let newer = app
        .index_files(&[("src/lib.rs", "/// Computes primes.\npub fn primes() {}\n")])
        .await?;

    // Act: the newer request is worked first, the older one last.
    let worker = app.worker();
    let mut claimed = app.queue.claim(2, "test").await?;
    claimed.sort_by_key(|job| Reverse(job.id));
    for job in claimed {
        worker.work(job).await?;
    }

    // Assert: only the newer content is stored; the older request says it was superseded.
    assert_eq!(app.state.indexer.store().count(&app.project).await?, 1);
    let found = hits(&app, "parse a json file").await?;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].1.contains("primes"), "{found:?}");
    let newer: Value = app.wait_for_job(newer).await?;
    assert_eq!(newer["files"]["done"], 1, "{newer}");
    let older: Value = app.wait_for_job(older).await?;
    assert_eq!(older["status"], "completed", "{older}");
    assert_eq!(older["files"]["skipped"], 1, "{older}");
    let reason = older["issues"][0]["skip_reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("superseded"), "{older}");
    Ok(())
}

#[tokio::test]
async fn overlapping_re_indexes_of_one_path_leave_the_newest_version_only() -> TestResult {
    // Arrange: four versions of one file of 300 functions each, worked all at once: their
    // batches take turns in the model, so they finish embedding together and store at once.
    let app = spawn_app_with(|settings| settings.worker.concurrency = 0).await?;
    let versions = 4;
    for version in 0..versions {
        let content: String = (0..300)
            .map(|i| format!("pub fn v{version}_f{i}() -> u32 {{ {i} }}\n\n"))
            .collect();
        app.index_files(&[("src/lib.rs", content.as_str())]).await?;
    }
    let handler = IndexHandler::new(
        app.state.indexer.clone(),
        &app.queue,
        app.settings.worker.index_config(&app.settings.repository),
    );
    let config = WorkerConfig {
        concurrency: versions,
        maintenance: None,
        ..WorkerConfig::default()
    };
    let worker = Worker::new(app.queue.clone(), handler, config);

    // Act
    let Outcome::Processed(reports) = worker.run_once().await? else {
        anyhow::bail!("nothing was claimed");
    };

    // Assert: the newest version's 300 chunks, and nothing of the others.
    assert_eq!(reports.len(), versions);
    assert_eq!(app.state.indexer.store().count(&app.project).await?, 300);
    let newest = format!("v{}_", versions - 1);
    for (path, content) in hits(&app, "function").await? {
        assert!(content.contains(&newest), "{path}: {content}");
    }
    Ok(())
}
