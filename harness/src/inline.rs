//! Running jobs inline, in the test's own task, through the queue crate's runtime: the same
//! claim, lease, panic guard, retry and dead-letter path production takes, without background
//! workers or polling (Oban's `drain_queue` and `perform_job`, rivertest's `Worker`).

use queue::worker::{Handler, JobReport, Outcome, Worker};
use queue::JobId;

use crate::env::TestEnv;
use crate::error::{boxed, HarnessError};

impl TestEnv {
    /// Runs every ready job of this environment's queue through `handler`, batch after batch
    /// until none is ready, and returns what became of each attempt in the order they ran.
    ///
    /// A job that fails transiently waits for its retry (backoff on the queue's clock): it runs
    /// on a later `drain`, once the clock has moved past its `run_at`
    /// ([`TestEnv::advance`] with a manual clock). So a loop of `drain` and `advance` walks a
    /// job through all its attempts to the dead-letter queue without sleeping.
    pub async fn drain<H: Handler>(&self, handler: H) -> Result<Vec<JobReport>, HarnessError> {
        self.check_namespace()?;
        let worker = Worker::new(self.queue().clone(), handler, self.worker_config());
        let mut reports = Vec::new();
        loop {
            match worker.run_once().await {
                Ok(Outcome::Processed(batch)) => reports.extend(batch),
                Ok(Outcome::Idle) => return Ok(reports),
                Err(error) => return Err(HarnessError::pg("running jobs inline")(boxed(error))),
            }
        }
    }

    /// Runs job `id` of this environment's queue through `handler` now, if it is ready (not
    /// waiting for its `run_at`, not held by a worker, the queue not paused).
    pub async fn perform<H: Handler>(
        &self,
        id: JobId,
        handler: H,
    ) -> Result<JobReport, HarnessError> {
        self.check_namespace()?;
        let worker = Worker::new(self.queue().clone(), handler, self.worker_config());
        let name = worker.config().name.clone();
        let claimed = self
            .queue()
            .claim_ids(&[id], &name)
            .await
            .map_err(|e| HarnessError::pg("claiming the job")(boxed(e)))?;
        let Some(job) = claimed.into_iter().next() else {
            let row = self
                .queue()
                .get(id)
                .await
                .map_err(|e| HarnessError::pg("reading the job")(boxed(e)))?;
            let why = match row {
                None => format!("job {id} is not in queue {}", self.queue_id()),
                Some(row) => format!(
                    "job {id} is not ready: it is {} (run_at {}, attempts {}/{})",
                    row.status.as_str(),
                    row.run_at,
                    row.attempts,
                    row.max_attempts
                ),
            };
            return Err(HarnessError::Assertion(why));
        };
        worker
            .work(job)
            .await
            .map_err(|e| HarnessError::pg("running the job")(boxed(e)))
    }
}
