//! The API's job tables: `index_jobs` (one row per indexing request) and `index_job_files` (one
//! result per file), and the live progress view over them and the queue rows.
//!
//! The API creates a job in the same transaction as its queue rows; workers record file results
//! in the same transaction as the queue row's completion, keyed by `(job, path)`, so retries and
//! redrives overwrite instead of double-counting.

use chrono::{DateTime, Utc};
use queue::{NewJob, QueueId};
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::ToSchema;
use uuid::Uuid;

pub mod intake;
pub use intake::{Intake, IntakeError};

/// Errors of the job store.
#[derive(Debug, thiserror::Error)]
pub enum JobStoreError {
    /// The database refused or failed a statement.
    #[error("job store database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// What a job indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Files sent in the request.
    Files,
    /// A git repository the worker checks out.
    Repository,
}

impl JobKind {
    /// The kind as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Files => "files",
            JobKind::Repository => "repository",
        }
    }
}

/// A job to create, with everything written in its transaction.
#[derive(Clone, Debug)]
pub struct NewIndexJob {
    /// Its id (also the queue rows' `job_ref`).
    pub id: Uuid,
    /// The project indexed.
    pub project: String,
    /// Files or repository.
    pub kind: JobKind,
    /// Number of files (0 for a repository until listed).
    pub files_total: i32,
    /// Repository location, for repository jobs.
    pub repository: Option<String>,
    /// Git ref, for repository jobs.
    pub git_ref: Option<String>,
    /// Its queue rows.
    pub rows: Vec<NewJob>,
    /// Files already settled as skipped (recorded with the job).
    pub skipped: Vec<FileResult>,
}

/// What became of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// Indexed.
    Done,
    /// Could not be indexed (permanent error, or retries used up).
    Failed,
    /// Not worth indexing (binary, minified, ...).
    Skipped,
}

impl FileStatus {
    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Done => "done",
            FileStatus::Failed => "failed",
            FileStatus::Skipped => "skipped",
        }
    }
}

/// One file's result, as recorded by a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileResult {
    /// The file's path in the project.
    pub path: String,
    /// Done, failed or skipped.
    pub status: FileStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// Why it was skipped.
    pub skip_reason: Option<String>,
    /// Chunks stored for it.
    pub chunks_stored: i32,
}

impl FileResult {
    /// A file indexed into `chunks` chunks.
    pub fn done(path: impl Into<String>, chunks: usize) -> Self {
        Self {
            path: path.into(),
            status: FileStatus::Done,
            error: None,
            skip_reason: None,
            chunks_stored: i32::try_from(chunks).unwrap_or(i32::MAX),
        }
    }

    /// A file that failed with `error`.
    pub fn failed(path: impl Into<String>, error: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            status: FileStatus::Failed,
            error: Some(error.into()),
            skip_reason: None,
            chunks_stored: 0,
        }
    }

    /// A file skipped for `reason`.
    pub fn skipped(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            status: FileStatus::Skipped,
            error: None,
            skip_reason: Some(reason.into()),
            chunks_stored: 0,
        }
    }
}

/// A job as `GET /jobs/{id}` shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct JobView {
    /// The job id.
    pub id: Uuid,
    /// The project.
    pub project: String,
    /// Files or repository.
    #[schema(value_type = JobKind)]
    pub kind: String,
    /// pending, processing, completed, partially_failed or failed.
    #[schema(schema_with = job_status_schema)]
    pub status: String,
    /// File counts.
    pub files: FileCounts,
    /// Chunks stored so far.
    pub chunks_stored: i64,
    /// Failed and skipped files, with the error or the skip reason.
    pub issues: Vec<FileIssue>,
    /// Repository location, for repository jobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Git ref, for repository jobs.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When the last file was recorded, once the job is finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// The statuses a job can show (the `index_job_progress` view's).
fn job_status_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([
            "pending",
            "processing",
            "completed",
            "partially_failed",
            "failed",
        ]))
        .build()
}

/// File counts of a job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct FileCounts {
    /// Files in the job.
    pub total: i64,
    /// Indexed.
    pub done: i64,
    /// Failed.
    pub failed: i64,
    /// Skipped.
    pub skipped: i64,
}

/// A failed or skipped file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow, ToSchema)]
pub struct FileIssue {
    /// The file's path (empty for a repository job that failed as a whole).
    pub path: String,
    /// failed or skipped.
    #[schema(value_type = String, pattern = "^(failed|skipped)$")]
    pub status: String,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
}

/// Most issues listed per job.
const MAX_ISSUES: i64 = 1000;

/// Inserts the job rows of `jobs`, whose queue rows go on `queue_id`, in one statement (call
/// inside the transaction that enqueues their rows; [`intake`] does).
pub async fn insert_jobs<'e>(
    executor: impl PgExecutor<'e>,
    queue_id: &QueueId,
    jobs: &[&NewIndexJob],
) -> Result<(), JobStoreError> {
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
    let projects: Vec<&str> = jobs.iter().map(|j| j.project.as_str()).collect();
    let kinds: Vec<&str> = jobs.iter().map(|j| j.kind.as_str()).collect();
    let totals: Vec<i32> = jobs.iter().map(|j| j.files_total).collect();
    let repositories: Vec<Option<&str>> = jobs.iter().map(|j| j.repository.as_deref()).collect();
    let refs: Vec<Option<&str>> = jobs.iter().map(|j| j.git_ref.as_deref()).collect();
    sqlx::query(
        "INSERT INTO index_jobs (id, queue_id, project, kind, files_total, repository, git_ref)
         SELECT j.id, $1, j.project, j.kind, j.files_total, j.repository, j.git_ref
         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::int4[], $6::text[], $7::text[])
              AS j(id, project, kind, files_total, repository, git_ref)",
    )
    .bind(queue_id.as_str())
    .bind(&ids)
    .bind(&projects)
    .bind(&kinds)
    .bind(&totals)
    .bind(&repositories)
    .bind(&refs)
    .execute(executor)
    .await?;
    Ok(())
}

