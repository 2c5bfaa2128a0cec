//! Reaping namespaces whose owner died, and ending the sessions it left running.

use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use super::{data, locks, NamespaceError};

/// How long a reaper waits for a dead owner's sessions to end before leaving its namespace to a
/// later reaper.
const STRAGGLER_WAIT: Duration = Duration::from_secs(10);

/// A namespace whose owner died, removed by [`reap_abandoned`].
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AbandonedNamespace {
    /// Its name.
    pub namespace: String,
    /// The queues whose data was deleted.
    pub queue_ids: Vec<String>,
    /// What else the owner registered (for the caller to remove, e.g. Qdrant collections).
    pub resources: Value,
}

/// Removes every namespace starting with `prefix` whose owner is gone (its lock is free): its
/// queues' data and its registration. Returns what was removed, so the caller can remove the
/// resources it registered outside the database. Live owners (this process's included) are
/// left alone.
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
    reap_abandoned_unless(conn, prefix, held, |_| false).await
}

/// [`reap_abandoned_on`], sparing the namespaces `alive` says are still owned (e.g. an owner
/// whose process still runs, whose lock went with a dropped connection and will be taken back).
pub async fn reap_abandoned_unless(
    conn: &mut PgConnection,
    prefix: &str,
    held: &[String],
    alive: impl Fn(&AbandonedNamespace) -> bool,
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
        if alive(&candidate) {
            locks::unlock(&mut *conn, &candidate.namespace).await?;
            tracing::debug!(namespace = %candidate.namespace, "its lock is free but its owner lives; not reaped");
            continue;
        }
        if !end_owner_sessions(&mut *conn, &candidate.namespace).await? {
            locks::unlock(&mut *conn, &candidate.namespace).await?;
            tracing::warn!(namespace = %candidate.namespace, "a dead owner's sessions are still running; leaving its namespace to a later reaper");
            continue;
        }
        let result = data::delete_namespace(&mut *conn, &candidate.namespace).await;
        // Unlock even after a failed delete: the lock was only taken to reap.
        locks::unlock(&mut *conn, &candidate.namespace).await?;
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

/// Ends the sessions named with [`super::client_name`] for `namespace` (their open statements
/// roll back) and waits until none is left. False if some still run after [`STRAGGLER_WAIT`].
pub(super) async fn end_owner_sessions(
    conn: &mut PgConnection,
    namespace: &str,
) -> Result<bool, sqlx::Error> {
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
