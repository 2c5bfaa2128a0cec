//! Re-indexing serialized per file: the newest request wins.
//!
//! A worker chunks and embeds a file without any lock (that is the slow part), then stores it
//! under a per-(collection, project, path) advisory lock, and only if no newer request for that
//! file has been stored: requests are ordered by their queue row id, which grows with enqueue
//! order. Storing replaces every chunk of the file, so however two re-indexes of one file
//! interleave, the file ends with the newest one's chunks, and an older request that comes last
//! is recorded as superseded instead of bringing old chunks back.

use queue::{FailureKind, Queue};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::work::{failure_kind, file_result};
use crate::index::{IndexError, Indexer};
use crate::jobs::FileResult;

/// Skip reason of a file whose newer version was stored first.
pub const SUPERSEDED_REASON: &str = "superseded: a newer request for this file was stored";

/// First key of the advisory locks taken here (the second is from the file's key).
const LOCK_CLASS: i32 = 0x7176_6669; // "qvfi"

/// Why a file could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreFileError {
    /// Chunking, embedding or Qdrant failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The version bookkeeping failed.
    #[error("recording the file's version failed: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreFileError {
    /// An unreachable database is an outage, other database trouble passes; indexing errors
    /// are classified as usual.
    pub fn kind(&self) -> FailureKind {
        match self {
            StoreFileError::Index(error) => failure_kind(error),
            StoreFileError::Database(error) if queue::db::is_unavailable(error) => {
                FailureKind::Unavailable
            }
            StoreFileError::Database(_) => FailureKind::Transient,
        }
    }
}

/// A file to store, and the request it comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Versioned<'a> {
    pub(crate) project: &'a str,
    pub(crate) path: &'a str,
    /// The queue row id of the request.
    pub(crate) version: i64,
}

/// Stores files of queue rows, newest request first.
#[derive(Clone, Debug)]
pub struct Versions {
    pool: PgPool,
    queue_id: String,
    collection: String,
}

impl Versions {
    /// Versions of the files `queue`'s rows store into `collection`.
    pub fn new(queue: &Queue, collection: impl Into<String>) -> Self {
        Self {
            pool: queue.pool().clone(),
            queue_id: queue.id().to_string(),
            collection: collection.into(),
        }
    }

    /// Chunks and embeds `content`, then stores it unless a newer request for the file was
    /// stored already (then the result is skipped as superseded).
    pub(crate) async fn index_file(
        &self,
        indexer: &Indexer,
        file: Versioned<'_>,
        content: &[u8],
    ) -> Result<FileResult, StoreFileError> {
        let prepared = indexer
            .prepare_file(file.project, file.path, content)
            .await?;
        let key = self.file_key(file.project, file.path);
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(LOCK_CLASS)
            .bind(i32::from_be_bytes([key[0], key[1], key[2], key[3]]))
            .execute(&mut *tx)
            .await?;
        let stored: Option<i64> =
            sqlx::query_scalar("SELECT version FROM index_file_versions WHERE file_key = $1")
                .bind(key.as_slice())
                .fetch_optional(&mut *tx)
                .await?;
        if stored.is_some_and(|stored| stored > file.version) {
            tx.rollback().await?;
            tracing::info!(
                version = file.version,
                stored = stored.unwrap_or_default(),
                "a newer request for this file was stored; this one is superseded"
            );
            return Ok(FileResult::skipped(file.path, SUPERSEDED_REASON));
        }
        // Under the lock: the chunks of whichever request stored before are replaced whole.
        let outcome = indexer.store_file(prepared).await?;
        sqlx::query(
            "INSERT INTO index_file_versions (file_key, version, queue_id)
             VALUES ($1, $2, $3)
             ON CONFLICT (file_key) DO UPDATE
             SET version = excluded.version, queue_id = excluded.queue_id, stored_at = now()",
        )
        .bind(key.as_slice())
        .bind(file.version)
        .bind(&self.queue_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(file_result(file.path, outcome))
    }

    fn file_key(&self, project: &str, path: &str) -> [u8; 32] {
        // NUL separators: no part can contain one (names and paths are validated).
        let mut hasher = Sha256::new();
        for part in [self.collection.as_str(), project, path] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        hasher.finalize().into()
    }
}
