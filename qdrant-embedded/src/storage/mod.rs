//! The collection registry: one [`Collection`] per name, each in its own directory.
//!
//! Directories are named by a random id and carry a `collection.json` with the real name, so
//! any valid collection name is safe on disk. That file is written last, atomically, on create.
//! A delete first renames the directory to a tombstone (`.deleted-…`), atomically, then removes
//! it. On start, tombstones are removed and directories without `collection.json` (an
//! interrupted create) too, so after a crash a collection is either intact or gone, and the
//! server starts either way. All methods block: call them from `spawn_blocking`.

mod collection;
mod files;
mod oplog;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use qdrant_edge::external::uuid::Uuid;
use qdrant_edge::{EdgeConfig, WalOptions};
use serde_json::json;

pub(crate) use collection::Collection;

use crate::error::{ApiError, StartError};
use files::{sync_dir, write_atomic};

const META_FILE: &str = "collection.json";
const TOMBSTONE_PREFIX: &str = ".deleted-";

/// All collections of one server.
pub(crate) struct Storage {
    root: PathBuf,
    /// Engine WAL segment size and checkpoint threshold, in bytes.
    wal_capacity: usize,
    collections: RwLock<HashMap<String, Arc<Collection>>>,
    /// Serialises create and delete so a name is claimed once, without holding the map lock
    /// through the slow shard creation.
    lifecycle: Mutex<()>,
}

impl Storage {
    /// Open (or initialise) the storage under `data_dir`: finish interrupted deletes, drop
    /// interrupted creates, and reopen every collection, recovering its unflushed writes.
    pub(crate) fn open(data_dir: &Path, wal_capacity: usize) -> Result<Self, StartError> {
        let root = data_dir.join("collections");
        let dir_err = |source| StartError::DataDir {
            path: root.clone(),
            source,
        };
        fs::create_dir_all(&root).map_err(dir_err)?;
        let mut collections = HashMap::new();
        for entry in fs::read_dir(&root).map_err(dir_err)? {
            let dir = entry.map_err(dir_err)?.path();
            let is_tombstone = dir
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(TOMBSTONE_PREFIX));
            if is_tombstone {
                remove_tombstone(&dir);
                continue;
            }
            if !dir.is_dir() {
                continue;
            }
            let Some((name, created_at)) = read_meta(&dir) else {
                tracing::warn!(dir = %dir.display(), "removing the directory of an interrupted create");
                if let Err(err) = fs::remove_dir_all(&dir) {
                    tracing::warn!(dir = %dir.display(), error = %err, "could not remove it");
                }
                continue;
            };
            let collection =
                Collection::open(&dir, &name, created_at, wal_capacity).map_err(|message| {
                    StartError::OpenCollection {
                        path: dir.clone(),
                        message,
                    }
                })?;
            tracing::info!(collection = %name, "reopened collection");
            collections.insert(name, Arc::new(collection));
        }
        Ok(Self {
            root,
            wal_capacity,
            collections: RwLock::new(collections),
            lifecycle: Mutex::new(()),
        })
    }

    pub(crate) fn get(&self, name: &str) -> Result<Arc<Collection>, ApiError> {
        self.collections
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::CollectionNotFound(name.to_owned()))
    }

    pub(crate) fn exists(&self, name: &str) -> bool {
        self.collections
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(name)
    }

    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .collections
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    pub(crate) fn create(&self, name: &str, mut config: EdgeConfig) -> Result<(), ApiError> {
        let _lifecycle = self
            .lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.exists(name) {
            return Err(ApiError::CollectionExists(name.to_owned()));
        }
        config.wal_options = Some(WalOptions {
            segment_capacity: self.wal_capacity,
            ..WalOptions::default()
        });
        let dir = self.root.join(Uuid::new_v4().simple().to_string());
        let created_at = SystemTime::now();
        let collection = create_on_disk(&dir, name, created_at, config, self.wal_capacity)
            .inspect_err(|_| {
                let _ = fs::remove_dir_all(&dir);
            })?;
        self.collections
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), Arc::new(collection));
        Ok(())
    }

    /// Delete a collection; `false` when there was none by that name.
    pub(crate) fn delete(&self, name: &str) -> Result<bool, ApiError> {
        let _lifecycle = self
            .lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let removed = self
            .collections
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        let Some(collection) = removed else {
            return Ok(false);
        };
        collection.close();
        let tombstone = self
            .root
            .join(format!("{TOMBSTONE_PREFIX}{}", Uuid::new_v4().simple()));
        // The rename is the delete: from here on, a start finds a tombstone and removes it.
        fs::rename(collection.dir(), &tombstone)
            .and_then(|()| sync_dir(&self.root))
            .map_err(|err| {
                ApiError::Internal(format!("failed to remove collection files: {err}"))
            })?;
        remove_tombstone(&tombstone);
        Ok(true)
    }

    /// Close every shard (flushing it); used on shutdown.
    pub(crate) fn close_all(&self) {
        let collections: Vec<_> = self
            .collections
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, collection)| collection)
            .collect();
        for collection in collections {
            collection.close();
        }
    }
}

fn create_on_disk(
    dir: &Path,
    name: &str,
    created_at: SystemTime,
    config: EdgeConfig,
    wal_capacity: usize,
) -> Result<Collection, ApiError> {
    let io =
        |err: std::io::Error| ApiError::Internal(format!("failed to create collection: {err}"));
    fs::create_dir_all(dir).map_err(io)?;
    let collection = Collection::create(dir, name, created_at, config, wal_capacity)?;
    let millis = created_at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let meta = json!({ "name": name, "created_at_ms": millis });
    // Written last: its presence marks the collection as complete.
    write_atomic(&dir.join(META_FILE), meta.to_string().as_bytes()).map_err(io)?;
    Ok(collection)
}

/// Finish a delete; what cannot be removed now is retried on the next start.
fn remove_tombstone(dir: &Path) {
    if let Err(err) = fs::remove_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), error = %err, "could not remove a deleted collection's files");
    }
}

fn read_meta(dir: &Path) -> Option<(String, SystemTime)> {
    let text = fs::read_to_string(dir.join(META_FILE)).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let name = value.get("name")?.as_str()?.to_owned();
    let millis = value
        .get("created_at_ms")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    Some((name, UNIX_EPOCH + std::time::Duration::from_millis(millis)))
}
