//! The worker pool: claims rows of one queue in batches and indexes them with one indexer.
//!
//! - [`WorkerPool::run_once`] is the public step (claim a batch, process it, record the results);
//!   tests drive it directly.
//! - [`WorkerPool::start`] runs the thin loop: a dispatcher claims as many rows as there are free
//!   slots, a heartbeat task extends the leases of rows in flight, and a rescuer makes expired
//!   leases claimable (at start, then every lease period).
//! - [`WorkerPoolHandle::shutdown`] stops claiming, waits for in-flight rows up to a timeout and
//!   releases the leases of the rows that could not finish.
//!
//! A pool is bound to the queue and indexer given at construction, never to a global, so many
//! pools (tests, tenants) run side by side in one process.

pub mod repository;
mod task;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::index::Indexer;
use crate::jobs::JobStoreError;
use crate::metrics::{Metrics, RowResult};
use crate::queue::{self, ClaimedJob, JobFailure, JobId, Lease, Queue, QueueError, QueueWaker};

pub use task::{failure_kind, FilePayload, RepositoryPayload, Task};

/// Errors of the worker pool's bookkeeping (indexing errors are recorded, not returned).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The queue core failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The job store failed.
    #[error(transparent)]
    Jobs(#[from] JobStoreError),
    /// A transaction could not be opened or committed.
    #[error("worker database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// How a pool works its queue.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Rows processed at once (and the largest claim batch).
    pub concurrency: usize,
    /// How often the leases of rows in flight are extended (well under the lease).
    pub heartbeat_interval: Duration,
    /// How often expired leases are rescued (also once at start).
    pub rescue_interval: Duration,
    /// How long shutdown waits for rows in flight before releasing them.
    pub shutdown_timeout: Duration,
    /// Parent folder of repository checkouts; `None` = the system temp dir.
    pub scratch_dir: Option<PathBuf>,
    /// Largest file indexed, in bytes.
    pub max_file_bytes: usize,
    /// Name recorded as the lease holder.
    pub name: String,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 3,
            heartbeat_interval: Duration::from_secs(10),
            rescue_interval: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(30),
            scratch_dir: None,
            max_file_bytes: 1024 * 1024,
            name: format!("service-{}", std::process::id()),
        }
    }
}

/// What one [`WorkerPool::run_once`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Rows were claimed and processed.
    Processed(Vec<RowReport>),
    /// Nothing was ready.
    Idle,
}

/// What became of one processed row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowReport {
    /// The queue row.
    pub row_id: JobId,
    /// The API job it belongs to.
    pub job_id: Option<Uuid>,
    /// Completed, retried, dead or lease lost.
    pub result: RowResult,
}

/// What shutdown did with the rows in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Rows in flight at the stop that finished within the timeout.
    pub finished: usize,
    /// Rows whose leases were released unfinished (pending again at once).
    pub released: usize,
}

/// Workers bound to one queue and one indexer. Cheap to clone.
#[derive(Clone)]
pub struct WorkerPool {
    queue: Queue,
    indexer: Arc<Indexer>,
    config: Arc<WorkerConfig>,
    metrics: Arc<Metrics>,
    in_flight: Arc<Mutex<HashMap<JobId, Lease>>>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("queue_id", self.queue.id())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The running loop of a pool, returned by [`WorkerPool::start`].
#[derive(Debug)]
pub struct WorkerPoolHandle {
    pool: WorkerPool,
    stop: CancellationToken,
    stop_maintenance: CancellationToken,
    dispatcher: JoinHandle<JoinSet<()>>,
    maintenance: JoinHandle<()>,
}

impl WorkerPool {
    /// A pool over `queue` that indexes with `indexer`.
    pub fn new(queue: Queue, indexer: Arc<Indexer>, config: WorkerConfig) -> Self {
        Self {
            queue,
            indexer,
            config: Arc::new(config),
            metrics: Arc::default(),
            in_flight: Arc::default(),
        }
    }

    /// The same pool counting into `metrics` (shared with the API's `/metrics`).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The queue the pool works.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The pool's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The pool's config.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// Rows this pool holds right now.
    pub fn in_flight(&self) -> usize {
        self.leases().len()
    }

