//! Namespaces with an owner that may die: a test environment or a load-suite execution.
//!
//! The owner registers its namespace in `queue_namespaces` and holds a session advisory lock on it
//! through a dedicated connection. `Drop` does not run on SIGKILL, but the server frees the lock
//! when the connection dies, so [`reap_abandoned`] finds namespaces whose lock is free and removes
//! their queues' rows.
//!
//! A dead client's statements can still commit after its lock is gone: the server runs what was
//! already sent (or under way) before it notices the closed socket. So the owner names its
//! connections with [`client_name`], and the reaper ends those sessions and waits for them before
//! deleting; otherwise their rows would land after the delete and nobody would own them.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};

use crate::queue::QueueId;

/// How long a reaper waits for a dead owner's sessions to end before leaving its namespace to a
/// later reaper.
const STRAGGLER_WAIT: Duration = Duration::from_secs(10);

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

    /// Deletes the namespace's queue rows and registration, and gives up the lock.
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
    if !try_lock(&mut *conn, namespace).await? {
        return Ok(false);
    }
    let queues: Vec<&str> = queues.iter().map(|q| q.as_str()).collect();
    // One statement: every CTE sees the registration as it was before, so a dead owner's queues
    // are emptied too, and the result says whether there was one.
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH queues AS (
                     SELECT $3::text[] || ARRAY(SELECT unnest(queue_ids) FROM queue_namespaces
                                                WHERE namespace = $1) AS ids),
                  reg AS (INSERT INTO queue_namespaces (namespace, resources, queue_ids)
                          VALUES ($1, $2, $3)
                          ON CONFLICT (namespace) DO UPDATE
                          SET resources = excluded.resources, queue_ids = excluded.queue_ids,
                              created_at = now()),
                  {}
             SELECT EXISTS (SELECT 1 FROM queue_namespaces WHERE namespace = $1),
                    (SELECT ids FROM queues)",
            queue_data_deletes("(SELECT ids FROM queues)")
        )
    });
    let registered: Result<(bool, Vec<String>), sqlx::Error> = sqlx::query_as(&SQL)
        .bind(namespace)
        .bind(resources)
        .bind(&queues)
        .fetch_one(&mut *conn)
        .await;
    let result = match registered {
        // A previous owner died holding the name: its sessions may still be writing into the
        // queues just emptied.
        Ok((true, ids)) => after_dead_owner(&mut *conn, namespace, &ids).await,
        Ok((false, _)) => Ok(true),
        Err(err) => Err(err),
    };
    if !matches!(result, Ok(true)) {
        // Do not keep a lock on a namespace that was not taken.
        let _ = unlock(conn, namespace).await;
    }
    Ok(result?)
}

/// Ends a dead previous owner's sessions, then empties its queues again (of what they committed
/// meanwhile). False if its sessions are still running.
async fn after_dead_owner(
    conn: &mut PgConnection,
    namespace: &str,
    queues: &[String],
) -> Result<bool, sqlx::Error> {
    if !end_owner_sessions(&mut *conn, namespace).await? {
        return Ok(false);
    }
    let queues: Vec<&str> = queues.iter().map(String::as_str).collect();
    delete_queues(conn, &queues).await?;
    Ok(true)
}

/// CTEs `jobs`, `api` and `settings` deleting everything kept for the queues in `ids` (an SQL
/// `text[]` expression): their rows, the reference service's API jobs on them (with their
/// per-file results) and their settings. The one list of what a queue leaves in the database.
fn queue_data_deletes(ids: &str) -> String {
    format!(
        "jobs AS (DELETE FROM queue_jobs WHERE queue_id = ANY({ids}::text[])),
         api AS (DELETE FROM index_jobs WHERE queue_id = ANY({ids}::text[])),
         settings AS (DELETE FROM queue_settings WHERE queue_id = ANY({ids}::text[]))"
    )
}

/// Deletes everything kept for `queues` in one statement: their rows, the reference service's
/// API jobs on them and their settings (test and benchmark teardown, a dead owner's leftovers).
pub async fn delete_queues<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    queues: &[&str],
) -> Result<(), sqlx::Error> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("WITH {} SELECT 1", queue_data_deletes("$1")));
    sqlx::query(&SQL).bind(queues).execute(executor).await?;
    Ok(())
}

/// Deletes `namespace`'s rows and registration, then gives up its lock held by `conn`.
pub async fn release(conn: &mut PgConnection, namespace: &str) -> Result<(), NamespaceError> {
    delete_namespace(&mut *conn, namespace).await?;
    unlock(conn, namespace).await?;
    Ok(())
}

/// The session advisory lock of a namespace or group name, if free (or already this session's).
async fn try_lock(conn: &mut PgConnection, key: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(key)
        .fetch_one(conn)
        .await
}

