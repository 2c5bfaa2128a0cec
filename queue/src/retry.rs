//! Backoff between attempts, and redrive of the dead-letter queue.

use std::time::Duration;

use rand::Rng;

use crate::{JobId, Queue, QueueError};

/// Exponential backoff with jitter: attempt `n` waits `base * factor^(n-1)`, capped at `max`,
/// then stretched by a random fraction in `[0, jitter]`.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Wait after the first failed attempt.
    pub base: Duration,
    /// Growth per attempt.
    pub factor: f64,
    /// Upper bound before jitter.
    pub max: Duration,
    /// Largest random stretch, as a fraction of the wait (0.0 = none).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            factor: 2.0,
            max: Duration::from_secs(600),
            jitter: 0.25,
        }
    }
}

impl RetryPolicy {
    /// The wait before the retry that follows failed attempt `attempt` (1-based), without jitter.
    pub fn base_delay(&self, attempt: i32) -> Duration {
        let exponent = attempt.saturating_sub(1).clamp(0, 62);
        let secs = self.base.as_secs_f64() * self.factor.max(1.0).powi(exponent);
        Duration::from_secs_f64(secs.min(self.max.as_secs_f64()).max(0.0))
    }

    /// The bounds the jittered wait falls in: `[base_delay, base_delay * (1 + jitter)]`.
    pub fn delay_bounds(&self, attempt: i32) -> (Duration, Duration) {
        let low = self.base_delay(attempt);
        (low, low.mul_f64(1.0 + self.jitter.max(0.0)))
    }

    /// A jittered wait; jitter spreads retries of rows that failed together.
    pub fn delay(&self, attempt: i32) -> Duration {
        let (low, high) = self.delay_bounds(attempt);
        if high <= low {
            return low;
        }
        let stretch = rand::thread_rng().gen_range(0.0..=1.0);
        low + (high - low).mul_f64(stretch)
    }
}

impl Queue {
    /// Puts every dead row of this queue back to pending with its attempts reset (its error
    /// history stays). Returns the ids.
    #[tracing::instrument(skip_all, fields(queue_id = %self.id))]
    pub async fn redrive_all(&self) -> Result<Vec<JobId>, QueueError> {
        self.redrive(None).await
    }

    /// Puts the given dead rows of this queue back to pending; ids that are not dead rows of this
    /// queue are left alone. Returns the ids redriven.
    #[tracing::instrument(skip_all, fields(queue_id = %self.id, ids = ids.len()))]
    pub async fn redrive_ids(&self, ids: &[JobId]) -> Result<Vec<JobId>, QueueError> {
        self.redrive(Some(ids)).await
    }

    async fn redrive(&self, ids: Option<&[JobId]>) -> Result<Vec<JobId>, QueueError> {
        let redriven: Vec<JobId> = sqlx::query_scalar(
            "UPDATE queue_jobs
             SET status = 'pending', attempts = 0, run_at = coalesce($3, now()),
                 finished_at = NULL, updated_at = coalesce($3, now())
             WHERE queue_id = $1 AND status = 'dead' AND ($2::bigint[] IS NULL OR id = ANY($2))
             RETURNING id",
        )
        .bind(self.id.as_str())
        .bind(ids)
        .bind(self.now())
        .fetch_all(&self.pool)
        .await?;
        if !redriven.is_empty() {
            self.notify().await?;
            tracing::info!(redriven = redriven.len(), "dead rows redriven");
        }
        Ok(redriven)
    }
}
