//! The worker runtime: one for every user of the queue (services, test harnesses, the load
//! suite), so tests exercise the code that runs in production.
//!
//! - [`Worker::start`] runs a dispatcher that claims as many rows as it has free slots in one
//!   statement, runs each in a task of its own, and completes finished jobs in batches: the
//!   completions gathered while a statement was in flight go with the next one, together with
//!   the next claim ([`Queue::complete_and_claim`]).
//! - A heartbeat task extends the leases of every row in hand (running, or waiting for its
//!   completion to be written); nothing else runs on it.
//! - A panic in a handler fails that attempt as transient; the worker lives on.
//! - Idle dispatchers wake on `NOTIFY` ([`QueueWaker`]), with the queue's poll interval as a
//!   fallback. Every statement uses the queue's [`crate::Clock`].
//! - [`WorkerHandle::shutdown`] stops claiming, waits for rows in hand up to a timeout, then
//!   releases the leases of the rest, so another worker takes them at once.
//! - [`Worker::run_once`] is the public step (claim what fits, run, finish), for tests and
//!   inline drains.
//!
//! Expired leases of crashed workers are rescued by [`crate::maintenance`], which
//! [`Worker::start`] runs beside the workers unless told otherwise.

mod breaker;
mod dispatch;
mod execute;
mod handle;
mod handler;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use breaker::WorkerHealth;
pub use execute::panic_message;
pub use handle::{ShutdownReport, WorkerHandle};
pub use handler::{Handler, Ran, RecordError};

use crate::maintenance::MaintenanceConfig;
use crate::{ClaimedJob, JobId, Lease, Queue, QueueError, QueueWaker};

/// Errors of the runtime's bookkeeping (a job's own failure is recorded on its row, not returned).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The queue's statements failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A transaction could not be opened or committed.
    #[error("worker database error: {0}")]
    Database(#[from] sqlx::Error),
    /// [`Handler::record`] failed; its transaction was rolled back.
    #[error("recording the job's result failed: {0}")]
    Record(RecordError),
}

/// How a worker works its queue.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Jobs run at once; also the largest claim.
    pub concurrency: usize,
    /// How often the leases of rows in hand are extended (well under the queue's lease).
    pub heartbeat_interval: Duration,
    /// How long shutdown waits for rows in hand before releasing them.
    pub shutdown_timeout: Duration,
    /// A job running longer fails as transient; `None` lets it run as long as it heartbeats.
    pub job_timeout: Option<Duration>,
    /// Name recorded as the lease holder (`locked_by`).
    pub name: String,
    /// The maintenance services [`Worker::start`] runs beside the workers; `None` runs none
    /// (another process does).
    pub maintenance: Option<MaintenanceConfig>,
    /// How long a row that met a dependency outage waits before it may be claimed again.
    pub postpone_for: Duration,
    /// How long finishing a job keeps trying while PostgreSQL is unreachable (a restart)
    /// before the row is left to its lease.
    pub finish_retry_for: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            heartbeat_interval: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(30),
            job_timeout: None,
            name: format!("worker-{}", std::process::id()),
            maintenance: Some(MaintenanceConfig::default()),
            postpone_for: Duration::from_secs(5),
            finish_retry_for: Duration::from_secs(30),
        }
    }
}

/// What became of one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Completed.
    Completed,
    /// The attempt failed; the job waits for its retry at `run_at`.
    Retrying {
        /// When the next attempt may be claimed.
        run_at: DateTime<Utc>,
    },
    /// A dependency was down: the job waits until `run_at`, the attempt not counted.
    Postponed {
        /// When it may be claimed again.
        run_at: DateTime<Utc>,
    },
    /// Moved to the dead-letter queue.
    Dead,
    /// The lease was no longer this worker's (expired and rescued, or released): nothing changed.
    LeaseLost,
}

