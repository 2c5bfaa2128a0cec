//! File rows: index one file sent in a request.

use std::path::PathBuf;

use queue::JobFailure;

use super::payload::FilePayload;
use super::source::RepositoryPolicy;
use super::versions::{Versioned, Versions};
use super::work::Work;
use crate::index::Indexer;
use crate::jobs::FileResult;

/// What the indexing handler needs besides the indexer.
#[derive(Clone, Debug)]
pub struct IndexConfig {
    /// Parent folder of repository checkouts; `None` = the system temp dir.
    pub scratch_dir: Option<PathBuf>,
    /// Largest file indexed, in bytes.
    pub max_file_bytes: usize,
    /// Which repositories may be checked out, and git's limits.
    pub repository: RepositoryPolicy,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            scratch_dir: None,
            max_file_bytes: 1024 * 1024,
            repository: RepositoryPolicy::default(),
        }
    }
}

/// Indexes one file sent in a request; `version` orders it among requests for the same file.
pub(crate) async fn index_file(
    indexer: &Indexer,
    versions: &Versions,
    config: &IndexConfig,
    file: &FilePayload,
    version: i64,
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
    let stored = Versioned {
        project: &file.project,
        path: &file.path,
        version,
    };
    match versions
        .index_file(indexer, stored, file.content.as_bytes())
        .await
    {
        Ok(result) => Work::file(result, None),
        Err(error) => {
            let message = error.to_string();
            let failure = JobFailure {
                kind: error.kind(),
                message: message.clone(),
            };
            tracing::warn!(error = %message, kind = failure.kind.as_str(), "indexing failed");
            Work::file(FileResult::failed(&file.path, message), Some(failure))
        }
    }
}
