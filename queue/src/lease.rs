//! Keeping, giving back and rescuing leases.

use chrono::{DateTime, Utc};

use crate::{JobId, Lease, Queue, QueueError};

impl Queue {
    /// Extends a lease to `now + lease`; `None` when the lease is no longer this owner's.
    #[tracing::instrument(skip_all, fields(queue_id = %self.id, job_id = lease.id))]
    pub async fn heartbeat(&self, lease: &Lease) -> Result<Option<DateTime<Utc>>, QueueError> {
        let until = sqlx::query_scalar(
            "UPDATE queue_jobs
             SET locked_until = coalesce($4, now()) + $5 * interval '1 millisecond',
                 updated_at = coalesce($4, now())
             WHERE queue_id = $1 AND id = $2 AND lease_token = $3 AND status = 'processing'
             RETURNING locked_until",
        )
        .bind(self.id.as_str())
        .bind(lease.id)
        .bind(lease.token)
        .bind(self.now())
        .bind(self.lease_ms())
        .fetch_optional(&self.pool)
        .await?;
        Ok(until)
    }

    /// Extends many leases in one statement; returns the ids still owned.
    #[tracing::instrument(skip_all, fields(queue_id = %self.id, leases = leases.len()))]
    pub async fn heartbeat_many(&self, leases: &[Lease]) -> Result<Vec<JobId>, QueueError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, tokens): (Vec<_>, Vec<_>) = leases.iter().map(|l| (l.id, l.token)).unzip();
        // Probes the primary key by `id = ANY`, planned afresh at each call (see claim.rs).
        let owned = sqlx::query_scalar(
            "UPDATE queue_jobs j
             SET locked_until = coalesce($4, now()) + $5 * interval '1 millisecond',
                 updated_at = coalesce($4, now())
             FROM unnest($2::bigint[], $3::uuid[]) AS l(id, token)
             WHERE j.id = ANY ($2::bigint[]) AND j.id = l.id
               AND j.queue_id = $1 AND j.lease_token = l.token AND j.status = 'processing'
             RETURNING j.id",
        )
        .bind(self.id.as_str())
        .bind(&ids)
        .bind(&tokens)
        .bind(self.now())
        .bind(self.lease_ms())
        .persistent(false)
        .fetch_all(&self.pool)
        .await?;
        Ok(owned)
    }

    /// Gives a claim back unfinished (e.g. at shutdown): pending again at once, and the attempt
    /// does not count. False when the lease was no longer this owner's.
    #[tracing::instrument(skip_all, fields(queue_id = %self.id, job_id = lease.id))]
    pub async fn release(&self, lease: &Lease) -> Result<bool, QueueError> {
        let released = sqlx::query(
            "UPDATE queue_jobs
             SET status = 'pending', attempts = greatest(attempts - 1, 0),
                 lease_token = NULL, locked_until = NULL, locked_by = NULL,
                 run_at = coalesce($4, now()), updated_at = coalesce($4, now())
             WHERE queue_id = $1 AND id = $2 AND lease_token = $3 AND status = 'processing'",
        )
        .bind(self.id.as_str())
        .bind(lease.id)
        .bind(lease.token)
        .bind(self.now())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if released > 0 {
            self.notify().await?;
        }
        Ok(released > 0)
    }

    /// Gives a claim back because a dependency it needs is down: pending again at `now + delay`,
    /// the attempt not counted, the reason kept in the row's error history (kind
    /// `unavailable`). Returns when it may be claimed again; `None` when the lease was no longer
    /// this owner's.
    #[tracing::instrument(skip_all, fields(queue_id = %self.id, job_id = lease.id))]
    pub async fn postpone(
        &self,
        lease: &Lease,
        delay: std::time::Duration,
        reason: &str,
    ) -> Result<Option<DateTime<Utc>>, QueueError> {
        let run_at = sqlx::query_scalar(
            "UPDATE queue_jobs
             SET status = 'pending', attempts = greatest(attempts - 1, 0),
                 run_at = coalesce($4, now()) + $5 * interval '1 millisecond',
                 last_error = $6,
                 errors = errors || jsonb_build_array(jsonb_build_object(
                     'attempt', attempts, 'kind', 'unavailable', 'error', $6::text,
                     'at', coalesce($4, now()))),
                 lease_token = NULL, locked_until = NULL, locked_by = NULL,
                 updated_at = coalesce($4, now())
             WHERE queue_id = $1 AND id = $2 AND lease_token = $3 AND status = 'processing'
             RETURNING run_at",
        )
        .bind(self.id.as_str())
        .bind(lease.id)
        .bind(lease.token)
        .bind(self.now())
        .bind(delay.as_secs_f64() * 1000.0)
        .bind(reason)
        .fetch_optional(&self.pool)
        .await?;
        Ok(run_at)
    }

    /// Makes rows whose lease expired claimable again; the expired claim counts as an attempt, so
    /// a row whose attempts are used up goes dead. Returns the rescued ids. The maintenance
    /// [`crate::maintenance::Rescuer`] calls this periodically, one process at a time.
    pub async fn rescue_expired(&self) -> Result<Vec<JobId>, QueueError> {
        let mut conn = self.pool.acquire().await?;
        self.rescue_expired_with(&mut conn).await
    }

    /// [`Queue::rescue_expired`] on a given connection.
    #[tracing::instrument(skip_all, fields(queue_id = %self.id))]
    pub async fn rescue_expired_with(
        &self,
        conn: &mut sqlx::PgConnection,
    ) -> Result<Vec<JobId>, QueueError> {
        let rescued: Vec<(JobId, bool)> = sqlx::query_as(
            "WITH expired AS (
                 SELECT id FROM queue_jobs
                 WHERE queue_id = $1 AND status = 'processing' AND locked_until < coalesce($2, now())
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE queue_jobs j
             SET status = CASE WHEN j.attempts >= j.max_attempts
                               THEN 'dead' ELSE 'pending' END::queue_job_status,
                 last_error = 'lease expired (held by ' || coalesce(j.locked_by, 'unknown') || ')',
                 errors = j.errors || jsonb_build_array(jsonb_build_object(
                     'attempt', j.attempts, 'kind', 'lease_expired',
                     'error', 'lease expired (held by ' || coalesce(j.locked_by, 'unknown') || ')',
                     'at', coalesce($2, now()))),
                 finished_at = CASE WHEN j.attempts >= j.max_attempts
                                    THEN coalesce($2, now()) END,
                 run_at = coalesce($2, now()),
                 lease_token = NULL, locked_until = NULL, locked_by = NULL,
                 updated_at = coalesce($2, now())
             FROM expired
             WHERE j.id = expired.id
             RETURNING j.id, j.status = 'pending'",
        )
        .bind(self.id.as_str())
        .bind(self.now())
        .fetch_all(&mut *conn)
        .await?;
        if rescued.iter().any(|(_, pending)| *pending) {
            self.notify_with(&mut *conn).await?;
        }
        if !rescued.is_empty() {
            tracing::info!(rescued = rescued.len(), "rescued rows with expired leases");
        }
        Ok(rescued.into_iter().map(|(id, _)| id).collect())
    }
}
