//! Workers, runs and measurements shared by the scenarios.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use service::queue::{
    ClaimedJob, FailOutcome, JobFailure, JobId, Lease, NewJob, Queue, QueueConfig, QueueId,
    QueueWaker,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::context::{ConnectionWatch, Context};
use crate::ops::{ledger_insert, Ops};
use crate::stats::{Counters, Latencies};

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
    /// Hang past the lease like a stuck worker, then try to complete anyway (must be refused).
    Stall(Duration),
}

type Handler =
    Arc<dyn Fn(ClaimedJob) -> Pin<Box<dyn Future<Output = Decision> + Send>> + Send + Sync>;

/// One scenario's moving parts.
#[derive(Clone)]
pub struct Engine {
    /// The queue, real or sabotaged.
    pub ops: Ops,
    /// The ledger namespace (the queue id).
    pub ledger: String,
    /// Errors and events.
    pub counters: Arc<Counters>,
    /// Claim latencies.
    pub claim_latency: Arc<Latencies>,
    /// Runs' end-to-end latencies.
    pub e2e_latency: Arc<Latencies>,
    /// Pool acquire waits sampled by runs.
    pub acquire_wait: Arc<Latencies>,
    /// Write an `exec` ledger entry when a job starts (only where a job must run exactly once).
    pub ledger_exec: bool,
    /// Claim batch size.
    pub batch: u32,
    handler: Handler,
    stop: CancellationToken,
    waker: Arc<QueueWaker>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
    worker_seq: Arc<AtomicU32>,
}

/// What driving the runs measured.
pub struct Driven {
    /// From the first enqueue to the last run finished.
    pub elapsed: Duration,
    /// Highest pooled connection count seen.
    pub max_connections: i64,
    /// Stuck runs.
    pub log: Arc<RunLog>,
}

impl Engine {
    /// An engine over a fresh queue of this execution.
    pub async fn new<F, Fut>(
        ctx: &Context,
        scenario: crate::cli::Scenario,
        config: QueueConfig,
        handler: F,
    ) -> anyhow::Result<Self>
    where
        F: Fn(ClaimedJob) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Decision> + Send + 'static,
    {
        let id: QueueId = ctx.queue_id(scenario).await?;
        let queue = Queue::new(ctx.pool.clone(), id.clone()).with_config(config);
        Ok(Self {
            ops: Ops::new(queue, ctx.args.sabotage),
            ledger: id.as_str().to_owned(),
            counters: Arc::default(),
            claim_latency: Arc::default(),
            e2e_latency: Arc::default(),
            acquire_wait: Arc::default(),
            ledger_exec: false,
            batch: 10,
            handler: Arc::new(move |job| Box::pin(handler(job))),
            stop: CancellationToken::new(),
            waker: ctx.waker.clone(),
            workers: Arc::default(),
            worker_seq: Arc::default(),
        })
    }

    /// The real queue.
    pub fn queue(&self) -> &Queue {
        &self.ops.queue
    }

    /// Stops every worker and helper task of this engine.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// A token cancelled by [`Engine::stop`].
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Spawns one more worker.
    pub fn spawn_worker(&self) {
        let engine = self.clone();
        let name = format!("w{}", self.worker_seq.fetch_add(1, Ordering::Relaxed));
        let subscription = self.waker.subscribe(self.queue().id());
        let handle = tokio::spawn(async move { engine.work(name, subscription).await });
        lock(&self.workers).push(handle);
    }

    /// Aborts a random worker wherever it is (mid-claim, mid-job, mid-commit) and starts a
    /// replacement, like a process crash and a restart.
    pub fn crash_random_worker(&self) {
        {
            let mut workers = lock(&self.workers);
            if workers.is_empty() {
                return;
            }
            let victim = rand::random::<usize>() % workers.len();
            workers.swap_remove(victim).abort();
        }
        self.counters.add_n("workers_aborted", 1);
        self.spawn_worker();
    }

