//! `DELETE /projects/{project}`: removes every chunk of a project from the index.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::{IntoParams, ToSchema};

use super::openapi::{parameter, project_schema, BadParameter, ServerFailed};
use super::{ApiError, AppState};

/// Path of `DELETE /projects/{project}`.
#[derive(Debug, Deserialize)]
pub struct ProjectPath {
    /// The project.
    pub project: String,
}

impl IntoParams for ProjectPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let project = parameter(
            "project",
            ParameterIn::Path,
            true,
            "The project",
            project_schema(),
        );
        vec![project]
    }
}

/// Answer of `DELETE /projects/{project}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProjectDeleted {
    /// The project.
    pub project: String,
    /// Always true.
    pub deleted: bool,
}

/// Delete a project
///
/// Removes every chunk of a project. Idempotent: deleting an unknown project succeeds.
#[utoipa::path(
    delete,
    path = "/projects/{project}",
    tag = "search",
    params(ProjectPath),
    responses(
        (status = 200, description = "Deleted", body = ProjectDeleted),
        BadParameter,
        ServerFailed,
    )
)]
#[tracing::instrument(skip_all, fields(project = tracing::field::Empty))]
pub async fn delete_project(
    State(state): State<AppState>,
    path: Result<Path<ProjectPath>, PathRejection>,
) -> Result<Json<ProjectDeleted>, ApiError> {
    let Path(ProjectPath { project }) = path?;
    tracing::Span::current().record("project", project.as_str());
    state.indexer.delete_project(&project).await?;
    tracing::info!("project deleted");
    Ok(Json(ProjectDeleted {
        project,
        deleted: true,
    }))
}