/// One finished attempt, as [`Worker::run_once`] and [`Handler::record`] see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobReport {
    /// The queue row.
    pub id: JobId,
    /// What the row belongs to.
    pub job_ref: Option<Uuid>,
    /// Which attempt this was (1 for the first).
    pub attempt: i32,
    /// What became of it.
    pub outcome: JobOutcome,
    /// The attempt's error, when it failed.
    pub error: Option<String>,
    /// How long the handler ran.
    pub took: Duration,
}

/// What one [`Worker::run_once`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Jobs were claimed and finished.
    Processed(Vec<JobReport>),
    /// Nothing was ready.
    Idle,
}

/// Workers bound to one queue and one handler. Cheap to clone.
pub struct Worker<H> {
    queue: Queue,
    handler: Arc<H>,
    config: Arc<WorkerConfig>,
    in_hand: Arc<InHand>,
    breaker: Arc<breaker::Breaker>,
}

impl<H> Clone for Worker<H> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            handler: self.handler.clone(),
            config: self.config.clone(),
            in_hand: self.in_hand.clone(),
            breaker: self.breaker.clone(),
        }
    }
}

impl<H> std::fmt::Debug for Worker<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("queue_id", self.queue.id())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<H: Handler> Worker<H> {
    /// A worker over `queue` running `handler`.
    pub fn new(queue: Queue, handler: H, config: WorkerConfig) -> Self {
        Self::with_shared(queue, Arc::new(handler), config)
    }

    /// [`Worker::new`] with a handler shared elsewhere.
    pub fn with_shared(queue: Queue, handler: Arc<H>, config: WorkerConfig) -> Self {
        Self {
            queue,
            handler,
            config: Arc::new(WorkerConfig {
                concurrency: config.concurrency.max(1),
                ..config
            }),
            in_hand: Arc::default(),
            breaker: Arc::default(),
        }
    }

    /// The queue the worker works.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The handler.
    pub fn handler(&self) -> &Arc<H> {
        &self.handler
    }

    /// The worker's config.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// Whether the worker is claiming, or paused by a dependency outage (for readiness checks).
    pub fn health(&self) -> WorkerHealth {
        self.breaker.health()
    }

    /// Rows this worker holds right now (running, or waiting for their completion).
    pub fn in_hand(&self) -> usize {
        self.in_hand.lock().len()
    }

    /// One step: claims up to `concurrency` ready rows in one statement, runs them concurrently
    /// and finishes them. An `Err` is a bookkeeping failure; jobs' own failures are reported.
    pub async fn run_once(&self) -> Result<Outcome, WorkerError> {
        let jobs = self.claim(self.config.concurrency).await?;
        if jobs.is_empty() {
            return Ok(Outcome::Idle);
        }
        let ran = futures::future::join_all(jobs.into_iter().map(|job| self.run(job))).await;
        Ok(Outcome::Processed(self.finish(ran).await?))
    }

    /// Runs one claimed row through the handler and finishes it (as [`Worker::run_once`] does
    /// for each row it claims).
    pub async fn work(&self, job: ClaimedJob) -> Result<JobReport, WorkerError> {
        self.in_hand.insert(&job);
        let ran = self.run(job).await;
        let mut reports = self.finish(vec![ran]).await?;
        Ok(reports.remove(0))
    }

    /// Starts the dispatcher, the heartbeat and (unless the config says otherwise) the
    /// maintenance services; wake-ups come from `waker` (one per process is enough).
    pub fn start(&self, waker: Arc<QueueWaker>) -> WorkerHandle {
        handle::start(self.clone(), waker)
    }

    /// Claims up to `limit` rows and tracks their leases.
    async fn claim(&self, limit: usize) -> Result<Vec<ClaimedJob>, QueueError> {
        let started = std::time::Instant::now();
        let jobs = self.queue.claim(as_limit(limit), &self.config.name).await?;
        self.handler.claimed(jobs.len(), started.elapsed());
        self.in_hand.insert_all(&jobs);
        Ok(jobs)
    }

    async fn run(&self, job: ClaimedJob) -> execute::Finished<H::Output> {
        execute::run(&*self.handler, job, self.config.job_timeout).await
    }

