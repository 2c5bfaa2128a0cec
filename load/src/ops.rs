//! The queue as the load suite drives it: the real queue core, or one broken on purpose
//! (`--sabotage`) to show that the checks catch the defect. The ledger lives here too.

use std::time::Duration;

use queue::{ClaimedJob, JobId, Lease, Queue};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};

use crate::cli::Sabotage;

/// Claim and complete, real or sabotaged.
#[derive(Clone, Debug)]
pub struct Ops {
    /// The real queue.
    pub queue: Queue,
    /// The same queue as the workers use it: on the same pool, or on `over_budget`.
    workers: Queue,
    sabotage: Sabotage,
}

impl Ops {
    /// Wraps `queue`, broken as `sabotage` says; `over_budget` is the workers' pool of
    /// `--sabotage pool-over-budget` ([`over_budget_pool`]).
    pub fn new(queue: Queue, sabotage: Sabotage, over_budget: Option<&PgPool>) -> Self {
        let workers = match over_budget {
            Some(pool) => Queue::new(pool.clone(), queue.id().clone())
                .with_config(queue.config().clone())
                .with_clock(queue.clock().clone()),
            None => queue.clone(),
        };
        Self {
            queue,
            workers,
            sabotage,
        }
    }

    /// The queue the workers claim, complete and heartbeat through.
    pub fn workers_queue(&self) -> &Queue {
        &self.workers
    }

    /// How it is broken.
    pub fn sabotage(&self) -> Sabotage {
        self.sabotage
    }

    /// Claims up to `limit` rows.
    pub async fn claim(&self, limit: u32, worker: &str) -> Result<Vec<ClaimedJob>, sqlx::Error> {
        if self.sabotage != Sabotage::ClaimWithoutLocking {
            return self.queue.claim(limit, worker).await.map_err(to_sqlx);
        }
        // The classic bug: candidates read without locks, so two claimers can pick the same rows
        // and the second UPDATE (after waiting for the first) re-claims them.
        sqlx::query_as::<_, ClaimedJob>(
            "WITH next AS (
                 SELECT id FROM queue_jobs
                 WHERE queue_id = $1 AND status IN ('pending', 'failed') AND run_at <= now()
                 ORDER BY priority DESC, id LIMIT $2
             )
             UPDATE queue_jobs j
             SET status = 'processing', attempts = j.attempts + 1,
                 lease_token = gen_random_uuid(),
                 locked_until = now() + $3 * interval '1 millisecond',
                 locked_by = $4, updated_at = now()
             FROM next WHERE j.id = next.id
             RETURNING j.id, j.job_ref, j.payload, j.priority, j.attempts, j.max_attempts,
                       j.lease_token, j.locked_until, j.created_at",
        )
        .bind(self.queue.id().as_str())
        .bind(i64::from(limit))
        .bind(self.queue.config().lease.as_secs_f64() * 1000.0)
        .bind(worker)
        .fetch_all(self.workers.pool())
        .await
    }

    /// Completes `leases` inside the caller's transaction; returns the ids accepted.
    pub async fn complete_in(
        &self,
        conn: &mut PgConnection,
        leases: &[Lease],
    ) -> Result<Vec<JobId>, sqlx::Error> {
        if self.sabotage != Sabotage::CompleteWithoutLeaseCheck {
            return self
                .queue
                .complete_many_with(conn, leases)
                .await
                .map_err(to_sqlx);
        }
        // The classic bug: completion by id alone, so a worker that lost its lease still wins.
        let ids: Vec<JobId> = leases.iter().map(|l| l.id).collect();
        sqlx::query_scalar(
            "UPDATE queue_jobs
             SET status = 'completed', finished_at = now(), lease_token = NULL,
                 locked_until = NULL, locked_by = NULL, updated_at = now()
             WHERE queue_id = $1 AND id = ANY($2)
             RETURNING id",
        )
        .bind(self.queue.id().as_str())
        .bind(&ids)
        .fetch_all(conn)
        .await
    }
}

/// `--sabotage pool-over-budget`: the classic bug of a component that builds a pool of its own
/// from the same settings, so the process holds twice the connections it was given. Its
/// connections are named `load-workers:<namespace>`, not like the budgeted pool's, so the budget
/// check must count every pool of the execution to catch it.
pub fn over_budget_pool(options: &PgConnectOptions, namespace: &str, budget: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(budget)
        .acquire_timeout(Duration::from_secs(30))
        .connect_lazy_with(
            options
                .clone()
                .application_name(&queue::namespace::client_name("load-workers", namespace)),
        )
}

/// A queue error as the sqlx error the engine counts by kind.
pub fn to_sqlx(err: queue::QueueError) -> sqlx::Error {
    match err {
        queue::QueueError::Database(err) => err,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// Writes ledger entries; returns the job ids whose entry already existed (duplicates), which the
/// primary key detects even across processes.
pub async fn ledger_insert(
    conn: &mut PgConnection,
    namespace: &str,
    ids: &[JobId],
    entries: &[String],
    worker: &str,
) -> Result<Vec<JobId>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let inserted: Vec<(JobId, String)> = sqlx::query_as(
        "INSERT INTO load_ledger (namespace, job_id, entry, worker)
         SELECT $1, e.job_id, e.entry, $4 FROM unnest($2::bigint[], $3::text[]) AS e(job_id, entry)
         ON CONFLICT DO NOTHING
         RETURNING job_id, entry",
    )
    .bind(namespace)
    .bind(ids)
    .bind(entries)
    .bind(worker)
    .fetch_all(conn)
    .await?;
    let mut duplicates: Vec<JobId> = ids
        .iter()
        .zip(entries)
        .filter(|(id, entry)| !inserted.iter().any(|(i, e)| i == *id && e == *entry))
        .map(|(id, _)| *id)
        .collect();
    duplicates.dedup();
    Ok(duplicates)
}

/// The ledger entries of one job.
pub async fn ledger_entries(
    pool: &sqlx::PgPool,
    namespace: &str,
    job_id: JobId,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT entry FROM load_ledger WHERE namespace = $1 AND job_id = $2")
        .bind(namespace)
        .bind(job_id)
        .fetch_all(pool)
        .await
}
