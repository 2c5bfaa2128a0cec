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
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::ToSchema;
use uuid::Uuid;

use super::openapi::{project_schema, BodyRejected, ServerFailed};
use super::request_id::RequestId;
use super::{ApiError, AppState};
use crate::index::{validate_project, MAX_PATH_LEN};
use crate::jobs::{FileResult, JobKind, NewIndexJob};
use crate::redact::redact_url;
use crate::worker::repository::validate_request;
use crate::worker::source::Source;
use crate::worker::CheckoutError;

/// Skip reason of a file whose content has a NUL byte.
pub const BINARY_SKIP_REASON: &str = "binary: file looks binary (contains a NUL byte)";

/// What [`validate_path`] accepts, as a regular expression for the OpenAPI document (with
/// `maxLength` [`MAX_PATH_LEN`]): segments split on `/` or `\`, none of them `..`, no NUL, not
/// starting with a separator or a drive (`C:`). Written without look-around so that ECMA-262,
/// Python and Rust read it alike; the tests check it against [`validate_path`].
pub const PATH_PATTERN: &str = concat!(
    // The first segment: not empty, not `..`, and no `:` right after an ASCII first character.
    r"^(?:[^\x00-\x7f][^/\\\x00]*",
    r"|[\x01-\x2d\x30-\x5b\x5d-\x7f](?:[^/\\\x00:][^/\\\x00]*)?",
    r"|\.(?:[^./\\\x00:][^/\\\x00]*|\.[^/\\\x00]+)?)",
    // Further segments: anything but `..`.
    r"(?:[/\\](?:[^./\\\x00][^/\\\x00]*|\.(?:[^./\\\x00][^/\\\x00]*|\.[^/\\\x00]+)?)?)*$"
);

/// Longest git ref, in bytes ([`validate_request`]).
pub const MAX_REF_LEN: usize = 256;

/// Longest repository location, in bytes ([`validate_request`]).
pub const MAX_REPOSITORY_LEN: usize = 4096;

/// What [`validate_request`] accepts as a ref: `/`-separated components of `.`-separated
/// non-empty parts, with no white space, control character or any of `: ^ ~ ? * [ \ { }`, not
/// starting with `-` (so no `..`, `//`, `@{`, and no component that starts or ends with `.`).
pub const REF_PATTERN: &str = concat!(
    r"^[^-./:^~?*\[\\{}\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
    r"[^./:^~?*\[\\{}\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*",
    r"(?:\.[^./:^~?*\[\\{}\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+)*",
    r"(?:/[^./:^~?*\[\\{}\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+",
    r"(?:\.[^./:^~?*\[\\{}\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+)*)*$"
);

/// The syntax of a repository location: an absolute path, a URL (`scheme://...`) or an
/// scp-like `[user@]host:path`, with no NUL and not starting with `-`. A pattern cannot say which
/// of those the handler parses as what: it states the bounds, and the parser and the repository
/// policy refuse the rest with a 400.
pub const REPOSITORY_PATTERN: &str = r"^[^-\x00][^\x00]*$";

/// Body of `POST /index`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct IndexRequest {
    /// The project the files belong to.
    #[schema(schema_with = project_schema)]
    pub project: String,
    /// The files to index (1 to the configured maximum, `MAX_FILES_PER_REQUEST`, 1,000 by
    /// default); no path twice.
    #[schema(min_items = 1)]
    pub files: Vec<FileInput>,
}

/// One file of an [`IndexRequest`].
#[derive(Debug, Deserialize, ToSchema)]
pub struct FileInput {
    /// Relative path inside the project (no `..`, not absolute).
    #[schema(schema_with = path_schema)]
    pub path: String,
    /// The file's text (a file with a NUL character is recorded as skipped: binary).
    pub content: String,
}

/// Body of `POST /index/repository`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RepositoryRequest {
    /// The project to index into.
    #[schema(schema_with = project_schema)]
    pub project: String,
    /// A git URL (https by default; see the repository settings), or an absolute local path
    /// when local sources are allowed.
    #[schema(schema_with = repository_schema)]
    pub repository: String,
    /// Branch, tag or commit.
    #[serde(rename = "ref")]
    #[schema(schema_with = ref_schema)]
    pub git_ref: String,
}

/// Answer of both endpoints.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// The job to poll at `GET /jobs/{job_id}`.
    pub job_id: Uuid,
    /// Always `pending` here.
    #[schema(value_type = String, pattern = "^pending$")]
    pub status: String,
    /// Files queued (0 for a repository until the worker lists it).
    pub files: usize,
}

fn string_schema(pattern: &str, max_length: usize, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .min_length(Some(1))
        .max_length(Some(max_length))
        .description(Some(description))
        .build()
}

fn path_schema() -> Object {
    string_schema(
        PATH_PATTERN,
        MAX_PATH_LEN,
        "Relative path inside the project: 1 to 4096 characters, no NUL, no `..` segment \
         (`/` and `\\` both separate), not starting with `/`, `\\` or a drive such as `C:`",
    )
}

fn ref_schema() -> Object {
    string_schema(
        REF_PATTERN,
        MAX_REF_LEN,
        "Branch, tag or commit: at most 256 bytes of `/`-separated components of \
         `.`-separated parts, no white space, control character or any of `: ^ ~ ? * [ \\ { }`, \
         not starting with `-`",
    )
}

