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

/// Whether an indexing error is worth another attempt: an unreachable Qdrant, a failed model
/// task or a model panic (the next attempt gets a fresh session) may work later; bad input,
/// parse and size problems will not.
pub fn failure_kind(error: &IndexError) -> FailureKind {
    match error {
        IndexError::Store(StoreError::Qdrant { .. }) => FailureKind::Transient,
        IndexError::Embed(
            EmbedError::Task(_)
            | EmbedError::Panicked(_)
            | EmbedError::Read { .. }
            | EmbedError::ModelFileMissing { .. }
            | EmbedError::RuntimeMissing { .. }
            | EmbedError::RuntimeUnusable { .. },
        ) => FailureKind::Transient,
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