async fn unlock(conn: &mut PgConnection, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Holds a shared lock on `group` (e.g. a test run) on `conn` for as long as the session lives,
/// so a reaper that takes the group's lock exclusively ([`try_lock_group`]) knows no member is
/// alive. Waits while a reaper holds it.
pub async fn hold_group(conn: &mut PgConnection, group: &str) -> Result<(), NamespaceError> {
    sqlx::query("SELECT pg_advisory_lock_shared(hashtextextended($1, 0))")
        .bind(group)
        .execute(conn)
        .await?;
    Ok(())
}

/// Takes `group`'s lock exclusively on `conn` if no member holds it ([`hold_group`]): while held,
/// no member of the group is alive and none can start. Give it back with [`unlock_group`].
pub async fn try_lock_group(conn: &mut PgConnection, group: &str) -> Result<bool, NamespaceError> {
    Ok(try_lock(conn, group).await?)
}

/// Gives back a lock taken with [`try_lock_group`].
pub async fn unlock_group(conn: &mut PgConnection, group: &str) -> Result<(), NamespaceError> {
    Ok(unlock(conn, group).await?)
}

/// Deletes a namespace's queue rows, API jobs (`index_jobs` of its queues, with their per-file
/// results), settings, ledger rows and registration in one statement (no lock taken: the caller
/// owns the namespace, or knows its owner is gone).
pub async fn delete_namespace(conn: &mut PgConnection, namespace: &str) -> Result<(), sqlx::Error> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH q AS (SELECT ARRAY(SELECT unnest(queue_ids) FROM queue_namespaces
                                     WHERE namespace = $1) AS ids),
                  {},
                  ledger AS (DELETE FROM load_ledger
                             WHERE namespace = ANY(ARRAY[$1::text] || (SELECT ids FROM q))),
                  reg AS (DELETE FROM queue_namespaces WHERE namespace = $1)
             SELECT 1",
            queue_data_deletes("(SELECT ids FROM q)")
        )
    });
    sqlx::query(&SQL).bind(namespace).execute(conn).await?;
    Ok(())
}

/// Removes every namespace starting with `prefix` whose owner is gone (its lock is free): its
/// queues' rows, ledger rows and registration. Returns what was removed, so the caller can remove
/// the resources it registered. Live owners (this process's included) are left alone.
pub async fn reap_abandoned(
    pool: &PgPool,
    prefix: &str,
) -> Result<Vec<AbandonedNamespace>, NamespaceError> {
    let mut conn = pool.acquire().await?;
    reap_abandoned_on(&mut conn, prefix, &[]).await
}

/// [`reap_abandoned`] on a session that itself holds the namespaces in `held` (advisory locks are
/// re-entrant within a session, so those must be left out by name).
pub async fn reap_abandoned_on(
    conn: &mut PgConnection,
    prefix: &str,
    held: &[String],
) -> Result<Vec<AbandonedNamespace>, NamespaceError> {
    // One round trip when nothing is abandoned: the candidates are filtered first (MATERIALIZED),
    // then each free lock is taken in the same statement.
    let dead: Vec<AbandonedNamespace> = sqlx::query_as(
        "WITH candidates AS MATERIALIZED (
             SELECT namespace, queue_ids, resources FROM queue_namespaces
             WHERE starts_with(namespace, $1) AND namespace <> ALL($2))
         SELECT namespace, queue_ids, resources FROM candidates
         WHERE pg_try_advisory_lock(hashtextextended(namespace, 0))",
    )
    .bind(prefix)
    .bind(held)
    .fetch_all(&mut *conn)
    .await?;
    let mut reaped = Vec::new();
    let mut failure = None;
    for candidate in dead {
        if !end_owner_sessions(&mut *conn, &candidate.namespace).await? {
            unlock(&mut *conn, &candidate.namespace).await?;
            tracing::warn!(namespace = %candidate.namespace, "a dead owner's sessions are still running; leaving its namespace to a later reaper");
            continue;
        }
        let result = delete_namespace(&mut *conn, &candidate.namespace).await;
        // Unlock even after a failed delete: the lock was only taken to reap.
        unlock(&mut *conn, &candidate.namespace).await?;
        match result {
            Ok(()) => {
                tracing::info!(namespace = %candidate.namespace, "reaped abandoned namespace");
                reaped.push(candidate);
            }
            Err(err) => failure = Some(err),
        }
    }
    match failure {
        Some(err) => Err(err.into()),
        None => Ok(reaped),
    }
}

/// Ends the sessions named with [`client_name`] for `namespace` (their open statements roll back)
/// and waits until none is left. False if some still run after [`STRAGGLER_WAIT`].
async fn end_owner_sessions(conn: &mut PgConnection, namespace: &str) -> Result<bool, sqlx::Error> {
    const SESSIONS: &str = "FROM pg_stat_activity
         WHERE pid <> pg_backend_pid() AND datname = current_database()
           AND right(application_name, length($1)) = $1";
    let suffix = format!(":{namespace}");
    // Another role's sessions may not be ours to end: then they are only waited for (a dead
    // client's session ends by itself once its statement is done).
    if let Err(err) = sqlx::query(&format!("SELECT pg_terminate_backend(pid) {SESSIONS}"))
        .bind(&suffix)
        .execute(&mut *conn)
        .await
    {
        tracing::debug!(%namespace, error = %err, "could not end a dead owner's sessions; waiting for them");
    }
    let deadline = Instant::now() + STRAGGLER_WAIT;
    loop {
        let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) {SESSIONS}"))
            .bind(&suffix)
            .fetch_one(&mut *conn)
            .await?;
        if left == 0 {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
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
