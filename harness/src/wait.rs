//! Waiting on conditions, never on time: poll until true, fail with what was awaited and, for an
//! environment, a dump of its state.

use std::future::Future;
use std::time::Duration;

use queue::{JobId, JobRecord, JobStatus};

use crate::env::TestEnv;
use crate::error::{boxed, BoxError, HarnessError};
use crate::logs;

/// Polls `check` every 20 ms until it returns true; after `timeout` fails with
/// [`HarnessError::Timeout`] naming `what`. An error of `check` ends the wait at once.
pub async fn wait_until<F, Fut>(
    timeout: Duration,
    what: &str,
    mut check: F,
) -> Result<(), HarnessError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, HarnessError>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(HarnessError::Timeout {
                what: what.to_owned(),
                timeout,
                dump: String::new(),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`wait_until`] for a check that yields a value once it holds: polls every 20 ms until `check`
/// returns `Some`, and returns it. `check` may fail with any error (`?` on an `anyhow`, `sqlx`
/// or the test's own error works); that ends the wait with [`HarnessError::Check`].
pub async fn wait_for<T, F, Fut>(
    timeout: Duration,
    what: &str,
    mut check: F,
) -> Result<T, HarnessError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, BoxError>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let checked = check().await.map_err(|source| HarnessError::Check {
            what: what.to_owned(),
            source,
        })?;
        if let Some(value) = checked {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(HarnessError::Timeout {
                what: what.to_owned(),
                timeout,
                dump: String::new(),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl TestEnv {
    /// Waits until row `id` is finished (completed or dead) and returns it; on timeout fails
    /// with a dump of the queue's state.
    pub async fn wait_for_job(
        &self,
        id: JobId,
        timeout: Duration,
    ) -> Result<JobRecord, HarnessError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.check_namespace()?;
            let row = self
                .queue()
                .get(id)
                .await
                .map_err(|e| HarnessError::pg("reading a job")(boxed(e)))?;
            match row {
                Some(row) if matches!(row.status, JobStatus::Completed | JobStatus::Dead) => {
                    return Ok(row)
                }
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(self
                        .timeout(
                            format!("job {id} of queue {} to finish", self.queue_id()),
                            timeout,
                        )
                        .await)
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Waits until nothing is pending, processing or awaiting a retry in this queue.
    pub async fn wait_idle(&self, timeout: Duration) -> Result<(), HarnessError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.check_namespace()?;
            let stats = self
                .queue()
                .stats()
                .await
                .map_err(|e| HarnessError::pg("reading queue stats")(boxed(e)))?;
            if stats.depth() == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self
                    .timeout(format!("queue {} to be idle", self.queue_id()), timeout)
                    .await);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn timeout(&self, what: String, timeout: Duration) -> HarnessError {
        HarnessError::Timeout {
            what,
            timeout,
            dump: self.state_dump().await,
        }
    }

    /// This environment's queue rows by status, the latest errors and recent log lines.
    pub async fn state_dump(&self) -> String {
        let mut out = format!(
            "--- state of {} (collection {}, project {})\n",
            self.queue_id(),
            self.collection(),
            self.project()
        );
        match self.queue().stats().await {
            Ok(stats) => out.push_str(&format!(
                "rows by status: {:?} (paused: {})\n",
                stats.by_status, stats.paused
            )),
            Err(err) => out.push_str(&format!("rows by status: unavailable ({err})\n")),
        }
        for status in [
            JobStatus::Processing,
            JobStatus::Failed,
            JobStatus::Pending,
            JobStatus::Dead,
        ] {
            if let Ok(rows) = self.queue().list(status, 5).await {
                for row in rows {
                    out.push_str(&format!(
                        "  {} #{} attempts {}/{} locked_by {:?} last_error {:?}\n",
                        status.as_str(),
                        row.id,
                        row.attempts,
                        row.max_attempts,
                        row.locked_by,
                        row.last_error
                    ));
                }
            }
        }
        out.push_str("recent log lines:\n");
        for line in logs::recent(self.queue_id().as_str(), 30) {
            out.push_str("  ");
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}
