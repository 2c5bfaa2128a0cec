//! One collection: a qdrant-edge shard plus the operation log that makes its acknowledged writes
//! survive a crash, with checkpoints that keep both the log and the engine's WAL bounded.
//!
//! A write is logged, then applied, then acknowledged; a failed one is taken out of the log
//! again. Once the log holds `wal_capacity` bytes, a checkpoint closes the shard (closing flushes
//! every segment to disk), trims the engine's WAL, empties the log and reopens the shard.
//! Opening does the same after replaying the log, so a crash at any point loses no acknowledged
//! write: operations are idempotent, and replaying ones the segments already hold is harmless.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use qdrant_edge::{EdgeConfig, EdgeShard, UpdateOperation};

use super::files::trim_engine_wal;
use super::oplog::Oplog;
use crate::error::ApiError;

const SHARD_DIR: &str = "shard";
const OPLOG_FILE: &str = "oplog";
/// The engine's WAL directory inside the shard (qdrant-edge's `WAL_PATH`).
const ENGINE_WAL_DIR: &str = "wal";

/// An open shard with its log. The log's mutex also serialises writes, so the log's order is
/// the order in which the engine applied them.
struct Open {
    shard: EdgeShard,
    log: Mutex<Oplog>,
}

/// One collection. The shard sits behind a lock so that delete, checkpoint and shutdown wait for
/// in-flight requests before closing it.
pub(crate) struct Collection {
    pub(crate) name: String,
    pub(crate) created_at: SystemTime,
    dir: PathBuf,
    /// Log size that triggers a checkpoint.
    wal_capacity: u64,
    open: RwLock<Option<Open>>,
}

impl Collection {
    /// Create the shard and an empty log in `dir` (which must exist).
    pub(crate) fn create(
        dir: &Path,
        name: &str,
        created_at: SystemTime,
        config: EdgeConfig,
        wal_capacity: usize,
    ) -> Result<Self, ApiError> {
        let io = |err: std::io::Error| {
            ApiError::Internal(format!("failed to create collection files: {err}"))
        };
        let shard_dir = dir.join(SHARD_DIR);
        std::fs::create_dir_all(&shard_dir).map_err(io)?;
        let shard = EdgeShard::new(&shard_dir, config)?;
        let log = Oplog::create(&dir.join(OPLOG_FILE)).map_err(io)?;
        Ok(Self::with_open(
            dir,
            name,
            created_at,
            wal_capacity,
            shard,
            log,
        ))
    }

    /// Reopen the collection in `dir`: load the shard, then apply what its log holds.
    pub(crate) fn open(
        dir: &Path,
        name: &str,
        created_at: SystemTime,
        wal_capacity: usize,
    ) -> Result<Self, String> {
        let shard_dir = dir.join(SHARD_DIR);
        trim_engine_wal(&shard_dir.join(ENGINE_WAL_DIR))
            .map_err(|err| format!("failed to trim the engine's WAL: {err}"))?;
        let shard = EdgeShard::load(&shard_dir, None).map_err(|err| err.to_string())?;
        let (mut log, records) = Oplog::open(&dir.join(OPLOG_FILE))
            .map_err(|err| format!("failed to read the operation log: {err}"))?;
        if !records.is_empty() {
            let count = records.len();
            replay(&shard, name, records, log.path())?;
            // Flushed, the replayed operations need no log any more.
            shard.flush();
            log.reset()
                .map_err(|err| format!("failed to empty the operation log: {err}"))?;
            tracing::info!(collection = %name, operations = count, "recovered unflushed writes");
        }
        Ok(Self::with_open(
            dir,
            name,
            created_at,
            wal_capacity,
            shard,
            log,
        ))
    }

