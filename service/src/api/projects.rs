//! `DELETE /projects/{project}`: removes every chunk of a project from the index.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, AppState};

/// `DELETE /projects/{project}`: idempotent; deleting an unknown project succeeds.
#[tracing::instrument(skip_all, fields(project = tracing::field::Empty))]
pub async fn delete_project(
    State(state): State<AppState>,
    project: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(project) = project?;
    tracing::Span::current().record("project", project.as_str());
    state.indexer.delete_project(&project).await?;
    tracing::info!("project deleted");
    Ok(Json(json!({ "project": project, "deleted": true })))
}
