//! Finishing claims: complete or fail, fenced by the lease token.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::{JobFailure, JobId, JobStatus, Lease, Queue, QueueError};

/// What a failure did to the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOutcome {
    /// Waits for another attempt at `run_at`.
    Retrying {
        /// When the next attempt may be claimed.
        run_at: DateTime<Utc>,
    },
    /// Moved to the dead-letter queue.
    Dead,
    /// The lease was no longer this owner's (expired and rescued, or released): nothing changed.
    LeaseLost,
}

/// The completed row's payload: without the keys `param` (a `text[]` parameter) names. An empty
/// list keeps the payload as it is (not rewritten: a large payload's TOAST stays untouched).
pub(crate) fn drop_on_complete(param: &str) -> String {
    format!("CASE WHEN cardinality({param}::text[]) = 0 THEN j.payload ELSE j.payload - {param}::text[] END")
}

impl Queue {
    /// Marks a claim completed. False when the lease is no longer this owner's.
    #[tracing::instrument(skip_all, fields(queue_id = %self.id, job_id = lease.id))]
    pub async fn complete(&self, lease: &Lease) -> Result<bool, QueueError> {
        Ok(!self
            .complete_many(std::slice::from_ref(lease))
            .await?
            .is_empty())
    }

    /// Completes many claims in one statement; returns the ids whose lease was still owned.
    #[tracing::instrument(skip_all, fields(queue_id = %self.id, leases = leases.len()))]
    pub async fn complete_many(&self, leases: &[Lease]) -> Result<Vec<JobId>, QueueError> {
        self.complete_many_with(&self.pool, leases).await
    }

    /// [`Queue::complete_many`] on a given executor, so a job's effects and its completion can
    /// commit in one transaction (exactly-once effects).
    pub async fn complete_many_with<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        leases: &[Lease],
    ) -> Result<Vec<JobId>, QueueError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, tokens): (Vec<_>, Vec<_>) = leases.iter().map(|l| (l.id, l.token)).unzip();
        // Probes the primary key by `id = ANY`, planned afresh at each call (see claim.rs).
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE queue_jobs j
             SET status = 'completed', finished_at = coalesce($4, now()),
                 lease_token = NULL, locked_until = NULL, locked_by = NULL,
                 updated_at = coalesce($4, now()),
                 payload = {drop_on_complete}
             FROM unnest($2::bigint[], $3::uuid[]) AS l(id, token)
             WHERE j.id = ANY ($2::bigint[]) AND j.id = l.id
               AND j.queue_id = $1 AND j.lease_token = l.token AND j.status = 'processing'
             RETURNING j.id",
                drop_on_complete = drop_on_complete("$5")
            )
        });
        let done = sqlx::query_scalar(&SQL)
            .bind(self.id.as_str())
            .bind(&ids)
            .bind(&tokens)
            .bind(self.now())
            .bind(&self.config.drop_on_complete)
            .persistent(false)
            .fetch_all(executor)
            .await?;
        Ok(done)
    }

    /// Records a failed attempt. A transient failure waits for a retry with backoff until the
    /// attempts are used up; then, or at once for a permanent failure, the row goes dead. Every
    /// attempt's error is kept in the row's history.
    pub async fn fail(
        &self,
        lease: &Lease,
        failure: &JobFailure,
    ) -> Result<FailOutcome, QueueError> {
        self.fail_with(&self.pool, lease, failure).await
    }

    /// [`Queue::fail`] on a given executor (e.g. with follow-up rows in the same transaction).
    #[tracing::instrument(skip_all, fields(queue_id = %self.id, job_id = lease.id, kind = failure.kind.as_str()))]
    pub async fn fail_with<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        lease: &Lease,
        failure: &JobFailure,
    ) -> Result<FailOutcome, QueueError> {
        let delay_ms = self.config.retry.delay(lease.attempt).as_secs_f64() * 1000.0;
        let row: Option<(JobStatus, DateTime<Utc>)> = sqlx::query_as(
            "UPDATE queue_jobs
             SET status = CASE WHEN $4 OR attempts >= max_attempts
                               THEN 'dead' ELSE 'failed' END::queue_job_status,
                 run_at = CASE WHEN $4 OR attempts >= max_attempts THEN run_at
                               ELSE coalesce($7, now()) + $8 * interval '1 millisecond' END,
                 finished_at = CASE WHEN $4 OR attempts >= max_attempts
                                    THEN coalesce($7, now()) END,
                 last_error = $6,
                 errors = errors || jsonb_build_array(jsonb_build_object(
                     'attempt', attempts, 'kind', $5::text, 'error', $6::text,
                     'at', coalesce($7, now()))),
                 lease_token = NULL, locked_until = NULL, locked_by = NULL,
                 updated_at = coalesce($7, now())
             WHERE queue_id = $1 AND id = $2 AND lease_token = $3 AND status = 'processing'
             RETURNING status, run_at",
        )
        .bind(self.id.as_str())
        .bind(lease.id)
        .bind(lease.token)
        .bind(failure.kind == crate::FailureKind::Permanent)
        .bind(failure.kind.as_str())
        .bind(&failure.message)
        .bind(self.now())
        .bind(delay_ms)
        .fetch_optional(executor)
        .await?;
        let outcome = match row {
            None => FailOutcome::LeaseLost,
            Some((JobStatus::Dead, _)) => FailOutcome::Dead,
            Some((_, run_at)) => FailOutcome::Retrying { run_at },
        };
        match outcome {
            FailOutcome::Dead => {
                tracing::warn!(error = %failure.message, "row moved to the dead-letter queue")
            }
            FailOutcome::Retrying { run_at } => {
                tracing::info!(error = %failure.message, %run_at, "attempt failed, retry scheduled")
            }
            FailOutcome::LeaseLost => tracing::warn!("fail rejected: lease no longer owned"),
        }
        Ok(outcome)
    }
}
