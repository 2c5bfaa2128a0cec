//! Keeping `queue_jobs` compact when the server's autovacuum is off or behind.
//!
//! Every claim and completion leaves a dead row version behind. On a server with autovacuum off
//! (seen on a shared test server: 5 million dead versions, 1.1 GB for 7,000 live rows) the
//! statistics go stale, plans turn to sequential scans and claims slow down several-fold.
//! Long-lived processes (a service with [`super::MaintenanceConfig::vacuum_interval`] set, the
//! queue benchmark) call this now and then; short-lived test processes do not, since their exit
//! would cut a rebuild off. It costs two catalog queries unless there is work to do.

use sqlx::{PgConnection, PgPool};

use crate::QueueError;

/// The vacuum service: [`vacuum_if_bloated`] on a connection of its pool.
#[derive(Clone, Debug)]
pub struct Vacuumer {
    pool: PgPool,
}

impl Vacuumer {
    /// The service over `pool`'s database.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// One check, and a compaction when due; true when it did anything.
    pub async fn run_once(&self) -> Result<bool, QueueError> {
        let mut conn = self.pool.acquire().await?;
        vacuum_if_bloated(&mut conn).await
    }
}

/// Key of the advisory lock that keeps concurrent processes from vacuuming at once ("qv-vacu").
const VACUUM_LOCK_KEY: i64 = 0x0071_762d_7661_6375;

/// Dead row versions below which a vacuum is never worth it.
const MIN_DEAD: i64 = 50_000;

/// Whether `queue_jobs` needs a vacuum: its dead row versions exceed both 50,000 and a fifth of
/// its live rows. One statistics query.
pub async fn vacuum_due(conn: &mut PgConnection) -> Result<bool, QueueError> {
    let stats: Option<(i64, i64)> = sqlx::query_as(
        "SELECT n_dead_tup, n_live_tup FROM pg_stat_user_tables
         WHERE relid = 'queue_jobs'::regclass",
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(stats.is_some_and(|(dead, live)| dead >= MIN_DEAD && dead >= live / 5))
}

/// Runs `VACUUM (ANALYZE) queue_jobs` when [`vacuum_due`], and rebuilds the indexes that stay
/// bloated, when no other process is already doing either; returns whether it did anything.
/// Takes seconds on a bloated table: call it off the hot path, from a process that lives on.
pub async fn vacuum_if_bloated(conn: &mut PgConnection) -> Result<bool, QueueError> {
    let due = vacuum_due(&mut *conn).await?;
    if !due && bloated_indexes(&mut *conn).await?.is_empty() {
        return Ok(false);
    }
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(VACUUM_LOCK_KEY)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(false);
    }
    let result = compact(&mut *conn, due).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(VACUUM_LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    result?;
    Ok(true)
}

/// Indexes of `queue_jobs` over 8 MB and over 1 KB per entry (a healthy entry takes tens of
/// bytes). A vacuum frees index pages for reuse but never shrinks the index, and the planner
/// prices an index by its size. Seen here: a 197 MB ready index holding a few hundred rows made
/// the planner prefer a scan of every row of the queue plus a sort, and claims fell from ~18,000
/// to ~1,300 jobs/s.
async fn bloated_indexes(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT format('%I.%I', n.nspname, c.relname)
         FROM pg_index i
         JOIN pg_class c ON c.oid = i.indexrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE i.indrelid = 'queue_jobs'::regclass AND i.indisvalid
           AND pg_relation_size(i.indexrelid) > 8 * 1024 * 1024
           AND pg_relation_size(i.indexrelid) > 1024 * greatest(c.reltuples, 1)",
    )
    .fetch_all(conn)
    .await
}

/// Vacuums (when `vacuum`), drops what an interrupted rebuild left behind, rebuilds bloated
/// indexes. The caller holds the vacuum lock.
async fn compact(conn: &mut PgConnection, vacuum: bool) -> Result<(), sqlx::Error> {
    if vacuum {
        tracing::info!("vacuuming queue_jobs");
        sqlx::query("VACUUM (ANALYZE) queue_jobs")
            .execute(&mut *conn)
            .await?;
    }
    // A REINDEX CONCURRENTLY cut off (its process killed) leaves an invalid copy that every
    // write still maintains; no rebuild of ours is running while we hold the lock.
    let leftovers: Vec<String> = sqlx::query_scalar(
        "SELECT format('%I.%I', n.nspname, c.relname)
         FROM pg_index i
         JOIN pg_class c ON c.oid = i.indexrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE i.indrelid = 'queue_jobs'::regclass AND NOT i.indisvalid
           AND c.relname ~ '_cc(new|old)[0-9]*$'",
    )
    .fetch_all(&mut *conn)
    .await?;
    for index in leftovers {
        tracing::warn!(%index, "dropping what an interrupted index rebuild left");
        sqlx::query(&format!("DROP INDEX CONCURRENTLY IF EXISTS {index}"))
            .execute(&mut *conn)
            .await?;
    }
    for index in bloated_indexes(&mut *conn).await? {
        tracing::info!(%index, "rebuilding a bloated queue index");
        // CONCURRENTLY: claims and enqueues go on meanwhile.
        sqlx::query(&format!("REINDEX INDEX CONCURRENTLY {index}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