    /// Starts `--workers` workers and `runs` runs; each run enqueues `jobs(run, run_ref)` and
    /// waits until `finished(engine, run, run_ref, ids)` says so or the deadline passes.
    pub async fn drive<J, F, Fut>(
        &self,
        ctx: &Context,
        label: &str,
        runs: u32,
        jobs: J,
        finished: F,
    ) -> Driven
    where
        J: Fn(u32, uuid::Uuid) -> Vec<NewJob> + Send + Sync + 'static,
        F: Fn(Engine, u32, uuid::Uuid, Vec<JobId>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<bool, sqlx::Error>> + Send + 'static,
    {
        let watch = Watch::start(ctx);
        let started = Instant::now();
        let deadline = started + ctx.args.duration;
        for _ in 0..ctx.args.workers {
            self.spawn_worker();
        }
        let bar = progress(label, u64::from(runs));
        let log = Arc::new(RunLog::default());
        let (jobs, finished) = (Arc::new(jobs), Arc::new(finished));
        let mut tasks = tokio::task::JoinSet::new();
        for run in 0..runs {
            let (engine, log, bar) = (self.clone(), log.clone(), bar.clone());
            let (jobs, finished) = (jobs.clone(), finished.clone());
            tasks.spawn(async move {
                let run_ref = uuid::Uuid::new_v4();
                let t0 = Instant::now();
                let ids = match engine.queue().enqueue_many(&jobs(run, run_ref)).await {
                    Ok(ids) => ids,
                    Err(err) => {
                        log.stuck(format!("run {run}: enqueue failed: {err}"));
                        bar.inc(1);
                        return;
                    }
                };
                let done = engine
                    .wait_run(deadline, || {
                        finished(engine.clone(), run, run_ref, ids.clone())
                    })
                    .await;
                match done {
                    Ok(true) => engine.e2e_latency.record(t0.elapsed()),
                    Ok(false) => log.stuck(format!("run {run}: not finished by the deadline")),
                    Err(err) => {
                        engine.count_error("run", &err);
                        log.stuck(format!("run {run}: {err}"));
                    }
                }
                bar.inc(1);
            });
        }
        while tasks.join_next().await.is_some() {}
        let elapsed = started.elapsed();
        bar.finish_and_clear();
        self.stop();
        let workers: Vec<_> = lock(&self.workers).drain(..).collect();
        for worker in workers {
            let _ = worker.await;
        }
        Driven {
            elapsed,
            max_connections: watch.finish().await,
            log,
        }
    }

    async fn work(self, name: String, mut subscription: service::queue::Subscription) {
        while !self.stop.is_cancelled() {
            subscription.mark_seen();
            let started = Instant::now();
            let claimed = match self.ops.claim(self.batch, &name).await {
                Ok(claimed) => claimed,
                Err(err) => {
                    self.count_error("claim", &err);
                    self.pause(Duration::from_millis(50)).await;
                    continue;
                }
            };
            self.claim_latency.record(started.elapsed());
            if claimed.is_empty() {
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    _ = subscription.wait(Duration::from_millis(200)) => {}
                }
                continue;
            }
            if let Err(err) = self.execute(&name, claimed).await {
                self.count_error("execute", &err);
            }
        }
    }

    async fn execute(&self, worker: &str, claimed: Vec<ClaimedJob>) -> Result<(), sqlx::Error> {
        if self.ledger_exec {
            let ids: Vec<JobId> = claimed.iter().map(|j| j.id).collect();
            let entries = vec!["exec".to_owned(); ids.len()];
            let mut conn = self.queue().pool().acquire().await?;
            for id in ledger_insert(&mut conn, &self.ledger, &ids, &entries, worker).await? {
                self.counters.add("duplicate_execution", || {
                    format!("job {id} executed twice (second time by {worker})")
                });
            }
        }
        let mut completions: Vec<(Lease, Vec<String>, Vec<NewJob>)> = Vec::new();
        for job in claimed {
            let lease = job.lease();
            match (self.handler)(job).await {
                Decision::Complete { entries, follow_up } => {
                    completions.push((lease, entries, follow_up))
                }
                Decision::Fail { failure, follow_up } => {
                    self.fail(lease, failure, follow_up).await?
                }
                Decision::Stall(how_long) => {
                    let engine = self.clone();
                    let worker = format!("{worker}-zombie");
                    tokio::spawn(async move { engine.zombie(lease, how_long, worker).await });
                }
            }
        }
        self.complete(worker, completions).await
    }

    async fn complete(
        &self,
        worker: &str,
        completions: Vec<(Lease, Vec<String>, Vec<NewJob>)>,
    ) -> Result<(), sqlx::Error> {
        if completions.is_empty() {
            return Ok(());
        }
        let leases: Vec<Lease> = completions.iter().map(|(l, _, _)| *l).collect();
        let mut tx = self.queue().pool().begin().await?;
        let accepted = self.ops.complete_in(&mut tx, &leases).await?;
        self.counters
            .add_n("lease_lost", (leases.len() - accepted.len()) as u64);
        let mut ids = Vec::new();
        let mut entries = Vec::new();
        let mut follow_ups = Vec::new();
        for (lease, job_entries, follow_up) in completions {
            if accepted.contains(&lease.id) {
                for entry in job_entries {
                    ids.push(lease.id);
                    entries.push(entry);
                }
                follow_ups.extend(follow_up);
            }
        }
        self.record_done(&mut tx, &ids, &entries, worker).await?;
        self.queue()
            .enqueue_many_with(&mut *tx, &follow_ups)
            .await
            .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        tx.commit().await?;
        self.counters.add_n("completed", accepted.len() as u64);
        Ok(())
    }

    async fn record_done(
        &self,
        tx: &mut sqlx::PgConnection,
        ids: &[JobId],
        entries: &[String],
        worker: &str,
    ) -> Result<(), sqlx::Error> {
        for id in ledger_insert(tx, &self.ledger, ids, entries, worker).await? {
            self.counters.add("duplicate_completion", || {
                format!("job {id} completed twice (second time by {worker})")
            });
        }
        Ok(())
    }

