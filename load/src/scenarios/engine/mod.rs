//! Workers, runs and measurements shared by the scenarios: the engine starts workers on the
//! queue crate's runtime ([`workers`]), drives runs that enqueue and wait, and counts.

mod workers;
mod zombie;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use queue::{ClaimedJob, JobId, NewJob, Queue, QueueConfig, QueueId, QueueWaker};
use tokio_util::sync::CancellationToken;

pub use workers::Decision;

use crate::cli::Sabotage;
use crate::context::{ConnectionWatch, Context, MaxConnections};
use crate::ops::{ledger_insert, Ops};
use crate::stats::{Counters, Event, Latencies, Throughput};

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
    /// Jobs finished (completed or dead) over time.
    pub finished: Arc<Throughput>,
    /// Workers [`Engine::drive`] starts in this process (`--workers`; none when worker
    /// processes do the work).
    pub in_process_workers: u32,
    /// A stall hangs the whole process (a worker process of `--processes`), not one worker.
    pub hang_on_stall: bool,
    /// Write an `exec` ledger entry when a job starts (only where a job must run exactly once).
    pub ledger_exec: bool,
    /// Slots of each worker (its largest claim).
    pub batch: u32,
    decide: workers::Decide,
    stop: CancellationToken,
    waker: Arc<QueueWaker>,
    workers: Arc<Mutex<Vec<(String, workers::Running)>>>,
    worker_seq: Arc<AtomicU32>,
    zombies: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

/// What driving the runs measured.
pub struct Driven {
    /// When the first run started.
    pub started: Instant,
    /// From the first enqueue to the last run finished.
    pub elapsed: Duration,
    /// Most connections of this execution seen at once, bookkeeping apart.
    pub max_connections: MaxConnections,
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
        let queue = Queue::new(ctx.pool.clone(), id).with_config(config);
        let ops = Ops::new(queue, ctx.args.sabotage, ctx.over_budget.as_ref());
        Ok(Self::on(ops, ctx.waker.clone(), ctx.args.workers, handler))
    }

    /// An engine over `ops`' queue, whoever set it up (a worker process does it itself).
    pub fn on<F, Fut>(ops: Ops, waker: Arc<QueueWaker>, workers: u32, handler: F) -> Self
    where
        F: Fn(ClaimedJob) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Decision> + Send + 'static,
    {
        Self {
            ledger: ops.queue.id().as_str().to_owned(),
            ops,
            counters: Arc::default(),
            claim_latency: Arc::default(),
            e2e_latency: Arc::default(),
            acquire_wait: Arc::default(),
            finished: Arc::default(),
            in_process_workers: workers,
            hang_on_stall: false,
            ledger_exec: false,
            batch: 10,
            decide: Arc::new(move |job| Box::pin(handler(job))),
            stop: CancellationToken::new(),
            waker,
            workers: Arc::default(),
            worker_seq: Arc::default(),
            zombies: Arc::default(),
        }
    }

    /// The sabotage in force.
    pub fn sabotage(&self) -> Sabotage {
        self.ops.sabotage()
    }

    /// Counts `n` events of `kind` (with an example, from a worker process); finished jobs
    /// also count towards the throughput over time.
    pub fn count(&self, kind: &str, n: u64, example: Option<String>) {
        self.counters.merge(kind, n, example);
        if matches!(kind, "completed" | "dead") {
            self.finished.record(n);
        }
    }

    /// Waits for the stalled workers' late completion attempts (see [`Decision::Stall`]).
    pub async fn wait_zombies(&self) {
        loop {
            let pending: Vec<_> = lock(&self.zombies).drain(..).collect();
            if pending.is_empty() {
                return;
            }
            for zombie in pending {
                let _ = zombie.await;
            }
        }
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

    /// Starts one more worker.
    pub fn spawn_worker(&self) {
        let name = format!("w{}", self.worker_seq.fetch_add(1, Ordering::Relaxed));
        let running = workers::start(self, name.clone());
        lock(&self.workers).push((name, running));
    }

    /// Kills a random worker wherever it is (mid-claim, mid-job, mid-commit) and starts a
    /// replacement, like a process crash and a restart.
    pub fn crash_random_worker(&self) {
        let victim = {
            let mut workers = lock(&self.workers);
            if workers.is_empty() {
                return;
            }
            let victim = rand::random::<usize>() % workers.len();
            workers.swap_remove(victim)
        };
        self.crashed(victim);
    }

    /// A worker `name` stalled with its job: the worker is killed and replaced, or in a worker
    /// process the whole process hangs (every worker stops, none replaces them) and tells its
    /// parent, which starts another process.
    fn stall_worker(&self, name: &str, zombie: tokio::task::JoinHandle<()>) {
        lock(&self.zombies).push(zombie);
        if !self.hang_on_stall {
            return self.crash_worker(name);
        }
        self.stop();
        Event::Hung.emit();
        let workers: Vec<_> = lock(&self.workers).drain(..).collect();
        for (_, victim) in workers {
            victim.abort();
        }
    }

    /// Kills the worker `name` (a stalled one) and starts a replacement.
    fn crash_worker(&self, name: &str) {
        let victim = {
            let mut workers = lock(&self.workers);
            let Some(at) = workers.iter().position(|(n, _)| n == name) else {
                return;
            };
            workers.swap_remove(at)
        };
        self.crashed(victim);
    }

    /// A crash: dropped without a shutdown (its jobs and heartbeats stop where they are).
    fn crashed(&self, victim: (String, workers::Running)) {
        victim.1.abort();
        self.counters.add_n("workers_aborted", 1);
        if !self.stop.is_cancelled() {
            self.spawn_worker();
        }
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
        for _ in 0..self.in_process_workers {
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
        for (_, worker) in workers {
            worker.stop().await;
        }
        Driven {
            started,
            elapsed,
            max_connections: watch.finish().await,
            log,
        }
    }

    /// Writes `done`-style ledger entries; a second entry for a job is a duplicate completion.
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

    /// Counts an error by kind (acquire timeouts apart: the pool check needs them).
    pub fn count_error(&self, at: &str, err: &sqlx::Error) {
        let kind = match err {
            sqlx::Error::PoolTimedOut => "acquire_timeout".to_owned(),
            sqlx::Error::Database(_) => format!("{at}_database_error"),
            _ => format!("{at}_error"),
        };
        self.counters.add(&kind, || format!("{at}: {err}"));
    }

    /// Sleeps `d`, or less if the engine stops.
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

    /// The most seen at once.
    pub async fn finish(self) -> MaxConnections {
        self.token.cancel();
        self.watch.finish().await
    }
}
