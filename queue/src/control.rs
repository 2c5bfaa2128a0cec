//! Durable pause and resume, and the wake-up notification.

use crate::{Queue, QueueError};

impl Queue {
    /// Pauses the queue: no claimer of any process receives a row until [`Queue::resume`].
    #[tracing::instrument(skip_all, fields(queue_id = %self.id))]
    pub async fn pause(&self) -> Result<(), QueueError> {
        self.set_paused(true).await
    }

    /// Resumes the queue and wakes its idle claimers.
    #[tracing::instrument(skip_all, fields(queue_id = %self.id))]
    pub async fn resume(&self) -> Result<(), QueueError> {
        self.set_paused(false).await?;
        self.notify().await
    }

    /// Whether the queue is paused.
    pub async fn is_paused(&self) -> Result<bool, QueueError> {
        let paused = sqlx::query_scalar(
            "SELECT coalesce((SELECT paused FROM queue_settings WHERE queue_id = $1), false)",
        )
        .bind(self.id.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(paused)
    }

    async fn set_paused(&self, paused: bool) -> Result<(), QueueError> {
        sqlx::query(
            "INSERT INTO queue_settings (queue_id, paused) VALUES ($1, $2)
             ON CONFLICT (queue_id) DO UPDATE SET paused = excluded.paused, updated_at = now()",
        )
        .bind(self.id.as_str())
        .bind(paused)
        .execute(&self.pool)
        .await?;
        tracing::info!(paused, "queue pause switched");
        Ok(())
    }

    /// Wakes this queue's idle claimers in every process (inserts do this through a trigger).
    pub async fn notify(&self) -> Result<(), QueueError> {
        self.notify_with(&self.pool).await
    }

    /// [`Queue::notify`] on a given executor (inside a transaction, it is sent at commit).
    pub async fn notify_with<'e>(
        &self,
        executor: impl sqlx::PgExecutor<'e>,
    ) -> Result<(), QueueError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(crate::notify::CHANNEL)
            .bind(self.id.as_str())
            .execute(executor)
            .await?;
        Ok(())
    }
}