    async fn fail(
        &self,
        lease: Lease,
        failure: JobFailure,
        follow_up: Vec<NewJob>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.queue().pool().begin().await?;
        let outcome = self
            .queue()
            .fail_with(&mut *tx, &lease, &failure)
            .await
            .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        match outcome {
            FailOutcome::LeaseLost => self.counters.add_n("lease_lost", 1),
            FailOutcome::Dead => {
                self.counters.add_n("dead", 1);
                self.queue()
                    .enqueue_many_with(&mut *tx, &follow_up)
                    .await
                    .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
            }
            FailOutcome::Retrying { .. } => {
                self.counters.add_n("retried", 1);
                self.queue()
                    .enqueue_many_with(&mut *tx, &follow_up)
                    .await
                    .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
            }
        }
        tx.commit().await
    }

    /// A worker that hung past its lease wakes up and tries to complete.
    async fn zombie(self, lease: Lease, how_long: Duration, worker: String) {
        self.counters.add_n("stalled_workers", 1);
        tokio::time::sleep(how_long).await;
        let result: Result<(), sqlx::Error> = async {
            let mut tx = self.queue().pool().begin().await?;
            let accepted = self.ops.complete_in(&mut tx, &[lease]).await?;
            if accepted.is_empty() {
                self.counters.add_n("zombie_completion_rejected", 1);
            } else {
                self.counters.add("zombie_completion_accepted", || {
                    format!(
                        "job {} completed by {worker} after its lease had expired",
                        lease.id
                    )
                });
                self.record_done(&mut tx, &accepted, &["done".to_owned()], &worker)
                    .await?;
            }
            tx.commit().await
        }
        .await;
        if let Err(err) = result {
            self.count_error("zombie", &err);
        }
    }

    /// Counts an error by kind (acquire timeouts apart: the pool check needs them).
    pub fn count_error(&self, at: &str, err: &sqlx::Error) {
        let kind = match err {
            sqlx::Error::PoolTimedOut => "acquire_timeout".to_owned(),
            sqlx::Error::Database(_) => format!("{at}_database_error"),
            _ => format!("{at}_error"),
        };
        self.counters.add(&kind, || format!("{at}: {err}"));
    }

    async fn pause(&self, d: Duration) {
        tokio::select! {
            _ = self.stop.cancelled() => {}
            _ = tokio::time::sleep(d) => {}
        }
    }

    /// Samples how long a pooled connection takes to get.
    pub async fn sample_acquire(&self) -> Result<(), sqlx::Error> {
        let started = Instant::now();
        let conn = self.queue().pool().acquire().await;
        self.acquire_wait.record(started.elapsed());
        drop(conn?);
        Ok(())
    }

    /// Waits until `done` says the run is finished; polls gently (many runs share the pool).
    pub async fn wait_run<F, Fut>(
        &self,
        deadline: Instant,
        mut done: F,
    ) -> Result<bool, sqlx::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<bool, sqlx::Error>>,
    {
        loop {
            self.sample_acquire().await?;
            if done().await? {
                return Ok(true);
            }
            if Instant::now() >= deadline || self.stop.is_cancelled() {
                return Ok(false);
            }
            let jitter = rand::random::<u64>() % 50;
            tokio::time::sleep(Duration::from_millis(75 + jitter)).await;
        }
    }

    /// Ledger entries of this scenario by entry name.
    pub async fn ledger_counts(&self, ctx: &Context) -> Result<HashMap<String, i64>, sqlx::Error> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT entry, count(*) FROM load_ledger WHERE namespace = $1 GROUP BY entry",
        )
        .bind(&self.ledger)
        .fetch_all(&ctx.admin)
        .await?;
        Ok(rows.into_iter().collect())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A progress bar on stderr (drawn only on a terminal).
pub fn progress(label: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix:>7} [{elapsed_precise}] {wide_bar} {pos}/{len} runs {msg}",
    ) {
        bar.set_style(style);
    }
    bar.set_prefix(label.to_owned());
    bar
}

/// Runs that did not finish, gathered by the run tasks.
#[derive(Default)]
pub struct RunLog {
    /// Runs that did not finish before the deadline.
    pub stuck: Mutex<Vec<String>>,
}

impl RunLog {
    /// Notes a stuck run.
    pub fn stuck(&self, what: String) {
        self.stuck
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(what);
    }

    /// The stuck runs.
    pub fn stuck_runs(&self) -> Vec<String> {
        self.stuck.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The connection watcher of a scenario.
pub struct Watch {
    token: CancellationToken,
    watch: ConnectionWatch,
}

impl Watch {
    /// Starts watching the pool's connections.
    pub fn start(ctx: &Context) -> Self {
        let token = CancellationToken::new();
        let watch = ctx.watch_connections(token.clone());
        Self { token, watch }
    }

    /// The highest count seen.
    pub async fn finish(self) -> i64 {
        self.token.cancel();
        self.watch.finish().await
    }
}