    /// One step: claims up to `concurrency` rows, processes them concurrently and records the
    /// results. Processing errors are recorded on the rows; an `Err` is a bookkeeping failure.
    pub async fn run_once(&self) -> Result<Outcome, WorkerError> {
        let jobs = self.claim_batch(self.config.concurrency).await?;
        if jobs.is_empty() {
            return Ok(Outcome::Idle);
        }
        let reports = futures::future::join_all(jobs.into_iter().map(|job| self.process(job)))
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Outcome::Processed(reports))
    }

    /// Claims up to `limit` rows and tracks their leases for heartbeats and shutdown.
    pub async fn claim_batch(&self, limit: usize) -> Result<Vec<ClaimedJob>, WorkerError> {
        let started = Instant::now();
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let jobs = self.queue.claim(limit, &self.config.name).await?;
        self.metrics.claim_latency.observe(started.elapsed());
        let mut in_flight = self.leases();
        for job in &jobs {
            in_flight.insert(job.id, job.lease());
        }
        Ok(jobs)
    }

    /// Processes one claimed row (index, then record in one transaction with its completion).
    pub async fn process(&self, job: ClaimedJob) -> Result<RowReport, WorkerError> {
        let span = tracing::info_span!(
            "row",
            queue_id = %self.queue.id(),
            queue_row = job.id,
            job_id = job.job_ref.map(|id| id.to_string()).unwrap_or_default(),
            path = tracing::field::Empty,
            attempt = job.attempts,
        );
        let started = Instant::now();
        let (row_id, job_id) = (job.id, job.job_ref);
        let result = self.process_inner(job).instrument(span).await;
        self.leases().remove(&row_id);
        self.metrics.job_latency.observe(started.elapsed());
        let result = result?;
        self.metrics.record_row(result);
        Ok(RowReport {
            row_id,
            job_id,
            result,
        })
    }

    /// Starts the loop; wake-ups come from `waker` (one per process is enough).
    pub fn start(&self, waker: Arc<QueueWaker>) -> WorkerPoolHandle {
        let stop = CancellationToken::new();
        let dispatcher = tokio::spawn(self.clone().dispatch(waker, stop.clone()));
        let stop_maintenance = CancellationToken::new();
        let maintenance = tokio::spawn(self.clone().maintain(stop_maintenance.clone()));
        tracing::info!(queue_id = %self.queue.id(), concurrency = self.config.concurrency, "worker pool started");
        WorkerPoolHandle {
            pool: self.clone(),
            stop,
            stop_maintenance,
            dispatcher,
            maintenance,
        }
    }

    /// The dispatcher: claim as many rows as there are free slots, spawn each, repeat.
    async fn dispatch(self, waker: Arc<QueueWaker>, stop: CancellationToken) -> JoinSet<()> {
        let mut tasks = JoinSet::new();
        let slots = Arc::new(Semaphore::new(self.config.concurrency));
        let mut wake = waker.subscribe(self.queue.id());
        let poll = self.queue.config().poll_interval;
        while let Some(permits) = free_slots(&slots, &stop).await {
            while tasks.try_join_next().is_some() {}
            wake.mark_seen();
            let jobs = match self.claim_batch(permits.len()).await {
                Ok(jobs) => jobs,
                Err(error) => {
                    tracing::warn!(%error, "claim failed; retrying after the poll interval");
                    Vec::new()
                }
            };
            if jobs.is_empty() {
                drop(permits);
                tokio::select! {
                    _ = wake.wait(poll) => {}
                    () = stop.cancelled() => break,
                }
                continue;
            }
            for (job, permit) in jobs.into_iter().zip(permits) {
                tasks.spawn(self.clone().process_guarded(job, permit));
            }
        }
        tasks
    }

