//! Depth and counts per status, single rows, and removal of a queue's rows.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{JobId, JobRecord, JobStatus, Queue, QueueError};

/// Row counts of one queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// Rows per status; every status is present, zero included.
    pub by_status: BTreeMap<&'static str, i64>,
    /// Whether the queue is paused.
    pub paused: bool,
}

impl QueueStats {
    /// Rows in one status.
    pub fn count(&self, status: JobStatus) -> i64 {
        self.by_status.get(status.as_str()).copied().unwrap_or(0)
    }

    /// Rows not finished yet: pending, processing and failed (awaiting retry).
    pub fn depth(&self) -> i64 {
        self.count(JobStatus::Pending)
            + self.count(JobStatus::Processing)
            + self.count(JobStatus::Failed)
    }
}

impl Queue {
    /// Counts of this queue's rows by status.
    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        // Each status counted from its own partial index (there is no index on queue_id alone).
        let rows: Vec<(JobStatus, i64)> = sqlx::query_as(
            "SELECT status, count(*) FROM queue_jobs
             WHERE queue_id = $1 AND status IN ('pending', 'failed') GROUP BY status
             UNION ALL
             SELECT 'processing', count(*) FROM queue_jobs
             WHERE queue_id = $1 AND status = 'processing'
             UNION ALL
             SELECT 'completed', count(*) FROM queue_jobs
             WHERE queue_id = $1 AND status = 'completed'
             UNION ALL
             SELECT 'dead', count(*) FROM queue_jobs WHERE queue_id = $1 AND status = 'dead'",
        )
        .bind(self.id.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut by_status: BTreeMap<&'static str, i64> =
            JobStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        for (status, count) in rows {
            by_status.insert(status.as_str(), count);
        }
        Ok(QueueStats {
            by_status,
            paused: self.is_paused().await?,
        })
    }

    /// One row of this queue.
    pub async fn get(&self, id: JobId) -> Result<Option<JobRecord>, QueueError> {
        let row = sqlx::query_as::<_, JobRecord>(
            "SELECT * FROM queue_jobs WHERE queue_id = $1 AND id = $2",
        )
        .bind(self.id.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row)
    }

    /// This queue's rows in one status, oldest first, at most `limit`.
    pub async fn list(&self, status: JobStatus, limit: i64) -> Result<Vec<JobRecord>, QueueError> {
        // The status is written into the statement (it is one of five names, never user text):
        // a partial index serves only a query whose plan knows the status.
        let sql = format!(
            "SELECT * FROM queue_jobs WHERE queue_id = $1 AND status = '{}' ORDER BY id LIMIT $2",
            status.as_str()
        );
        let rows = sqlx::query_as::<_, JobRecord>(&sql)
            .bind(self.id.as_str())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    /// This queue's rows in every status, oldest first, at most `limit`.
    pub async fn list_all(&self, limit: i64) -> Result<Vec<JobRecord>, QueueError> {
        let rows = sqlx::query_as::<_, JobRecord>(
            "SELECT * FROM queue_jobs WHERE id IN (SELECT id FROM queue_job_ids(ARRAY[$1]) AS q(id))
             ORDER BY id LIMIT $2",
        )
        .bind(self.id.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// This queue's rows that belong to `job_ref`, oldest first.
    pub async fn list_by_ref(&self, job_ref: uuid::Uuid) -> Result<Vec<JobRecord>, QueueError> {
        let rows = sqlx::query_as::<_, JobRecord>(
            "SELECT * FROM queue_jobs WHERE queue_id = $1 AND job_ref = $2 ORDER BY id",
        )
        .bind(self.id.as_str())
        .bind(job_ref)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// How many of the given rows of this queue are finished (completed or dead).
    pub async fn count_finished(&self, ids: &[JobId]) -> Result<i64, QueueError> {
        let n = sqlx::query_scalar(
            "SELECT count(*) FROM queue_jobs
             WHERE queue_id = $1 AND id = ANY($2) AND status IN ('completed', 'dead')",
        )
        .bind(self.id.as_str())
        .bind(ids)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    /// Deletes every row and setting of this queue (test cleanup, load-suite teardown).
    #[tracing::instrument(skip_all, fields(queue_id = %self.id))]
    pub async fn purge(&self) -> Result<u64, QueueError> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query(
            "DELETE FROM queue_jobs WHERE id IN (SELECT id FROM queue_job_ids(ARRAY[$1]) AS q(id))",
        )
        .bind(self.id.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM queue_settings WHERE queue_id = $1")
            .bind(self.id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
