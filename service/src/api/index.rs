//! `POST /index` and `POST /index/repository`: validate, then write the job and its queue rows in
//! one transaction (through [`crate::jobs::Intake`], which commits concurrent requests together)
//! and answer `202 Accepted` with the job id and a `Location`. Nothing is parsed or embedded
//! here; workers do that.
//!
//! A repository must be allowed by the [`crate::worker::RepositoryPolicy`]; its host is resolved
//! here too, so one that resolves to a private address is refused at once (the worker checks it
//! again before git runs). Its location is stored and shown with credentials redacted, and
//! credentials are never used.

use std::collections::HashSet;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use queue::NewJob;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{ApiError, AppState};
use crate::index::{validate_project, MAX_PATH_LEN};
use crate::jobs::{FileResult, JobKind, NewIndexJob};
use crate::redact::redact_url;
use crate::worker::repository::{validate_request, CheckoutError};
use crate::worker::source::Source;

/// Skip reason of a file whose content has a NUL byte.
pub const BINARY_SKIP_REASON: &str = "binary: file looks binary (contains a NUL byte)";

/// Body of `POST /index`.
#[derive(Debug, Deserialize)]
pub struct IndexRequest {
    /// The project the files belong to.
    pub project: String,
    /// The files to index (1 to the configured maximum, 1,000 by default).
    pub files: Vec<FileInput>,
}

/// One file of an [`IndexRequest`].
#[derive(Debug, Deserialize)]
pub struct FileInput {
    /// Relative path inside the project (no `..`, not absolute).
    pub path: String,
    /// The file's text.
    pub content: String,
}

/// Body of `POST /index/repository`.
#[derive(Debug, Deserialize)]
pub struct RepositoryRequest {
    /// The project to index into.
    pub project: String,
    /// A git URL (https by default; see the repository settings), or an absolute local path
    /// when local sources are allowed.
    pub repository: String,
    /// Branch, tag or commit.
    #[serde(rename = "ref")]
    pub git_ref: String,
}

/// Answer of both endpoints.
#[derive(Debug, Serialize, Deserialize)]
pub struct Accepted {
    /// The job to poll at `GET /jobs/{job_id}`.
    pub job_id: Uuid,
    /// Always `pending` here.
    pub status: String,
    /// Files queued (0 for a repository until the worker lists it).
    pub files: usize,
}

/// `POST /index`: queues one row per file under a new job.
#[tracing::instrument(skip_all, fields(job_id = tracing::field::Empty, files = tracing::field::Empty))]
pub async fn index_files(
    State(state): State<AppState>,
    body: Result<Json<IndexRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body?;
    validate_project(&request.project)?;
    validate_files(&request.files, state.limits.max_files_per_request)?;
    let job_id = Uuid::new_v4();
    tracing::Span::current()
        .record("job_id", tracing::field::display(job_id))
        .record("files", request.files.len());
    let total = request.files.len();
    // PostgreSQL's jsonb cannot hold a NUL character, and a file with one is binary anyway: it
    // is recorded as skipped right here instead of being queued.
    let (binary, text): (Vec<FileInput>, Vec<FileInput>) = request
        .files
        .into_iter()
        .partition(|file| file.content.contains('\0'));
    let skipped: Vec<FileResult> = binary
        .iter()
        .map(|file| FileResult::skipped(&file.path, BINARY_SKIP_REASON))
        .collect();
    let rows: Vec<NewJob> = text
        .into_iter()
        .map(|file| {
            NewJob::new(json!({
                "project": request.project,
                "path": file.path,
                "content": file.content,
            }))
            .job_ref(job_id)
            .max_attempts(state.limits.max_attempts)
        })
        .collect();
    let job = NewIndexJob {
        id: job_id,
        project: request.project,
        kind: JobKind::Files,
        files_total: i32::try_from(total).unwrap_or(i32::MAX),
        repository: None,
        git_ref: None,
        rows,
        skipped,
    };
    state.intake.submit(job).await?;
    Ok(accepted(job_id, total))
}

