//! Namespaces with an owner that may die: a test environment or a load-suite execution.
//!
//! The owner registers its namespace in `queue_namespaces` and holds a session advisory lock on it
//! through a dedicated connection. `Drop` does not run on SIGKILL, but the server frees the lock
//! when the connection dies, so [`reap_abandoned`] finds namespaces whose lock is free and removes
//! their queues' rows.

use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};

use crate::queue::QueueId;

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

/// A namespace whose owner died, removed by [`reap_abandoned`].
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AbandonedNamespace {
    /// Its name.
    pub namespace: String,
    /// The queues whose rows were deleted.
    pub queue_ids: Vec<String>,
    /// What else the owner registered (for the caller to remove, e.g. Qdrant collections).
    pub resources: Value,
}

impl NamespaceGuard {
    /// Registers `namespace` and takes its lock on a connection of its own.
    pub async fn acquire(
        options: &PgConnectOptions,
        namespace: &str,
        resources: Value,
    ) -> Result<Self, NamespaceError> {
        let mut conn = PgConnection::connect_with(options).await?;
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(namespace)
                .fetch_one(&mut conn)
                .await?;
        if !locked {
            return Err(NamespaceError::Busy(namespace.to_owned()));
        }
        // A previous owner of this name that died left its row: take it over (rows are cleaned
        // by the caller at acquire, since the name is being reused).
        sqlx::query(
            "INSERT INTO queue_namespaces (namespace, resources) VALUES ($1, $2)
             ON CONFLICT (namespace) DO UPDATE SET resources = excluded.resources, created_at = now()",
        )
        .bind(namespace)
        .bind(&resources)
        .execute(&mut conn)
        .await?;
        Ok(Self {
            namespace: namespace.to_owned(),
            conn,
        })
    }

    /// The namespace's name.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Also holds a shared lock on `group` (e.g. a test run) for as long as this guard lives, so a
    /// reaper that takes the group's lock exclusively knows no member is alive. Waits while a
    /// reaper holds it.
    pub async fn hold_group(&mut self, group: &str) -> Result<(), NamespaceError> {
        sqlx::query("SELECT pg_advisory_lock_shared(hashtextextended($1, 0))")
            .bind(group)
            .execute(&mut self.conn)
            .await?;
        Ok(())
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

    /// Replaces the namespace's extra resources.
    pub async fn set_resources(&mut self, resources: &Value) -> Result<(), NamespaceError> {
        sqlx::query("UPDATE queue_namespaces SET resources = $2 WHERE namespace = $1")
            .bind(&self.namespace)
            .bind(resources)
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }

    /// Deletes the namespace's queue rows and registration, and gives up the lock.
    pub async fn release(mut self) -> Result<(), NamespaceError> {
        let mut tx = self.conn.begin().await?;
        delete_namespace(&mut tx, &self.namespace).await?;
        tx.commit().await?;
        sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
            .bind(&self.namespace)
            .execute(&mut self.conn)
            .await?;
        self.conn.close().await?;
        Ok(())
    }
}

/// Deletes a namespace's queue rows, settings, ledger rows and registration (no lock taken: the
/// caller owns the namespace, or knows its owner is gone).
pub async fn delete_namespace(conn: &mut PgConnection, namespace: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM queue_jobs WHERE queue_id = ANY(
             SELECT unnest(queue_ids) FROM queue_namespaces WHERE namespace = $1)",
    )
    .bind(namespace)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM queue_settings WHERE queue_id = ANY(
             SELECT unnest(queue_ids) FROM queue_namespaces WHERE namespace = $1)",
    )
    .bind(namespace)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM load_ledger WHERE namespace = $1 OR namespace = ANY(
             SELECT unnest(queue_ids) FROM queue_namespaces WHERE namespace = $1)",
    )
    .bind(namespace)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM queue_namespaces WHERE namespace = $1")
        .bind(namespace)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Removes every namespace starting with `prefix` whose owner is gone (its lock is free): its
/// queues' rows, ledger rows and registration. Returns what was removed, so the caller can remove
/// the resources it registered. Live owners (this process's included) are left alone.
pub async fn reap_abandoned(
    pool: &PgPool,
    prefix: &str,
) -> Result<Vec<AbandonedNamespace>, NamespaceError> {
    let candidates: Vec<AbandonedNamespace> = sqlx::query_as(
        "SELECT namespace, queue_ids, resources FROM queue_namespaces
         WHERE starts_with(namespace, $1)",
    )
    .bind(prefix)
    .fetch_all(pool)
    .await?;
    let mut reaped = Vec::new();
    let mut conn = pool.acquire().await?;
    for candidate in candidates {
        let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(&candidate.namespace)
            .fetch_one(&mut *conn)
            .await?;
        if !free {
            continue;
        }
        let result = async {
            let mut tx = (*conn).begin().await?;
            delete_namespace(&mut tx, &candidate.namespace).await?;
            tx.commit().await
        }
        .await;
        sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
            .bind(&candidate.namespace)
            .execute(&mut *conn)
            .await?;
        result?;
        tracing::info!(namespace = %candidate.namespace, "reaped abandoned namespace");
        reaped.push(candidate);
    }
    Ok(reaped)
}

/// An exclusive hold on a group (see [`NamespaceGuard::hold_group`]): while held, no member of
/// the group is alive and none can start.
#[derive(Debug)]
pub struct GroupLock {
    group: String,
    conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
}

impl GroupLock {
    /// Takes the group's lock if no member holds it; `None` when some member is alive.
    pub async fn try_acquire(pool: &PgPool, group: &str) -> Result<Option<Self>, NamespaceError> {
        let mut conn = pool.acquire().await?;
        let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(group)
            .fetch_one(&mut *conn)
            .await?;
        Ok(free.then(|| Self {
            group: group.to_owned(),
            conn,
        }))
    }

    /// Gives the lock back.
    pub async fn release(mut self) -> Result<(), NamespaceError> {
        sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
            .bind(&self.group)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }
}

/// Queues other than `own` that rows written by clients named `application_name` went to: a
/// test that enqueued outside its namespace.
pub async fn rows_written_outside<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    application_name: &str,
    own: &QueueId,
) -> Result<Vec<(String, i64)>, NamespaceError> {
    let rows = sqlx::query_as(
        "SELECT queue_id, count(*) FROM queue_jobs
         WHERE created_by = $1 AND queue_id <> $2
         GROUP BY queue_id ORDER BY queue_id",
    )
    .bind(application_name)
    .bind(own.as_str())
    .fetch_all(executor)
    .await?;
    Ok(rows)
}
