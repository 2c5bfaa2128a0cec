//! A downstream service in miniature: `POST /notes` enqueues a note, a worker "embeds" it with a
//! toy hash embedding and stores it in Qdrant under the service's project, `GET /notes/search`
//! finds notes of that project. It knows nothing of the harness: its tests bring that in.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use qdrant_client::qdrant::{
    Condition, Filter, PointStruct, QueryPointsBuilder, UpsertPointsBuilder,
};
use qdrant_client::Qdrant;
use queue::{ClaimedJob, JobFailure, NewJob, Queue};
use serde::Deserialize;
use serde_json::{json, Value};

/// Dimensions of the toy embedding.
pub const DIM: u64 = 8;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Where notes are enqueued.
    pub queue: Queue,
    /// Where notes are stored.
    pub qdrant: Arc<Qdrant>,
    /// The collection.
    pub collection: String,
    /// The tenant this instance serves.
    pub project: String,
}

/// The service's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/notes", post(add_note))
        .route("/notes/search", get(search_notes))
        .with_state(state)
}

#[derive(Deserialize)]
struct NewNote {
    text: String,
}

async fn add_note(
    State(state): State<AppState>,
    Json(note): Json<NewNote>,
) -> (StatusCode, Json<Value>) {
    if note.text.trim().is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "text must not be empty" })),
        );
    }
    let job = NewJob::new(json!({ "text": note.text, "project": state.project }));
    match state.queue.enqueue(job).await {
        Ok(id) => (StatusCode::ACCEPTED, Json(json!({ "job_id": id }))),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": "could not enqueue" })),
        ),
    }
}

#[derive(Deserialize)]
struct SearchQuery {
    q: String,
}

async fn search_notes(
    State(state): State<AppState>,
    Query(query): Query<SearchQuery>,
) -> (StatusCode, Json<Value>) {
    let request = QueryPointsBuilder::new(&state.collection)
        .query(embed(&query.q))
        .filter(Filter::must([Condition::matches(
            "project",
            state.project.clone(),
        )]))
        .limit(10)
        .with_payload(true);
    match state.qdrant.query(request).await {
        Ok(response) => {
            let notes: Vec<Value> = response
                .result
                .iter()
                .filter_map(|p| p.payload.get("text").and_then(|v| v.as_str().cloned()))
                .map(Value::from)
                .collect();
            (StatusCode::OK, Json(json!({ "notes": notes })))
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "search unavailable" })),
        ),
    }
}

/// The worker's job: store the note with its embedding under its project.
pub async fn store_note(
    job: ClaimedJob,
    qdrant: Arc<Qdrant>,
    collection: String,
) -> Result<(), JobFailure> {
    let (Some(text), Some(project)) = (
        job.payload["text"].as_str(),
        job.payload["project"].as_str(),
    ) else {
        return Err(JobFailure::permanent("a note needs text and project"));
    };
    let point = PointStruct::new(
        job.id.unsigned_abs(),
        embed(text),
        [
            ("text", json!(text).into()),
            ("project", json!(project).into()),
        ],
    );
    qdrant
        .upsert_points(UpsertPointsBuilder::new(collection, vec![point]).wait(true))
        .await
        .map(|_| ())
        .map_err(|e| JobFailure::transient(format!("qdrant: {e}")))
}

/// A deterministic toy embedding.
pub fn embed(text: &str) -> Vec<f32> {
    let mut v = vec![0.05f32; DIM as usize];
    for (i, word) in text.split_whitespace().enumerate() {
        let h = word
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        v[(h as usize + i) % DIM as usize] += 1.0;
    }
    v
}
