//! Putting rows on a queue: one, or many in one round trip.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::{JobId, NewJob, Queue, QueueError};

impl Queue {
    /// Enqueues one row and returns its id.
    #[tracing::instrument(skip_all, fields(queue_id = %self.id))]
    pub async fn enqueue(&self, job: NewJob) -> Result<JobId, QueueError> {
        let ids = self.enqueue_many(std::slice::from_ref(&job)).await?;
        ids.into_iter()
            .next()
            .ok_or_else(|| QueueError::InvalidJob("insert returned no row".into()))
    }

    /// Enqueues many rows in one statement; ids come back in input order.
    pub async fn enqueue_many(&self, jobs: &[NewJob]) -> Result<Vec<JobId>, QueueError> {
        self.enqueue_many_with(&self.pool, jobs).await
    }

    /// [`Queue::enqueue_many`] on a given executor, so callers can enqueue inside their own
    /// transaction (e.g. an API job row and its queue rows committed together).
    pub async fn enqueue_many_with<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        jobs: &[NewJob],
    ) -> Result<Vec<JobId>, QueueError> {
        let jobs: Vec<&NewJob> = jobs.iter().collect();
        self.enqueue_each_with(executor, &jobs).await
    }

    /// [`Queue::enqueue_many_with`] over borrowed rows, e.g. gathered from several requests
    /// without copying their payloads.
    #[tracing::instrument(skip_all, fields(queue_id = %self.id, rows = jobs.len()))]
    pub async fn enqueue_each_with<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        jobs: &[&NewJob],
    ) -> Result<Vec<JobId>, QueueError> {
        let capacity = jobs.len();
        let mut payloads = Vec::with_capacity(capacity);
        let mut refs: Vec<Option<Uuid>> = Vec::with_capacity(capacity);
        let mut priorities = Vec::with_capacity(capacity);
        let mut max_attempts = Vec::with_capacity(capacity);
        let mut run_ats: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(capacity);
        for job in jobs {
            if job.max_attempts < 1 {
                return Err(QueueError::InvalidJob(format!(
                    "max_attempts must be at least 1, got {}",
                    job.max_attempts
                )));
            }
            payloads.push(Json(&job.payload));
            refs.push(job.job_ref);
            priorities.push(job.priority);
            max_attempts.push(job.max_attempts);
            run_ats.push(job.run_at);
        }
        if payloads.is_empty() {
            return Ok(Vec::new());
        }
        // WITH ORDINALITY keeps the input order, so ids map back to the caller's jobs.
        let ids: Vec<JobId> = sqlx::query_scalar(
            "INSERT INTO queue_jobs (queue_id, payload, job_ref, priority, max_attempts, run_at, created_at, updated_at)
             SELECT $1, j.payload, j.job_ref, j.priority, j.max_attempts,
                    coalesce(j.run_at, $7, now()), coalesce($7, now()), coalesce($7, now())
             FROM unnest($2::jsonb[], $3::uuid[], $4::int2[], $5::int4[], $6::timestamptz[])
                  WITH ORDINALITY AS j(payload, job_ref, priority, max_attempts, run_at, ord)
             ORDER BY j.ord
             RETURNING id",
        )
        .bind(self.id.as_str())
        .bind(&payloads)
        .bind(&refs)
        .bind(&priorities)
        .bind(&max_attempts)
        .bind(&run_ats)
        .bind(self.now())
        .fetch_all(executor)
        .await?;
        Ok(ids)
    }
}