    /// Processes a row in its own task; a panic or a bookkeeping error is logged, and the row is
    /// left to its lease (a panic fails the attempt transiently).
    async fn process_guarded(self, job: ClaimedJob, _permit: OwnedSemaphorePermit) {
        let lease = job.lease();
        let outcome = std::panic::AssertUnwindSafe(self.process(job))
            .catch_unwind()
            .await;
        match outcome {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, row = lease.id, "could not record a row; its lease will expire")
            }
            Err(_) => {
                self.leases().remove(&lease.id);
                tracing::error!(row = lease.id, "worker panicked while processing a row");
                let failure = JobFailure::transient("worker panicked while processing the row");
                if let Err(error) = self.queue.fail(&lease, &failure).await {
                    tracing::error!(%error, "could not record the panic");
                }
            }
        }
    }

    /// Heartbeats rows in flight and rescues expired leases until stopped.
    async fn maintain(self, stop: CancellationToken) {
        let mut heartbeat = tokio::time::interval(self.config.heartbeat_interval);
        let mut rescue = tokio::time::interval(self.config.rescue_interval);
        loop {
            tokio::select! {
                _ = heartbeat.tick() => self.heartbeat().await,
                _ = rescue.tick() => {
                    if let Err(error) = self.queue.rescue_expired().await {
                        tracing::warn!(%error, "rescue of expired leases failed");
                    }
                    self.vacuum_if_bloated().await;
                }
                () = stop.cancelled() => break,
            }
        }
    }

    /// Compacts the queue table when the server's autovacuum has not (see
    /// [`queue::vacuum_if_bloated`]).
    async fn vacuum_if_bloated(&self) {
        let result = match self.queue.pool().acquire().await {
            Ok(mut conn) => queue::vacuum_if_bloated(&mut conn).await,
            Err(error) => Err(QueueError::from(error)),
        };
        if let Err(error) = result {
            tracing::warn!(%error, "vacuuming the queue table failed");
        }
    }

    /// Extends the leases of every row in flight.
    async fn heartbeat(&self) {
        let leases: Vec<Lease> = self.leases().values().copied().collect();
        match self.queue.heartbeat_many(&leases).await {
            Ok(owned) if owned.len() < leases.len() => {
                tracing::warn!(lost = leases.len() - owned.len(), "some leases were lost")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "heartbeat failed"),
        }
    }

    fn leases(&self) -> MutexGuard<'_, HashMap<JobId, Lease>> {
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Waits for at least one free slot and takes every free one; `None` once stopped.
async fn free_slots(
    slots: &Arc<Semaphore>,
    stop: &CancellationToken,
) -> Option<Vec<OwnedSemaphorePermit>> {
    let first = tokio::select! {
        permit = slots.clone().acquire_owned() => permit.ok()?,
        () = stop.cancelled() => return None,
    };
    let mut permits = vec![first];
    while let Ok(permit) = slots.clone().try_acquire_owned() {
        permits.push(permit);
    }
    Some(permits)
}

impl WorkerPoolHandle {
    /// The pool this handle runs.
    pub fn pool(&self) -> &WorkerPool {
        &self.pool
    }

    /// Stops claiming (rows in flight go on); [`WorkerPoolHandle::shutdown`] does this too.
    pub fn stop_claiming(&self) {
        self.stop.cancel();
    }

    /// Stops claiming, waits up to `timeout` for rows in flight, then aborts the rest and
    /// releases their leases so another worker can take them at once.
    pub async fn shutdown(self, timeout: Duration) -> ShutdownReport {
        self.stop.cancel();
        let mut tasks = match self.dispatcher.await {
            Ok(tasks) => tasks,
            Err(error) => {
                tracing::error!(%error, "worker dispatcher ended abnormally");
                JoinSet::new()
            }
        };
        let in_flight = tasks.len();
        let drained = tokio::time::timeout(timeout, async {
            while tasks.join_next().await.is_some() {}
        })
        .await
        .is_ok();
        if !drained {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        // Heartbeats stop only now, so rows finishing above kept their leases.
        self.stop_maintenance.cancel();
        let _ = self.maintenance.await;
        let leases: Vec<Lease> = self.pool.leases().drain().map(|(_, lease)| lease).collect();
        let mut released = 0;
        for lease in &leases {
            match self.pool.queue.release(lease).await {
                Ok(true) => released += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(%error, row = lease.id, "release failed; the lease will expire")
                }
            }
        }
        let report = ShutdownReport {
            finished: in_flight.saturating_sub(leases.len()),
            released,
        };
        tracing::info!(
            finished = report.finished,
            released = report.released,
            "worker pool stopped"
        );
        report
    }
}