/// `POST /index/repository`: queues one row that checks out and indexes a repository.
#[tracing::instrument(skip_all, fields(job_id = tracing::field::Empty))]
pub async fn index_repository(
    State(state): State<AppState>,
    body: Result<Json<RepositoryRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body?;
    validate_project(&request.project)?;
    let refused = |error: CheckoutError| ApiError::BadRequest(error.to_string());
    let source = validate_request(&request.repository, &request.git_ref).map_err(refused)?;
    state.repository.check(&source).map_err(refused)?;
    match &source {
        Source::Local(path) if !path.is_dir() => {
            return Err(ApiError::BadRequest(
                "invalid_request: the local repository is not an existing directory".into(),
            ));
        }
        Source::Local(_) => {}
        Source::Remote(remote) => match state.repository.resolve(remote).await {
            Ok(_) => {}
            Err(error @ CheckoutError::BlockedAddress { .. }) => return Err(refused(error)),
            // DNS trouble may pass: the worker resolves again (and retries).
            Err(error) => tracing::info!(%error, "repository host not checked at intake"),
        },
    }
    // Stored, queued and shown redacted; credentials are never used for fetching anyway.
    let repository = redact_url(&request.repository);
    let job_id = Uuid::new_v4();
    tracing::Span::current().record("job_id", tracing::field::display(job_id));
    let row = NewJob::new(json!({
        "project": request.project,
        "repository": repository,
        "ref": request.git_ref,
    }))
    .job_ref(job_id)
    .max_attempts(state.limits.max_attempts);
    let job = NewIndexJob {
        id: job_id,
        project: request.project,
        kind: JobKind::Repository,
        files_total: 0,
        repository: Some(repository),
        git_ref: Some(request.git_ref),
        rows: vec![row],
        skipped: Vec::new(),
    };
    state.intake.submit(job).await?;
    Ok(accepted(job_id, 0))
}

fn accepted(job_id: Uuid, files: usize) -> Response {
    let location = format!("/jobs/{job_id}");
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(Accepted {
            job_id,
            status: "pending".into(),
            files,
        }),
    )
        .into_response()
}

/// Checks the file list: not empty, not over the limit, relative paths without `..`, no
/// duplicates.
pub fn validate_files(files: &[FileInput], max_files: usize) -> Result<(), ApiError> {
    if files.is_empty() {
        return Err(ApiError::BadRequest("files must not be empty".into()));
    }
    if files.len() > max_files {
        return Err(ApiError::BadRequest(format!(
            "too many files: {} in one request, at most {max_files}; split the request",
            files.len()
        )));
    }
    let mut seen = HashSet::with_capacity(files.len());
    for file in files {
        validate_path(&file.path).map_err(|reason| {
            ApiError::BadRequest(format!(
                "invalid path {:?}: {reason}",
                file.path.chars().take(200).collect::<String>()
            ))
        })?;
        if !seen.insert(file.path.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "duplicate path {:?} in one request",
                file.path
            )));
        }
    }
    Ok(())
}

/// Why a path is refused, if it is: it must be relative, without `..`, NUL or empty parts.
pub fn validate_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("must not be empty");
    }
    if path.len() > MAX_PATH_LEN {
        return Err("longer than 4096 bytes");
    }
    if path.contains('\0') {
        return Err("contains a NUL byte");
    }
    let bytes = path.as_bytes();
    if bytes[0] == b'/' || bytes[0] == b'\\' || (bytes.len() > 1 && bytes[1] == b':') {
        return Err("must be relative, not absolute");
    }
    if path.split(['/', '\\']).any(|part| part == "..") {
        return Err("must not contain `..`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_accepted_and_escapes_refused() {
        assert!(validate_path("src/lib.rs").is_ok());
        assert!(validate_path("a/..b/c.rs").is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../b",
            "C:\\x",
            "\\\\server\\x",
            "a\0b",
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?}");
        }
    }
}