fn repository_schema() -> Object {
    string_schema(
        REPOSITORY_PATTERN,
        MAX_REPOSITORY_LEN,
        "A git URL (`scheme://...` or `user@host:path`) or an absolute local path; at most 4096 \
         bytes, no NUL, not starting with `-`. The service's repository policy (schemes, hosts, \
         addresses, local sources; see docs/service.md) may still refuse it: 400 with a category",
    )
}

/// Queue files for indexing
///
/// One queue row per file, all written with the job in one transaction; the job is answered
/// once committed. Each row carries the request's id (`x-request-id`) to the worker's logs.
#[utoipa::path(
    post,
    path = "/index",
    tag = "index",
    request_body = IndexRequest,
    responses(
        (status = 202, description = "Queued; poll the `Location`", body = Accepted,
            headers(("location" = String, description = "`/jobs/{job_id}`"))),
        BodyRejected,
        ServerFailed,
    )
)]
#[tracing::instrument(skip_all, fields(job_id = tracing::field::Empty, files = tracing::field::Empty))]
pub async fn index_files(
    State(state): State<AppState>,
    request_id: RequestId,
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
                "request_id": request_id.as_str(),
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

/// Queue a git repository for indexing
///
/// One queue row that checks the repository out at `ref` and indexes its tracked files.
#[utoipa::path(
    post,
    path = "/index/repository",
    tag = "index",
    request_body = RepositoryRequest,
    responses(
        (status = 202, description = "Queued; poll the `Location`", body = Accepted,
            headers(("location" = String, description = "`/jobs/{job_id}`"))),
        BodyRejected,
        ServerFailed,
    )
)]
#[tracing::instrument(skip_all, fields(job_id = tracing::field::Empty))]
pub async fn index_repository(
    State(state): State<AppState>,
    request_id: RequestId,
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
        "request_id": request_id.as_str(),
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

/// Why a path is refused, if it is: it must be relative, without `..`, NUL or empty parts
/// ([`PATH_PATTERN`]).
pub fn validate_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("must not be empty");
    }
    if path.chars().count() > MAX_PATH_LEN {
        return Err("longer than 4096 characters");
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

    /// Every string of `alphabet` up to `max_len` characters.
    fn strings(alphabet: &[char], max_len: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..max_len {
            last = last
                .iter()
                .flat_map(|prefix| alphabet.iter().map(move |c| format!("{prefix}{c}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    fn pattern(source: &str) -> regex::Regex {
        regex::Regex::new(source).expect("a valid pattern")
    }

    #[test]
    fn the_documented_path_pattern_is_what_validate_path_accepts() {
        let path = pattern(PATH_PATTERN);
        let fits = |case: &str| !case.is_empty() && case.chars().count() <= MAX_PATH_LEN;
        for case in strings(&['a', '.', '/', '\\', ':', 'é', '\0'], 6) {
            assert_eq!(
                path.is_match(&case) && fits(&case),
                validate_path(&case).is_ok(),
                "{case:?}"
            );
        }
        // The length is `maxLength`, in characters.
        assert!(validate_path(&"é".repeat(MAX_PATH_LEN)).is_ok());
        assert!(validate_path(&"a".repeat(MAX_PATH_LEN + 1)).is_err());
    }

    #[test]
    fn the_documented_ref_pattern_is_what_validate_request_accepts() {
        let git_ref = pattern(REF_PATTERN);
        let mut cases: Vec<String> = (0..=0x10FFFF)
            .filter_map(char::from_u32)
            .flat_map(|c| [c.to_string(), format!("v{c}")])
            .collect();
        cases.extend(strings(&['v', '.', '/', '-', '@', '{'], 4));
        cases.extend(
            ["main", "release/1.2", "v1.0.lock", "a..b", "a//b", "x@{1}"].map(String::from),
        );
        for case in cases {
            assert_eq!(
                git_ref.is_match(&case),
                validate_request("/srv/repo", &case).is_ok(),
                "{case:?}"
            );
        }
        assert!(validate_request("/srv/repo", &"v".repeat(MAX_REF_LEN)).is_ok());
        assert!(validate_request("/srv/repo", &"v".repeat(MAX_REF_LEN + 1)).is_err());
    }

    #[test]
    fn every_location_the_handler_accepts_matches_the_documented_pattern() {
        // The pattern states the syntax; the policy refuses more (schemes, hosts, addresses).
        let repository = pattern(REPOSITORY_PATTERN);
        for case in strings(&['a', '-', '/', ':', '@', 'é', '\0'], 5) {
            if validate_request(&case, "main").is_ok() {
                assert!(repository.is_match(&case), "{case:?}");
            }
        }
        for case in [
            "https://github.com/a/b.git",
            "git@github.com:a/b.git",
            "/srv/repos/b",
        ] {
            assert!(validate_request(case, "main").is_ok(), "{case}");
            assert!(repository.is_match(case), "{case}");
        }
        assert!(validate_request(&"/".repeat(MAX_REPOSITORY_LEN), "main").is_ok());
        assert!(validate_request(&"/".repeat(MAX_REPOSITORY_LEN + 1), "main").is_err());
    }
}
