//! The pruner: finished rows (completed and dead) leave the table once the queue's
//! [`Retention`] says so, so `queue_jobs` stays the size of the work in flight plus the history
//! the owner chose to keep.

use std::time::Duration;

use sqlx::PgConnection;

use crate::{Queue, QueueError};

/// Rows deleted per statement: short transactions, short locks, bounded WAL bursts.
const BATCH: i64 = 1000;

/// How long a queue keeps its finished rows. Dead rows keep every error until they are pruned
/// or redriven.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Completed rows finished longer ago than this are deleted. Default one day.
    pub completed_for: Duration,
    /// At most this many completed rows are kept (the newest), whatever their age. Default: no
    /// limit but the age.
    pub completed_keep: Option<u64>,
    /// Dead rows finished longer ago than this are deleted, errors and all. Default seven days.
    pub dead_for: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            completed_for: Duration::from_secs(24 * 60 * 60),
            completed_keep: None,
            dead_for: Duration::from_secs(7 * 24 * 60 * 60),
        }
    }
}

/// What one prune deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Completed rows deleted.
    pub completed: u64,
    /// Dead rows deleted.
    pub dead: u64,
}

/// Prunes one queue's finished rows by its [`Retention`].
#[derive(Clone, Debug)]
pub struct Pruner {
    queue: Queue,
    retention: Retention,
}

impl Pruner {
    /// The pruner of `queue` (on its clock).
    pub fn new(queue: Queue, retention: Retention) -> Self {
        Self { queue, retention }
    }

    /// One prune, unless another process is pruning this queue right now (then `None`).
    #[tracing::instrument(skip_all, fields(queue_id = %self.queue.id()))]
    pub async fn run_once(&self) -> Result<Option<Pruned>, QueueError> {
        let mut conn = self.queue.pool().acquire().await?;
        let key = format!("queue-prune:{}", self.queue.id());
        if !super::try_lock(&mut conn, &key).await? {
            return Ok(None);
        }
        let pruned = self.prune(&mut conn).await;
        super::unlock(&mut conn, &key).await?;
        let pruned = pruned?;
        if pruned != Pruned::default() {
            tracing::info!(
                completed = pruned.completed,
                dead = pruned.dead,
                "finished rows pruned"
            );
        }
        Ok(Some(pruned))
    }

    async fn prune(&self, conn: &mut PgConnection) -> Result<Pruned, QueueError> {
        let mut pruned = Pruned::default();
        // Completed rows past their age, oldest first (queue_jobs_completed_idx).
        pruned.completed += self
            .repeat(
                conn,
                "
                DELETE FROM queue_jobs WHERE id IN (
                    SELECT id FROM queue_jobs
                    WHERE queue_id = $1 AND status = 'completed'
                      AND finished_at < coalesce($2, now()) - $3 * interval '1 millisecond'
                    ORDER BY finished_at LIMIT $4)",
                millis(self.retention.completed_for),
            )
            .await?;
        if let Some(keep) = self.retention.completed_keep {
            // Completed rows beyond the newest `keep`.
            pruned.completed += self
                .repeat(
                    conn,
                    "
                    DELETE FROM queue_jobs WHERE id IN (
                        SELECT id FROM queue_jobs
                        WHERE queue_id = $1 AND status = 'completed'
                          AND finished_at <= coalesce($2, now())
                        ORDER BY finished_at DESC, id DESC OFFSET $3::bigint LIMIT $4)",
                    keep as f64,
                )
                .await?;
        }
        // Dead rows past their age (queue_jobs_dead_idx).
        pruned.dead += self
            .repeat(
                conn,
                "
                DELETE FROM queue_jobs WHERE id IN (
                    SELECT id FROM queue_jobs
                    WHERE queue_id = $1 AND status = 'dead'
                      AND finished_at < coalesce($2, now()) - $3 * interval '1 millisecond'
                    ORDER BY id LIMIT $4)",
                millis(self.retention.dead_for),
            )
            .await?;
        Ok(pruned)
    }

    /// Runs a batched delete (parameters: queue, clock, `arg`, batch) until a batch comes back
    /// short; returns the rows deleted.
    async fn repeat(
        &self,
        conn: &mut PgConnection,
        sql: &str,
        arg: f64,
    ) -> Result<u64, QueueError> {
        let mut total = 0;
        loop {
            let deleted = sqlx::query(sql)
                .bind(self.queue.id().as_str())
                .bind(self.queue.now())
                .bind(arg)
                .bind(BATCH)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            total += deleted;
            if deleted < BATCH as u64 {
                return Ok(total);
            }
        }
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
