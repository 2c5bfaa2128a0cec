//! Claiming ready rows: one short statement, `FOR UPDATE SKIP LOCKED`, committed at once.

use super::{ClaimedJob, Queue, QueueError};

impl Queue {
    /// Claims up to `limit` ready rows of this queue, highest priority first, then oldest.
    ///
    /// Each claimed row is `processing` with a fresh lease token and `locked_until = now + lease`;
    /// its attempt count goes up by one. A paused queue hands out nothing. Concurrent claimers
    /// never receive the same row: locked candidates are skipped, not waited for.
    #[tracing::instrument(skip_all, fields(queue_id = %self.id, limit, worker = worker))]
    pub async fn claim(&self, limit: u32, worker: &str) -> Result<Vec<ClaimedJob>, QueueError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let jobs = sqlx::query_as::<_, ClaimedJob>(
            "WITH next AS (
                 SELECT id FROM queue_jobs
                 WHERE queue_id = $1
                   AND status IN ('pending', 'failed')
                   AND run_at <= coalesce($3, now())
                   AND NOT EXISTS (SELECT 1 FROM queue_settings s WHERE s.queue_id = $1 AND s.paused)
                 ORDER BY priority DESC, id
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE queue_jobs j
             SET status = 'processing',
                 attempts = j.attempts + 1,
                 lease_token = gen_random_uuid(),
                 locked_until = coalesce($3, now()) + $4 * interval '1 millisecond',
                 locked_by = $5,
                 updated_at = coalesce($3, now())
             FROM next
             WHERE j.id = next.id
             RETURNING j.id, j.job_ref, j.payload, j.priority, j.attempts, j.max_attempts,
                       j.lease_token, j.locked_until, j.created_at",
        )
        .bind(self.id.as_str())
        .bind(i64::from(limit))
        .bind(self.now())
        .bind(self.lease_ms())
        .bind(worker)
        .fetch_all(&self.pool)
        .await?;
        let mut jobs = jobs;
        // UPDATE ... RETURNING has no order; hand rows out in claim order.
        jobs.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
        Ok(jobs)
    }
}
