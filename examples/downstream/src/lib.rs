//! A downstream service in miniature: `POST /notes` enqueues a note, a worker "embeds" it with a
//! toy hash embedding, stores it in Qdrant under the service's project and logs it in the
//! service's own table (`notes_log`, in the transaction that completes the job), and
//! `GET /notes/search` finds notes of that project. It knows nothing of the harness: its tests
//! bring that in.
//!
//! `GET /notes/count` carries a planted bug: it counts the collection's points without the
//! project filter, the mistake that breaks multi-tenant production and makes tests "pass alone
//! but fail in parallel". The tests show the harness catching it.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, Filter, PointStruct, QueryPointsBuilder, UpsertPointsBuilder,
};
use qdrant_client::Qdrant;
use queue::worker::{Handler, JobReport, Ran, RecordError};
use queue::{ClaimedJob, JobFailure, NewJob, Queue};
use serde::Deserialize;
use serde_json::{json, Value};

/// Dimensions of the toy embedding.
pub const DIM: u64 = 8;

/// The service's own migrations (its `notes_log` table), applied after the queue's.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

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
        .route("/notes/count", get(count_notes))
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

/// The planted bug: counts every tenant's notes (no project filter).
async fn count_notes(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state
        .qdrant
        .count(CountPointsBuilder::new(&state.collection).exact(true))
        .await
    {
        Ok(response) => (
            StatusCode::OK,
            Json(json!({ "count": response.result.map_or(0, |r| r.count) })),
        ),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": error.to_string() })),
        ),
    }
}

/// The worker's job: store the note with its embedding under its project, and log it in
/// `notes_log` in the transaction that completes the job.
#[derive(Clone)]
pub struct NoteWorker {
    /// Where notes are stored.
    pub qdrant: Arc<Qdrant>,
    /// The collection.
    pub collection: String,
}

/// What a stored note leaves to log.
pub struct Stored {
    project: String,
    text: String,
}

impl Handler for NoteWorker {
    type Output = Option<Stored>;
    const RECORDS: bool = true;

    async fn run(&self, job: ClaimedJob) -> Ran<Option<Stored>> {
        let (Some(text), Some(project)) = (
            job.payload["text"].as_str(),
            job.payload["project"].as_str(),
        ) else {
            return Ran {
                result: Err(JobFailure::permanent("a note needs text and project")),
                output: None,
            };
        };
        let point = PointStruct::new(
            job.id.unsigned_abs(),
            embed(text),
            [
                ("text", json!(text).into()),
                ("project", json!(project).into()),
            ],
        );
        let stored = self
            .qdrant
            .upsert_points(UpsertPointsBuilder::new(&self.collection, vec![point]).wait(true))
            .await;
        match stored {
            Ok(_) => Ran {
                result: Ok(()),
                output: Some(Stored {
                    project: project.to_owned(),
                    text: text.to_owned(),
                }),
            },
            Err(error) => Ran {
                result: Err(JobFailure::transient(format!("qdrant: {error}"))),
                output: None,
            },
        }
    }

    async fn record(
        &self,
        tx: &mut sqlx::PgConnection,
        report: &JobReport,
        output: Option<&Option<Stored>>,
    ) -> Result<(), RecordError> {
        if let Some(Some(stored)) = output {
            sqlx::query("INSERT INTO notes_log (project, note, job_id) VALUES ($1, $2, $3)")
                .bind(&stored.project)
                .bind(&stored.text)
                .bind(report.id)
                .execute(tx)
                .await?;
        }
        Ok(())
    }
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
