//! The load suite's workers: the queue crate's worker runtime with a [`LoadHandler`] that runs a
//! scenario's [`Decision`] and writes its ledger entries and follow-up jobs in the transaction
//! that finishes the job. A crash is a worker dropped without a shutdown: its jobs stop, its
//! heartbeats stop, its leases run out.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use queue::worker::{Handler, JobOutcome, JobReport, Ran, RecordError, Worker, WorkerConfig};
use queue::{ClaimedJob, JobFailure, NewJob};
use tokio::task::JoinHandle;

use super::zombie;
use super::Engine;
use crate::cli::Sabotage;
use crate::ops::ledger_insert;

/// What a worker does with one claimed job.
pub enum Decision {
    /// Complete it; write these ledger entries and enqueue these jobs in the same transaction.
    Complete {
        /// Ledger entries (e.g. `done`, `result=42`).
        entries: Vec<String>,
        /// Jobs that follow this one (the next step).
        follow_up: Vec<NewJob>,
    },
    /// Fail it; enqueue these jobs in the same transaction if the failure was recorded.
    Fail {
        /// Why.
        failure: JobFailure,
        /// Jobs that follow the failure (a cleanup).
        follow_up: Vec<NewJob>,
    },
    /// Hang past the lease like a stuck worker (its heartbeats stall too), then try to complete
    /// anyway (must be refused). In a worker process the whole process hangs.
    Stall(Duration),
}

/// A scenario's job code.
pub(super) type Decide =
    Arc<dyn Fn(ClaimedJob) -> Pin<Box<dyn Future<Output = Decision> + Send>> + Send + Sync>;

/// What a job leaves to record with its completion or failure.
#[derive(Debug, Default)]
pub struct Effects {
    entries: Vec<String>,
    follow_up: Vec<NewJob>,
}

/// The runtime's handler for one load worker.
pub(super) struct LoadHandler {
    engine: Engine,
    /// This worker's name (ledger entries say who did what).
    name: String,
}

impl Handler for LoadHandler {
    type Output = Effects;
    const RECORDS: bool = true;

    async fn run(&self, job: ClaimedJob) -> Ran<Effects> {
        let engine = &self.engine;
        if engine.ledger_exec {
            if let Err(err) = self.record_execution(job.id).await {
                engine.count_error("execute", &err);
            }
        }
        let lease = job.lease();
        match (engine.decide)(job).await {
            Decision::Complete { entries, follow_up } => Ran {
                result: Ok(()),
                output: Effects { entries, follow_up },
            },
            Decision::Fail { failure, follow_up } => Ran {
                result: Err(failure),
                output: Effects {
                    entries: Vec::new(),
                    follow_up,
                },
            },
            Decision::Stall(how_long) => {
                // A worker that hangs hangs whole: it stops heartbeating too, so its lease runs
                // out; later it wakes and tries to complete with the lease it had.
                let zombie = tokio::spawn(zombie::wake_later(
                    engine.clone(),
                    lease,
                    how_long,
                    format!("{}-zombie", self.name),
                ));
                engine.stall_worker(&self.name, zombie);
                std::future::pending().await
            }
        }
    }

    async fn record(
        &self,
        tx: &mut sqlx::PgConnection,
        report: &JobReport,
        output: Option<&Effects>,
    ) -> Result<(), RecordError> {
        let Some(effects) = output else {
            return Ok(());
        };
        if report.outcome == JobOutcome::Completed {
            let ids = vec![report.id; effects.entries.len()];
            self.engine
                .record_done(&mut *tx, &ids, &effects.entries, &self.name)
                .await?;
        }
        self.engine
            .queue()
            .enqueue_many_with(&mut *tx, &effects.follow_up)
            .await?;
        Ok(())
    }

    fn claimed(&self, _jobs: usize, took: Duration) {
        self.engine.claim_latency.record(took);
    }

    fn finished(&self, report: &JobReport) {
        let counter = match report.outcome {
            JobOutcome::Completed => "completed",
            JobOutcome::Retrying { .. } | JobOutcome::Postponed { .. } => "retried",
            JobOutcome::Dead => "dead",
            JobOutcome::LeaseLost => "lease_lost",
        };
        self.engine.count(counter, 1, None);
    }
}

impl LoadHandler {
    /// The `exec` ledger entry: a second one for the same job is a duplicate execution.
    async fn record_execution(&self, id: queue::JobId) -> Result<(), sqlx::Error> {
        let engine = &self.engine;
        let mut conn = engine.ops.workers_queue().pool().acquire().await?;
        let exec = ["exec".to_owned()];
        for id in ledger_insert(&mut conn, &engine.ledger, &[id], &exec, &self.name).await? {
            engine.counters.add("duplicate_execution", || {
                format!("job {id} executed twice (second time by {})", self.name)
            });
        }
        Ok(())
    }
}

/// One running load worker.
pub(super) enum Running {
    /// The runtime, started.
    Started(queue::worker::WorkerHandle),
    /// `--sabotage claim-without-locking`: the runtime's job path behind a claim without row
    /// locks.
    Sabotaged(JoinHandle<()>),
}

impl Running {
    /// Kills the worker wherever it is: its jobs and heartbeats stop, its leases run out.
    pub(super) fn abort(self) {
        match self {
            Running::Started(handle) => drop(handle),
            Running::Sabotaged(task) => task.abort(),
        }
    }

    /// Stops the worker the way its kind stops: gracefully, or at once when sabotaged.
    pub(super) async fn stop(self) {
        match self {
            Running::Started(handle) => {
                handle.shutdown_within(Duration::from_secs(5)).await;
            }
            Running::Sabotaged(task) => {
                task.abort();
                let _ = task.await;
            }
        }
    }
}

/// Starts one load worker named `name`.
pub(super) fn start(engine: &Engine, name: String) -> Running {
    // Under `--sabotage pool-over-budget` the workers' queue is on a pool of its own.
    let queue = engine.ops.workers_queue().clone();
    let lease = queue.config().lease;
    let config = WorkerConfig {
        concurrency: engine.batch as usize,
        heartbeat_interval: (lease / 3).max(Duration::from_millis(50)),
        shutdown_timeout: Duration::from_secs(5),
        name: name.clone(),
        // The crash scenario runs its own rescuer; the others never lose a lease.
        maintenance: None,
        ..WorkerConfig::default()
    };
    let handler = LoadHandler {
        engine: engine.clone(),
        name,
    };
    let worker = Worker::new(queue, handler, config);
    if engine.sabotage() == Sabotage::ClaimWithoutLocking {
        return Running::Sabotaged(tokio::spawn(claim_without_locking(engine.clone(), worker)));
    }
    Running::Started(worker.start(engine.waker.clone()))
}

/// The sabotaged claim loop: candidates read without locks, each claimed job then worked
/// through the runtime's own path ([`Worker::work`]).
async fn claim_without_locking(engine: Engine, worker: Worker<LoadHandler>) {
    let name = worker.config().name.clone();
    while !engine.stop.is_cancelled() {
        let started = Instant::now();
        let claimed = match engine.ops.claim(engine.batch, &name).await {
            Ok(claimed) => claimed,
            Err(err) => {
                engine.count_error("claim", &err);
                engine.pause(Duration::from_millis(50)).await;
                continue;
            }
        };
        engine.claim_latency.record(started.elapsed());
        if claimed.is_empty() {
            engine.pause(Duration::from_millis(20)).await;
            continue;
        }
        for job in claimed {
            if let Err(err) = worker.work(job).await {
                engine.counters.add("execute_error", || err.to_string());
            }
        }
    }
}
