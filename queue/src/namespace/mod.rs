//! Namespaces with an owner that may die: a test environment or a load-suite execution.
//!
//! The owner registers its namespace in `queue_namespaces` and holds a session advisory lock on it
//! through a dedicated connection. `Drop` does not run on SIGKILL, but the server frees the lock
//! when the connection dies, so [`reap_abandoned`] finds namespaces whose lock is free and removes
//! their data: the queues' rows and settings, and the rows of every table registered for them in
//! `queue_data_tables` ([`register_table`]), so this crate never names another owner's tables.
//!
//! A dead client's statements can still commit after its lock is gone: the server runs what was
//! already sent (or under way) before it notices the closed socket. So the owner names its
//! connections with [`client_name`], and the reaper ends those sessions and waits for them before
//! deleting; otherwise their rows would land after the delete and nobody would own them.

mod data;
mod locks;
mod reap;

use std::sync::LazyLock;

use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::QueueId;

pub use data::{delete_namespace, delete_queues, register_table, rows_written_outside, DataKey};
pub use locks::{hold_group, try_lock_group, unlock_group};
pub use reap::{reap_abandoned, reap_abandoned_on, reap_abandoned_unless, AbandonedNamespace};

/// The `application_name` for an owner's connections that write into `namespace` (`role` tells
/// them apart, e.g. `harness`, `load-admin`), which lets a reaper find its sessions left running.
/// The server keeps 63 bytes of it, so the namespace must be shorter than that to be matched.
pub fn client_name(role: &str, namespace: &str) -> String {
    format!("{role}:{namespace}")
}

/// Errors of namespace ownership.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// Another live owner holds this namespace.
    #[error("namespace {0:?} is held by another live owner")]
    Busy(String),
    /// The database refused or failed a statement.
    #[error("namespace database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Ownership of one namespace, for as long as this value (and its connection) lives.
#[derive(Debug)]
pub struct NamespaceGuard {
    namespace: String,
    conn: PgConnection,
}

impl NamespaceGuard {
    /// Registers `namespace` and takes its lock on a connection of its own.
    pub async fn acquire(
        options: &PgConnectOptions,
        namespace: &str,
        resources: Value,
    ) -> Result<Self, NamespaceError> {
        let mut conn = PgConnection::connect_with(options).await?;
        if !take(&mut conn, namespace, &resources, &[]).await? {
            return Err(NamespaceError::Busy(namespace.to_owned()));
        }
        Ok(Self {
            namespace: namespace.to_owned(),
            conn,
        })
    }

    /// The namespace's name.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Records a queue of this namespace, so a reaper deletes its rows if the owner dies.
    pub async fn register_queue(&mut self, queue: &QueueId) -> Result<(), NamespaceError> {
        sqlx::query(
            "UPDATE queue_namespaces SET queue_ids = array_append(queue_ids, $2)
             WHERE namespace = $1 AND NOT ($2 = ANY(queue_ids))",
        )
        .bind(&self.namespace)
        .bind(queue.as_str())
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }

    /// Deletes the namespace's data and registration, and gives up the lock.
    pub async fn release(mut self) -> Result<(), NamespaceError> {
        release(&mut self.conn, &self.namespace).await?;
        self.conn.close().await?;
        Ok(())
    }
}

/// Takes `namespace` on `conn`, a session that may hold many namespaces at once, registers it
/// with `queues` and empties them, along with the queues a dead previous owner of the name left.
/// False when a live owner holds it, or a dead one's sessions are still running.
pub async fn take(
    conn: &mut PgConnection,
    namespace: &str,
    resources: &Value,
    queues: &[&QueueId],
) -> Result<bool, NamespaceError> {
    if !locks::try_lock(&mut *conn, namespace).await? {
        return Ok(false);
    }
    let queues: Vec<&str> = queues.iter().map(|q| q.as_str()).collect();
    // One statement: `prev` sees the registration as it was before, so a dead owner's data is
    // deleted too (its queues and its resources' keys), and the result says whether there was one.
    static SQL: LazyLock<String> = LazyLock::new(|| {
        "WITH prev AS MATERIALIZED (
                 SELECT queue_ids, resources FROM queue_namespaces WHERE namespace = $1),
              reg AS (INSERT INTO queue_namespaces (namespace, resources, queue_ids)
                      VALUES ($1, $2, $3)
                      ON CONFLICT (namespace) DO UPDATE
                      SET resources = excluded.resources, queue_ids = excluded.queue_ids,
                          created_at = now()),
              ids AS (SELECT $3::text[] || coalesce((SELECT queue_ids FROM prev), '{}') AS ids)
         SELECT EXISTS (SELECT 1 FROM prev),
                (SELECT ids FROM ids),
                coalesce((SELECT resources FROM prev), '{}'::jsonb),
                queue_delete_data($1, (SELECT ids FROM ids),
                                  coalesce((SELECT resources FROM prev), '{}'::jsonb))::text"
            .to_owned()
    });
    let registered: Result<(bool, Vec<String>, Value, Option<String>), sqlx::Error> =
        sqlx::query_as(&SQL)
            .bind(namespace)
            .bind(resources)
            .bind(&queues)
            .fetch_one(&mut *conn)
            .await;
    let result = match registered {
        // A previous owner died holding the name: its sessions may still be writing into the
        // queues just emptied.
        Ok((true, ids, prev, _)) => after_dead_owner(&mut *conn, namespace, &ids, &prev).await,
        Ok((false, _, _, _)) => Ok(true),
        Err(err) => Err(err),
    };
    if !matches!(result, Ok(true)) {
        // Do not keep a lock on a namespace that was not taken.
        let _ = locks::unlock(conn, namespace).await;
    }
    Ok(result?)
}

/// Ends a dead previous owner's sessions, then deletes its data again (what they committed
/// meanwhile). False if its sessions are still running.
async fn after_dead_owner(
    conn: &mut PgConnection,
    namespace: &str,
    queues: &[String],
    resources: &Value,
) -> Result<bool, sqlx::Error> {
    if !reap::end_owner_sessions(&mut *conn, namespace).await? {
        return Ok(false);
    }
    data::delete_data(conn, namespace, queues, resources).await?;
    Ok(true)
}

/// Deletes `namespace`'s data and registration, then gives up its lock held by `conn`.
pub async fn release(conn: &mut PgConnection, namespace: &str) -> Result<(), NamespaceError> {
    delete_namespace(&mut *conn, namespace).await?;
    locks::unlock(conn, namespace).await?;
    Ok(())
}