    /// Finishes jobs whose handler returned: successes of a handler that records nothing in one
    /// statement, every other job alone. A row that could not be finished leaves the worker's
    /// hands: its lease runs out and the rescuer makes it claimable again.
    async fn finish(
        &self,
        ran: Vec<execute::Finished<H::Output>>,
    ) -> Result<Vec<JobReport>, WorkerError> {
        let (batch, single): (Vec<_>, Vec<_>) = ran
            .into_iter()
            .partition(|ran| !H::RECORDS && ran.result.is_ok());
        let mut reports = Vec::with_capacity(batch.len() + single.len());
        let mut failure = None;
        if !batch.is_empty() {
            match execute::complete_batch(&self.queue, &batch).await {
                Ok(done) => reports.extend(done),
                Err(error) => failure = Some(error),
            }
            self.in_hand.remove(batch.iter().map(|ran| ran.lease.id));
        }
        for ran in single {
            let id = ran.lease.id;
            let finished = self.finish_one(&ran).await;
            self.in_hand.remove([id]);
            match finished {
                Ok(report) => reports.push(report),
                Err(error) => {
                    tracing::error!(%error, job_id = id, "could not finish a job; its lease will run out");
                    failure = Some(error);
                }
            }
        }
        for report in &reports {
            if let (JobOutcome::Postponed { .. }, Some(reason)) = (report.outcome, &report.error) {
                self.breaker.trip(reason);
            }
            self.handler.finished(report);
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(reports),
        }
    }
}

impl<H: Handler> Worker<H> {
    /// [`execute::finish_one`], tried again while PostgreSQL is unreachable (a restart drops
    /// every connection), for up to `finish_retry_for`: the row stays in hand and heartbeats
    /// resume with the server, so its completion is not lost to an expired lease.
    async fn finish_one(
        &self,
        ran: &execute::Finished<H::Output>,
    ) -> Result<JobReport, WorkerError> {
        let deadline = tokio::time::Instant::now() + self.config.finish_retry_for;
        let mut pause = Duration::from_millis(100);
        loop {
            match execute::finish_one(&self.queue, &*self.handler, ran, self.config.postpone_for)
                .await
            {
                Err(error) if error.is_outage() && tokio::time::Instant::now() < deadline => {
                    tracing::warn!(%error, job_id = ran.lease.id, "PostgreSQL unreachable while finishing a job; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                finished => return finished,
            }
        }
    }
}

impl WorkerError {
    /// Whether the database was unreachable (connection lost or refused, server shutting down
    /// or starting), rather than refusing the statement.
    pub fn is_outage(&self) -> bool {
        match self {
            WorkerError::Queue(QueueError::Database(error)) | WorkerError::Database(error) => {
                crate::db::is_unavailable(error)
            }
            WorkerError::Record(error) => {
                error.downcast_ref().is_some_and(crate::db::is_unavailable)
            }
            WorkerError::Queue(_) => false,
        }
    }
}

fn as_limit(limit: usize) -> u32 {
    u32::try_from(limit).unwrap_or(u32::MAX)
}

/// The leases of the rows a worker holds, for heartbeats and shutdown.
#[derive(Debug, Default)]
struct InHand(Mutex<HashMap<JobId, Lease>>);

impl InHand {
    fn lock(&self) -> MutexGuard<'_, HashMap<JobId, Lease>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn insert(&self, job: &ClaimedJob) {
        self.lock().insert(job.id, job.lease());
    }

    fn insert_all(&self, jobs: &[ClaimedJob]) {
        let mut in_hand = self.lock();
        for job in jobs {
            in_hand.insert(job.id, job.lease());
        }
    }

    fn remove(&self, ids: impl IntoIterator<Item = JobId>) {
        let mut in_hand = self.lock();
        for id in ids {
            in_hand.remove(&id);
        }
    }

    fn leases(&self) -> Vec<Lease> {
        self.lock().values().copied().collect()
    }

    fn drain(&self) -> Vec<Lease> {
        self.lock().drain().map(|(_, lease)| lease).collect()
    }
}
