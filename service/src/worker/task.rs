//! What a queue row asks for, how it is done, and how its result is recorded together with the
//! row's completion (or final failure) in one transaction.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{WorkerError, WorkerPool};
use crate::index::{EmbedError, IndexError, IndexOutcome, StoreError};
use crate::jobs::{self, FileResult};
use crate::metrics::RowResult;
use crate::queue::{ClaimedJob, FailOutcome, FailureKind, JobFailure, Lease};

/// A queue row's payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Task {
    /// Check out a repository and index its files.
    Repository(RepositoryPayload),
    /// Index one file sent in the request.
    File(FilePayload),
}

/// One file to index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePayload {
    /// The project.
    pub project: String,
    /// The file's path in the project.
    pub path: String,
    /// The file's text.
    pub content: String,
}

/// A repository to check out and index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryPayload {
    /// The project.
    pub project: String,
    /// A local path or a git URL.
    pub repository: String,
    /// Branch, tag or commit to check out.
    #[serde(rename = "ref")]
    pub git_ref: String,
}

/// The result of working a row, before it is recorded.
#[derive(Debug, Default)]
pub(crate) struct Work {
    /// File results to record once the row is finished (completed or dead).
    pub results: Vec<FileResult>,
    /// Why the attempt failed; `None` completes the row.
    pub failure: Option<JobFailure>,
    /// Number of files, for repository rows.
    pub files_total: Option<usize>,
}

impl Work {
    fn file(result: FileResult, failure: Option<JobFailure>) -> Self {
        Self {
            results: vec![result],
            failure,
            files_total: None,
        }
    }

    /// An attempt that failed before any file result.
    pub(crate) fn failed(failure: JobFailure) -> Self {
        Self {
            failure: Some(failure),
            ..Self::default()
        }
    }
}

/// Whether an indexing error is worth another attempt: an unreachable Qdrant or a failed model
/// task may work later; bad input, parse and size problems will not.
pub fn failure_kind(error: &IndexError) -> FailureKind {
    match error {
        IndexError::Store(StoreError::Qdrant { .. }) => FailureKind::Transient,
        IndexError::Embed(
            EmbedError::Task(_)
            | EmbedError::Poisoned
            | EmbedError::Read { .. }
            | EmbedError::ModelFileMissing { .. }
            | EmbedError::RuntimeMissing { .. }
            | EmbedError::RuntimeUnusable { .. },
        ) => FailureKind::Transient,
        _ => FailureKind::Permanent,
    }
}

impl WorkerPool {
    pub(super) async fn process_inner(&self, job: ClaimedJob) -> Result<RowResult, WorkerError> {
        let lease = job.lease();
        let work = match serde_json::from_value::<Task>(job.payload) {
            Ok(Task::File(file)) => {
                tracing::Span::current().record("path", file.path.as_str());
                self.index_file(&file).await
            }
            Ok(Task::Repository(repository)) => {
                tracing::Span::current().record("path", repository.repository.as_str());
                super::repository::index_repository(self, &repository).await
            }
            Err(error) => Work::failed(JobFailure::permanent(format!(
                "unreadable queue payload: {error}"
            ))),
        };
        self.record(&lease, job.job_ref, work).await
    }

    /// Indexes one file sent in a request.
    async fn index_file(&self, file: &FilePayload) -> Work {
        let limit = self.config.max_file_bytes;
        if file.content.len() > limit {
            let message = format!(
                "file is {} bytes, over the {limit}-byte limit",
                file.content.len()
            );
            tracing::info!(%message, "file refused");
            return Work::file(
                FileResult::failed(&file.path, &message),
                Some(JobFailure::permanent(message)),
            );
        }
        match self
            .indexer
            .index_file(&file.project, &file.path, file.content.as_bytes())
            .await
        {
            Ok(outcome) => Work::file(file_result(&file.path, outcome), None),
            Err(error) => {
                let message = error.to_string();
                let failure = JobFailure {
                    kind: failure_kind(&error),
                    message: message.clone(),
                };
                tracing::warn!(error = %message, kind = failure.kind.as_str(), "indexing failed");
                Work::file(FileResult::failed(&file.path, message), Some(failure))
            }
        }
    }

    /// Finishes the row and records its file results in one transaction: results are written
    /// only when the row completes or dies under this lease, so nothing is counted twice.
    async fn record(
        &self,
        lease: &Lease,
        job_id: Option<Uuid>,
        work: Work,
    ) -> Result<RowResult, WorkerError> {
        let mut tx = self.queue.pool().begin().await?;
        if let Some(job_id) = job_id {
            jobs::lock_job(&mut tx, job_id).await?;
        }
        let result = match &work.failure {
            None => {
                let done = self
                    .queue
                    .complete_many_with(&mut *tx, std::slice::from_ref(lease))
                    .await?;
                if done.is_empty() {
                    RowResult::LeaseLost
                } else {
                    RowResult::Succeeded
                }
            }
            Some(failure) => match self.queue.fail_with(&mut *tx, lease, failure).await? {
                FailOutcome::Dead => RowResult::Dead,
                FailOutcome::Retrying { .. } => RowResult::Retried,
                FailOutcome::LeaseLost => RowResult::LeaseLost,
            },
        };
        if result == RowResult::LeaseLost {
            tx.rollback().await?;
            tracing::warn!(
                "lease lost before the result was recorded; another attempt owns the row"
            );
            return Ok(result);
        }
        if let Some(job_id) = job_id {
            if matches!(result, RowResult::Succeeded | RowResult::Dead) {
                if let Some(total) = work.files_total {
                    jobs::set_files_total(&mut tx, job_id, total).await?;
                }
                jobs::record_results(&mut tx, job_id, &work.results).await?;
            }
            jobs::refresh_status(&mut tx, job_id).await?;
        }
        tx.commit().await?;
        Ok(result)
    }
}

/// The recorded result of an indexing outcome.
pub(crate) fn file_result(path: &str, outcome: IndexOutcome) -> FileResult {
    match outcome {
        IndexOutcome::Indexed { chunks } => FileResult::done(path, chunks),
        IndexOutcome::Skipped { reason } => {
            FileResult::skipped(path, format!("{}: {reason}", reason.code()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_decode_into_their_task() {
        let file: Task = serde_json::from_value(
            serde_json::json!({"project": "p", "path": "a.rs", "content": "x"}),
        )
        .expect("file payload");
        assert!(matches!(file, Task::File(_)));
        let repo: Task = serde_json::from_value(
            serde_json::json!({"project": "p", "repository": "/r", "ref": "main"}),
        )
        .expect("repository payload");
        assert!(matches!(repo, Task::Repository(_)));
        assert!(serde_json::from_value::<Task>(serde_json::json!({"project": "p"})).is_err());
    }

    #[test]
    fn bad_input_is_permanent_and_an_unreachable_store_is_transient() {
        assert_eq!(
            failure_kind(&IndexError::InvalidPath("x".into())),
            FailureKind::Permanent
        );
        assert_eq!(
            failure_kind(&IndexError::Embed(EmbedError::Task("cancelled".into()))),
            FailureKind::Transient
        );
    }
}
