//! File rows: index one file sent in a request.

use std::path::PathBuf;

use queue::JobFailure;

use super::payload::FilePayload;
use super::work::{failure_kind, file_result, Work};
use crate::index::Indexer;
use crate::jobs::FileResult;

/// What the indexing handler needs besides the indexer.
#[derive(Clone, Debug)]
pub struct IndexConfig {
    /// Parent folder of repository checkouts; `None` = the system temp dir.
    pub scratch_dir: Option<PathBuf>,
    /// Largest file indexed, in bytes.
    pub max_file_bytes: usize,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            scratch_dir: None,
            max_file_bytes: 1024 * 1024,
        }
    }
}

/// Indexes one file sent in a request.
pub(crate) async fn index_file(
    indexer: &Indexer,
    config: &IndexConfig,
    file: &FilePayload,
) -> Work {
    let limit = config.max_file_bytes;
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
    match indexer
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
