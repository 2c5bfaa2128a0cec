//! The result of working a row, before it is recorded, and how indexing errors are classified.

use queue::{FailureKind, JobFailure};

use crate::index::{EmbedError, IndexError, IndexOutcome, StoreError};
use crate::jobs::FileResult;

/// What working a row produced: the attempt's result and the file results to record with it.
#[derive(Debug, Default)]
pub struct Work {
    /// File results to record once the row is finished (completed or dead).
    pub results: Vec<FileResult>,
    /// Why the attempt failed; `None` completes the row.
    pub failure: Option<JobFailure>,
    /// Number of files, for repository rows.
    pub files_total: Option<usize>,
}

impl Work {
    /// One file's result, and the attempt's failure if any.
    pub(crate) fn file(result: FileResult, failure: Option<JobFailure>) -> Self {
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

/// How an indexing error counts: Qdrant out of reach, or a model that cannot be loaded, is an
/// outage ([`FailureKind::Unavailable`]: the worker stops claiming and the row waits without
/// losing an attempt); a failed model task or a model panic (the next attempt gets a fresh
/// session) may work on another attempt; bad input, parse and size problems never will.
pub fn failure_kind(error: &IndexError) -> FailureKind {
    match error {
        IndexError::Store(error) if error.is_outage() => FailureKind::Unavailable,
        IndexError::Store(StoreError::Qdrant { .. }) => FailureKind::Transient,
        IndexError::Embed(
            EmbedError::Read { .. }
            | EmbedError::ModelFileMissing { .. }
            | EmbedError::RuntimeMissing { .. }
            | EmbedError::RuntimeUnusable { .. },
        ) => FailureKind::Unavailable,
        IndexError::Embed(EmbedError::Task(_) | EmbedError::Panicked(_)) => FailureKind::Transient,
        _ => FailureKind::Permanent,
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
    fn bad_input_is_permanent_and_a_failed_model_task_is_transient() {
        assert_eq!(
            failure_kind(&IndexError::InvalidPath("x".into())),
            FailureKind::Permanent
        );
        assert_eq!(
            failure_kind(&IndexError::Embed(EmbedError::Task("cancelled".into()))),
            FailureKind::Transient
        );
    }

    #[test]
    fn an_unreachable_qdrant_or_a_missing_model_is_an_outage_and_a_refusal_is_not() {
        let qdrant = |code, message: &str| {
            IndexError::Store(StoreError::Qdrant {
                operation: "upsert",
                source: Box::new(qdrant_client::QdrantError::ResponseError {
                    status: tonic::Status::new(code, message),
                }),
            })
        };
        assert_eq!(
            failure_kind(&qdrant(tonic::Code::Unavailable, "x")),
            FailureKind::Unavailable
        );
        assert_eq!(
            failure_kind(&qdrant(tonic::Code::DeadlineExceeded, "x")),
            FailureKind::Unavailable
        );
        assert_eq!(
            failure_kind(&qdrant(tonic::Code::InvalidArgument, "x")),
            FailureKind::Transient
        );
        assert_eq!(
            failure_kind(&qdrant(tonic::Code::Internal, "x")),
            FailureKind::Transient
        );
        assert_eq!(
            failure_kind(&qdrant(
                tonic::Code::Internal,
                "Failed to connect to http://127.0.0.1:6334/: tcp connect error"
            )),
            FailureKind::Unavailable
        );
        assert_eq!(
            failure_kind(&IndexError::Embed(EmbedError::ModelFileMissing {
                path: "model.onnx".into()
            })),
            FailureKind::Unavailable
        );
    }
}