/// Locks a job row until the end of the transaction, so concurrent workers finishing files of
/// one job record them one after the other and each sees the others' results.
pub async fn lock_job(conn: &mut PgConnection, job_id: Uuid) -> Result<bool, JobStoreError> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM index_jobs WHERE id = $1 FOR UPDATE")
            .bind(job_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(found.is_some())
}

/// Records (or overwrites) file results of a job.
pub async fn record_results(
    conn: &mut PgConnection,
    job_id: Uuid,
    results: &[FileResult],
) -> Result<(), JobStoreError> {
    if results.is_empty() {
        return Ok(());
    }
    let paths: Vec<&str> = results.iter().map(|r| r.path.as_str()).collect();
    let statuses: Vec<&str> = results.iter().map(|r| r.status.as_str()).collect();
    let errors: Vec<Option<&str>> = results.iter().map(|r| r.error.as_deref()).collect();
    let reasons: Vec<Option<&str>> = results.iter().map(|r| r.skip_reason.as_deref()).collect();
    let chunks: Vec<i32> = results.iter().map(|r| r.chunks_stored).collect();
    sqlx::query(
        "INSERT INTO index_job_files (job_id, path, status, error, skip_reason, chunks_stored)
         SELECT $1, r.path, r.status, r.error, r.skip_reason, r.chunks
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int4[])
              AS r(path, status, error, skip_reason, chunks)
         ON CONFLICT (job_id, path) DO UPDATE
         SET status = excluded.status, error = excluded.error,
             skip_reason = excluded.skip_reason, chunks_stored = excluded.chunks_stored,
             recorded_at = now()",
    )
    .bind(job_id)
    .bind(&paths)
    .bind(&statuses)
    .bind(&errors)
    .bind(&reasons)
    .bind(&chunks)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets the number of files of a repository job once they are listed.
pub async fn set_files_total(
    conn: &mut PgConnection,
    job_id: Uuid,
    total: usize,
) -> Result<(), JobStoreError> {
    sqlx::query("UPDATE index_jobs SET files_total = $2 WHERE id = $1")
        .bind(job_id)
        .bind(i32::try_from(total).unwrap_or(i32::MAX))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Copies the live progress status into the job row (and stamps `finished_at` once finished).
pub async fn refresh_status(conn: &mut PgConnection, job_id: Uuid) -> Result<(), JobStoreError> {
    sqlx::query(
        "UPDATE index_jobs j
         SET status = p.status, updated_at = now(),
             finished_at = CASE WHEN p.status IN ('completed', 'partially_failed', 'failed')
                                THEN coalesce(j.finished_at, now()) END
         FROM index_job_progress p
         WHERE j.id = $1 AND p.id = j.id",
    )
    .bind(job_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: Uuid,
    project: String,
    kind: String,
    files_total: i32,
    repository: Option<String>,
    git_ref: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    status: String,
    done: i64,
    skipped: i64,
    failed: i64,
    chunks: i64,
}

/// A job of `queue_id` with its live progress; `None` when there is no such job on that queue.
pub async fn get_job<'e, E>(
    executor: E,
    queue_id: &QueueId,
    job_id: Uuid,
) -> Result<Option<JobView>, JobStoreError>
where
    E: PgExecutor<'e> + Copy,
{
    let row: Option<JobRow> = sqlx::query_as(
        "SELECT j.id, j.project, j.kind, j.files_total, j.repository, j.git_ref, j.created_at,
                j.updated_at, j.finished_at, p.status, p.done, p.skipped, p.failed, p.chunks
         FROM index_jobs j JOIN index_job_progress p ON p.id = j.id
         WHERE j.id = $1 AND j.queue_id = $2",
    )
    .bind(job_id)
    .bind(queue_id.as_str())
    .fetch_optional(executor)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let issues: Vec<FileIssue> = sqlx::query_as(
        "(SELECT path, status, error, skip_reason FROM index_job_files
          WHERE job_id = $1 AND status <> 'done')
         UNION ALL
         (SELECT coalesce(q.payload ->> 'path', ''), 'failed', q.last_error, NULL
          FROM queue_jobs q
          WHERE q.job_ref = $1 AND q.queue_id = $2 AND q.status = 'dead'
            AND NOT EXISTS (SELECT 1 FROM index_job_files r
                            WHERE r.job_id = $1 AND r.path = q.payload ->> 'path'))
         ORDER BY path
         LIMIT $3",
    )
    .bind(job_id)
    .bind(queue_id.as_str())
    .bind(MAX_ISSUES)
    .fetch_all(executor)
    .await?;
    let finished = matches!(
        row.status.as_str(),
        "completed" | "partially_failed" | "failed"
    );
    Ok(Some(JobView {
        id: row.id,
        project: row.project,
        kind: row.kind,
        status: row.status,
        files: FileCounts {
            total: i64::from(row.files_total),
            done: row.done,
            failed: row.failed,
            skipped: row.skipped,
        },
        chunks_stored: row.chunks,
        issues,
        repository: row.repository,
        git_ref: row.git_ref,
        created_at: row.created_at,
        updated_at: row.updated_at,
        finished_at: if finished {
            Some(row.finished_at.unwrap_or(row.updated_at))
        } else {
            None
        },
    }))
}
