//! `GET /jobs/{id}`: a job's status, file counts, per-file errors and skip reasons, timestamps.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use uuid::Uuid;

use super::openapi::{BadParameter, NotFound, ServerFailed};
use super::{ApiError, AppState};
use crate::jobs::{self, JobView};

/// A job's progress
///
/// Status, file counts, per-file errors and skip reasons, timestamps. 404 for an id that is
/// not a job of this service's queue.
#[utoipa::path(
    get,
    path = "/jobs/{id}",
    tag = "index",
    params(("id" = Uuid, Path, description = "The job id from `202 Accepted`")),
    responses(
        (status = 200, description = "The job", body = JobView),
        BadParameter,
        NotFound,
        ServerFailed,
    )
)]
#[tracing::instrument(skip_all, fields(job_id = tracing::field::Empty))]
pub async fn get_job(
    State(state): State<AppState>,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<JobView>, ApiError> {
    let Path(id) = id?;
    tracing::Span::current().record("job_id", tracing::field::display(id));
    jobs::get_job(&state.pool, state.queue.id(), id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("job {id} not found")))
}
