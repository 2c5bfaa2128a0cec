//! The admin API under `/admin/queue`, behind `Authorization: Bearer <ADMIN_TOKEN>` (compared in
//! constant time; 401 without it, and always when no token is configured): stats, pause, resume,
//! drain and redrive.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use queue::{JobId, JobStatus, QueueStats};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, AppState};

/// Drain wait when no `timeout_ms` is given.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest drain wait accepted.
pub const MAX_DRAIN_TIMEOUT: Duration = Duration::from_secs(300);

/// How often drain looks at the queue.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// The admin routes, with the token check on every one of them.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/admin/queue", get(queue_stats))
        .route("/admin/queue/pause", post(pause))
        .route("/admin/queue/resume", post(resume))
        .route("/admin/queue/drain", post(drain))
        .route("/admin/queue/redrive", post(redrive))
        .route_layer(middleware::from_fn_with_state(state, require_admin))
}

/// Refuses a request without the admin bearer token.
async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    match token {
        Some(token) if state.is_admin_token(token) => Ok(next.run(request).await),
        _ => Err(ApiError::Unauthorized),
    }
}

/// A queue's state as the admin API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct QueueView {
    /// The queue.
    pub queue_id: String,
    /// Whether claims are paused.
    pub paused: bool,
    /// Rows not finished yet.
    pub depth: i64,
    /// Rows being processed.
    pub in_flight: i64,
    /// Rows by status.
    pub by_status: std::collections::BTreeMap<String, i64>,
}

fn view(state: &AppState, stats: &QueueStats) -> QueueView {
    QueueView {
        queue_id: state.queue.id().to_string(),
        paused: stats.paused,
        depth: stats.depth(),
        in_flight: stats.count(JobStatus::Processing),
        by_status: stats
            .by_status
            .iter()
            .map(|(status, count)| ((*status).to_owned(), *count))
            .collect(),
    }
}

/// `GET /admin/queue`: counts by status and the pause switch.
pub async fn queue_stats(State(state): State<AppState>) -> Result<Json<QueueView>, ApiError> {
    let stats = state.queue.stats().await?;
    Ok(Json(view(&state, &stats)))
}

/// `POST /admin/queue/pause`: no worker of any process claims until resume.
pub async fn pause(State(state): State<AppState>) -> Result<Json<QueueView>, ApiError> {
    state.queue.pause().await?;
    queue_stats(State(state)).await
}

/// `POST /admin/queue/resume`: claims go on, idle workers are woken.
pub async fn resume(State(state): State<AppState>) -> Result<Json<QueueView>, ApiError> {
    state.queue.resume().await?;
    queue_stats(State(state)).await
}

/// Query string of `POST /admin/queue/drain`.
#[derive(Debug, Deserialize)]
pub struct DrainParams {
    /// How long to wait, in milliseconds (default 30,000, at most 300,000).
    pub timeout_ms: Option<u64>,
}

/// `POST /admin/queue/drain?timeout_ms=`: waits until no row is in flight (processing). 200 with
/// the queue's state once drained, 504 with it on timeout. Pause first to stop new claims.
pub async fn drain(
    State(state): State<AppState>,
    params: Result<Query<DrainParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params?;
    let timeout = params
        .timeout_ms
        .map_or(DEFAULT_DRAIN_TIMEOUT, Duration::from_millis);
    if timeout > MAX_DRAIN_TIMEOUT {
        return Err(ApiError::BadRequest(format!(
            "timeout_ms must be at most {}",
            MAX_DRAIN_TIMEOUT.as_millis()
        )));
    }
    let deadline = Instant::now() + timeout;
    loop {
        let stats = state.queue.stats().await?;
        if stats.count(JobStatus::Processing) == 0 {
            return Ok(
                Json(json!({ "drained": true, "queue": view(&state, &stats) })).into_response(),
            );
        }
        if Instant::now() >= deadline {
            let body = json!({
                "error": format!("drain timed out after {} ms with rows still in flight", timeout.as_millis()),
                "drained": false,
                "queue": view(&state, &stats),
            });
            return Ok((StatusCode::GATEWAY_TIMEOUT, Json(body)).into_response());
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// Body of `POST /admin/queue/redrive` (optional: without it, every dead row is redriven).
#[derive(Debug, Deserialize)]
pub struct RedriveRequest {
    /// The dead rows to redrive; absent = all.
    pub ids: Option<Vec<JobId>>,
}

/// `POST /admin/queue/redrive`: dead rows back to pending (all, or the given ids).
pub async fn redrive(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let request: RedriveRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RedriveRequest { ids: None }
    } else {
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::BadRequest(format!(
                "invalid redrive body (expected {{\"ids\": [..]}}): {error}"
            ))
        })?
    };
    let redriven = match request.ids {
        Some(ids) => state.queue.redrive_ids(&ids).await?,
        None => state.queue.redrive_all().await?,
    };
    Ok(Json(json!({ "redriven": redriven })))
}
