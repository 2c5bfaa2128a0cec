//! The collection registry: one `qdrant-edge` shard per collection, each in its own directory.
//!
//! Directories are named by a random id and carry a `collection.json` with the real name, so
//! any valid collection name is safe on disk. That file is written last on create and the
//! directory is renamed away first on delete, so a crash never leaves a half collection that
//! reopens on restart. All methods block: call them from `spawn_blocking`.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use qdrant_edge::external::uuid::Uuid;
use qdrant_edge::{EdgeConfig, EdgeShard};
use serde_json::json;

use crate::error::{ApiError, StartError};

const META_FILE: &str = "collection.json";
const SHARD_DIR: &str = "shard";
const TRASH_PREFIX: &str = ".deleted-";

/// One open collection. The shard sits behind a lock so that delete and shutdown wait for
/// in-flight requests, then close it (closing flushes) before its files go away.
pub(crate) struct Collection {
    pub(crate) name: String,
    pub(crate) created_at: SystemTime,
    dir: PathBuf,
    shard: RwLock<Option<EdgeShard>>,
}

impl Collection {
    /// Run `f` against the open shard; a collection deleted meanwhile reads as missing.
    pub(crate) fn with_shard<T>(
        &self,
        f: impl FnOnce(&EdgeShard) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let guard = self.shard.read().unwrap_or_else(PoisonError::into_inner);
        match guard.as_ref() {
            Some(shard) => f(shard),
            None => Err(ApiError::CollectionNotFound(self.name.clone())),
        }
    }

    fn close(&self) {
        let shard = self
            .shard
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(shard);
    }
}

/// All collections of one server.
pub(crate) struct Storage {
    root: PathBuf,
    collections: RwLock<HashMap<String, Arc<Collection>>>,
    /// Serialises create and delete so a name is claimed once, without holding the map lock
    /// through the slow shard creation.
    lifecycle: Mutex<()>,
}

impl Storage {
    /// Open (or initialise) the storage under `data_dir`, reopening existing collections.
    pub(crate) fn open(data_dir: &Path) -> Result<Self, StartError> {
        let root = data_dir.join("collections");
        let dir_err = |source| StartError::DataDir {
            path: root.clone(),
            source,
        };
        fs::create_dir_all(&root).map_err(dir_err)?;
        let mut collections = HashMap::new();
        for entry in fs::read_dir(&root).map_err(dir_err)? {
            let dir = entry.map_err(dir_err)?.path();
            if !dir.is_dir() {
                continue;
            }
            let Some(meta) = read_meta(&dir) else {
                // Leftover of an interrupted create or delete.
                tracing::warn!(dir = %dir.display(), "removing incomplete collection directory");
                let _ = fs::remove_dir_all(&dir);
                continue;
            };
            let shard = EdgeShard::load(&dir.join(SHARD_DIR), None).map_err(|err| {
                StartError::OpenCollection {
                    path: dir.clone(),
                    message: err.to_string(),
                }
            })?;
            tracing::info!(collection = %meta.0, "reopened collection");
            collections.insert(
                meta.0.clone(),
                Arc::new(Collection {
                    name: meta.0,
                    created_at: meta.1,
                    dir,
                    shard: RwLock::new(Some(shard)),
                }),
            );
        }
        Ok(Self {
            root,
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

    pub(crate) fn create(&self, name: &str, config: EdgeConfig) -> Result<(), ApiError> {
        let _lifecycle = self
            .lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.exists(name) {
            return Err(ApiError::CollectionExists(name.to_owned()));
        }
        let dir = self.root.join(Uuid::new_v4().simple().to_string());
        let created_at = SystemTime::now();
        let shard = create_on_disk(&dir, name, created_at, config).inspect_err(|_| {
            let _ = fs::remove_dir_all(&dir);
        })?;
        self.collections
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                name.to_owned(),
                Arc::new(Collection {
                    name: name.to_owned(),
                    created_at,
                    dir,
                    shard: RwLock::new(Some(shard)),
                }),
            );
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
        let trash = self
            .root
            .join(format!("{TRASH_PREFIX}{}", Uuid::new_v4().simple()));
        fs::rename(&collection.dir, &trash)
            .and_then(|()| fs::remove_dir_all(&trash))
            .map_err(|err| {
                ApiError::Internal(format!("failed to remove collection files: {err}"))
            })?;
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
) -> Result<EdgeShard, ApiError> {
    let io =
        |err: std::io::Error| ApiError::Internal(format!("failed to create collection: {err}"));
    let shard_dir = dir.join(SHARD_DIR);
    fs::create_dir_all(&shard_dir).map_err(io)?;
    let shard = EdgeShard::new(&shard_dir, config)?;
    let millis = created_at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let meta = json!({ "name": name, "created_at_ms": millis });
    // Written last: its presence marks the collection as complete.
    fs::write(dir.join(META_FILE), meta.to_string()).map_err(io)?;
    Ok(shard)
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