    fn with_open(
        dir: &Path,
        name: &str,
        created_at: SystemTime,
        wal_capacity: usize,
        shard: EdgeShard,
        log: Oplog,
    ) -> Self {
        Self {
            name: name.to_owned(),
            created_at,
            dir: dir.to_owned(),
            wal_capacity: wal_capacity as u64,
            open: RwLock::new(Some(Open {
                shard,
                log: Mutex::new(log),
            })),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Run a read `f` against the open shard; a collection deleted meanwhile reads as missing.
    pub(crate) fn with_shard<T>(
        &self,
        f: impl FnOnce(&EdgeShard) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let guard = self.open.read().unwrap_or_else(PoisonError::into_inner);
        match guard.as_ref() {
            Some(open) => f(&open.shard),
            None => Err(ApiError::CollectionNotFound(self.name.clone())),
        }
    }

    /// Apply the write `build` makes, durably: once this returns `Ok`, the write survives a
    /// crash of the process.
    pub(crate) fn update(
        &self,
        build: impl FnOnce(&EdgeShard) -> Result<UpdateOperation, ApiError>,
    ) -> Result<(), ApiError> {
        let checkpoint_due = {
            let guard = self.open.read().unwrap_or_else(PoisonError::into_inner);
            let open = guard
                .as_ref()
                .ok_or_else(|| ApiError::CollectionNotFound(self.name.clone()))?;
            let mut log = open.log.lock().unwrap_or_else(PoisonError::into_inner);
            let operation = build(&open.shard)?;
            let record = serde_cbor::to_vec(&operation)
                .map_err(|err| ApiError::Internal(format!("failed to encode the write: {err}")))?;
            let io =
                |err: std::io::Error| ApiError::Internal(format!("failed to log the write: {err}"));
            let before = log.append(&record).map_err(io)?;
            let applied = catch_unwind(AssertUnwindSafe(|| open.shard.update(operation)));
            let failure = match applied {
                Ok(Ok(())) => None,
                Ok(Err(err)) => Some(ApiError::from(err)),
                Err(_) => Some(ApiError::Internal(
                    "the engine panicked on this write".into(),
                )),
            };
            if let Some(failure) = failure {
                // Not acknowledged, so not to be replayed either.
                log.rollback(before).map_err(io)?;
                return Err(failure);
            }
            log.len() >= self.wal_capacity
        };
        if checkpoint_due {
            // The write itself is safe in the log whatever happens here.
            if let Err(err) = self.checkpoint() {
                tracing::error!(collection = %self.name, error = %err, "checkpoint failed");
            }
        }
        Ok(())
    }

    /// Flush the shard by closing it, then empty the log, trim the engine's WAL and reopen.
    fn checkpoint(&self) -> Result<(), String> {
        let mut slot = self.open.write().unwrap_or_else(PoisonError::into_inner);
        let Some(Open { shard, log }) = slot.take() else {
            return Ok(()); // Deleted or closed meanwhile.
        };
        let mut log = log.into_inner().unwrap_or_else(PoisonError::into_inner);
        if log.len() < self.wal_capacity {
            // Another writer's checkpoint came first.
            *slot = Some(Open {
                shard,
                log: Mutex::new(log),
            });
            return Ok(());
        }
        let started = std::time::Instant::now();
        drop(shard);
        let shard_dir = self.dir.join(SHARD_DIR);
        let trimmed = trim_engine_wal(&shard_dir.join(ENGINE_WAL_DIR))
            .map_err(|err| format!("failed to trim the engine's WAL: {err}"));
        let emptied = log
            .reset()
            .map_err(|err| format!("failed to empty the operation log: {err}"));
        let shard = EdgeShard::load(&shard_dir, None)
            .map_err(|err| format!("failed to reopen the collection: {err}"))?;
        *slot = Some(Open {
            shard,
            log: Mutex::new(log),
        });
        tracing::debug!(collection = %self.name, elapsed = ?started.elapsed(), "checkpoint");
        trimmed.and(emptied)
    }

    /// Close the shard (closing flushes it) and empty the log; later requests read as missing.
    pub(crate) fn close(&self) {
        let taken = self
            .open
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(Open { shard, log }) = taken {
            drop(shard);
            let mut log = log.into_inner().unwrap_or_else(PoisonError::into_inner);
            if let Err(err) = log.reset() {
                // Harmless: the next start replays what the segments already hold.
                tracing::debug!(collection = %self.name, error = %err, "log not emptied on close");
            }
        }
    }
}

/// Apply logged operations again, in order. One the engine refuses is skipped, as a Qdrant
/// server skips a WAL entry that fails on replay.
fn replay(shard: &EdgeShard, name: &str, records: Vec<Vec<u8>>, log: &Path) -> Result<(), String> {
    for (index, record) in records.into_iter().enumerate() {
        let operation: UpdateOperation = serde_cbor::from_slice(&record).map_err(|err| {
            format!(
                "operation {index} in {} cannot be decoded ({err}); it was written by an \
                 incompatible version",
                log.display()
            )
        })?;
        match catch_unwind(AssertUnwindSafe(|| shard.update(operation))) {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(collection = %name, index, error = %err, "skipping a logged write the engine refuses");
            }
            Err(_) => {
                tracing::warn!(collection = %name, index, "skipping a logged write the engine panics on");
            }
        }
    }
    Ok(())
}
