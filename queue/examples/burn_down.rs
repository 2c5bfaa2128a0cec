//! A burn-down of pre-enqueued no-op jobs through the worker runtime: the queue's half of
//! `scripts/bench-vs-graphile.sh`.
//!
//! ```text
//! cargo run --release -p queue --example burn_down -- --jobs 20000 --concurrency 16
//! ```
//!
//! Enqueues `--jobs` no-op jobs on a fresh queue and runs `VACUUM ANALYZE queue_jobs` (both
//! untimed: the server may run without autovacuum), then times [`Worker::start`] → the last
//! completion committed (the handler's `finished` hook), prints jobs/s and a `RESULT key=value`
//! line, and deletes the queue's rows. Flags: `--concurrency` (the worker's), `--workers` (workers
//! on the queue, each with its own dispatcher), `--threads` (the tokio runtime's worker threads; 1
//! matches the one thread node runs graphile-worker's JavaScript on).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use queue::worker::{Handler, JobOutcome, JobReport, Ran, Worker, WorkerConfig};
use queue::{ClaimedJob, NewJob, Queue, QueueId, QueueWaker};
use tokio::sync::Notify;

/// Rows per enqueue statement.
const ENQUEUE_BATCH: usize = 1000;

#[derive(Debug)]
struct Args {
    jobs: usize,
    concurrency: usize,
    workers: usize,
    threads: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        jobs: 20_000,
        concurrency: 16,
        workers: 1,
        threads: 1,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let value = argv
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        let value: usize = value
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("{flag} must be a positive integer, got {value}"))?;
        match flag.as_str() {
            "--jobs" => args.jobs = value,
            "--concurrency" => args.concurrency = value,
            "--workers" => args.workers = value,
            "--threads" => args.threads = value,
            _ => bail!("unknown flag {flag}"),
        }
    }
    Ok(args)
}

/// A no-op job that counts attempts finished in the database and notes when the last one was.
struct NoOp {
    target: usize,
    finished: AtomicUsize,
    not_completed: AtomicUsize,
    first_start: OnceLock<Instant>,
    last_finished: OnceLock<Instant>,
    done: Notify,
    /// Claim statements, rows they returned, and their time in µs (printed, to see where the
    /// time goes).
    statements: AtomicUsize,
    claimed_rows: AtomicUsize,
    statement_micros: AtomicUsize,
}

impl Handler for NoOp {
    type Output = ();

    fn run(&self, _job: ClaimedJob) -> impl Future<Output = Ran<()>> + Send {
        self.first_start.get_or_init(Instant::now);
        std::future::ready(Ran::from(Ok(())))
    }

    fn claimed(&self, jobs: usize, took: Duration) {
        self.statements.fetch_add(1, Ordering::Relaxed);
        self.claimed_rows.fetch_add(jobs, Ordering::Relaxed);
        self.statement_micros
            .fetch_add(took.as_micros() as usize, Ordering::Relaxed);
    }

    fn finished(&self, report: &JobReport) {
        if report.outcome != JobOutcome::Completed {
            self.not_completed.fetch_add(1, Ordering::Relaxed);
        }
        // Failed attempts count too, so a broken run ends at once and fails the check below.
        if self.finished.fetch_add(1, Ordering::Relaxed) + 1 == self.target {
            let _ = self.last_finished.set(Instant::now());
            self.done.notify_one();
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?
        .block_on(bench(args))
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let url = queue::db::database_url_from_env();
    queue::db::ensure_database(&url).await?;
    let pool_size = (args.concurrency + 2).max(10).max(args.workers * 2 + 4);
    let pool = queue::db::connect(&url, pool_size as u32, Duration::from_secs(30)).await?;
    queue::db::migrate(&pool).await?;
    let id = QueueId::new(format!("bench_burn_down_{}", uuid::Uuid::new_v4().simple()))?;
    let queue = Queue::new(pool.clone(), id.clone());
    let result = burn_down(&queue, &args).await;
    queue::namespace::delete_queues(&pool, &[id.as_str()]).await?;
    result
}

async fn burn_down(queue: &Queue, args: &Args) -> anyhow::Result<()> {
    let pool = queue.pool();
    let (others, bytes): (i64, i64) =
        sqlx::query_as("SELECT count(*), pg_total_relation_size('queue_jobs') FROM queue_jobs")
            .fetch_one(pool)
            .await?;
    eprintln!(
        "queue_jobs before the run: {others} rows of other queues, {} MB",
        bytes / 1_000_000
    );

    let rows = vec![NewJob::new(serde_json::json!({})); ENQUEUE_BATCH];
    let mut left = args.jobs;
    while left > 0 {
        let n = left.min(ENQUEUE_BATCH);
        queue.enqueue_many(&rows[..n]).await?;
        left -= n;
    }
    sqlx::query("VACUUM ANALYZE queue_jobs")
        .execute(pool)
        .await?;
    // One waker per process, started before the workers as a service does.
    let waker = Arc::new(QueueWaker::start(pool).await?);
    // Open the connections the run will use, as graphile-worker's side does.
    let warm = futures::future::try_join_all((0..4).map(|_| pool.acquire())).await?;
    drop(warm);

    let handler = Arc::new(NoOp {
        target: args.jobs,
        finished: AtomicUsize::new(0),
        not_completed: AtomicUsize::new(0),
        first_start: OnceLock::new(),
        last_finished: OnceLock::new(),
        done: Notify::new(),
        statements: AtomicUsize::new(0),
        claimed_rows: AtomicUsize::new(0),
        statement_micros: AtomicUsize::new(0),
    });
    let workers: Vec<Worker<NoOp>> = (0..args.workers)
        .map(|n| {
            let config = WorkerConfig {
                concurrency: args.concurrency,
                name: format!("burn-down-{n}"),
                ..WorkerConfig::default()
            };
            Worker::with_shared(queue.clone(), handler.clone(), config)
        })
        .collect();

    let started = Instant::now();
    let handles: Vec<_> = workers.iter().map(|w| w.start(waker.clone())).collect();
    let deadline = Duration::from_secs(120).max(Duration::from_millis(args.jobs as u64 * 10));
    let finished = tokio::time::timeout(deadline, handler.done.notified()).await;
    for handle in handles {
        handle.shutdown().await;
    }
    if finished.is_err() {
        bail!(
            "only {} of {} jobs finished within {deadline:?}",
            handler.finished.load(Ordering::Relaxed),
            args.jobs
        );
    }
    let last = *handler
        .last_finished
        .get()
        .context("no completion time recorded")?;
    let first = *handler.first_start.get().context("no job started")?;

    let stats = queue.stats().await?;
    let completed = stats.count(queue::JobStatus::Completed);
    let not_completed = handler.not_completed.load(Ordering::Relaxed);
    if completed != args.jobs as i64 || not_completed != 0 || stats.depth() != 0 {
        bail!(
            "{completed} of {} rows completed, {not_completed} attempts did not complete, depth {}",
            args.jobs,
            stats.depth()
        );
    }
    let statements = handler.statements.load(Ordering::Relaxed).max(1);
    eprintln!(
        "{statements} claim statements, {:.1} rows and {:.2} ms each on average",
        handler.claimed_rows.load(Ordering::Relaxed) as f64 / statements as f64,
        handler.statement_micros.load(Ordering::Relaxed) as f64 / statements as f64 / 1000.0
    );
    let seconds = (last - started).as_secs_f64();
    let per_second = args.jobs as f64 / seconds;
    let first_ms = (first - started).as_secs_f64() * 1000.0;
    // From the first job's start: the runtime's steady pace, without its start-up.
    let steady = args.jobs as f64 / (last - first).as_secs_f64();
    println!(
        "queue-vector, concurrency {} x {} worker(s), {} thread(s): {} jobs in {seconds:.3} s = {per_second:.0} jobs/s (first job started after {first_ms:.1} ms)",
        args.concurrency, args.workers, args.threads, args.jobs
    );
    println!(
        "RESULT runner=queue-vector jobs={} concurrency={} workers={} threads={} seconds={seconds:.4} jobs_per_s={per_second:.1} first_job_ms={first_ms:.2} steady_jobs_per_s={steady:.1}",
        args.jobs, args.concurrency, args.workers, args.threads
    );
    Ok(())
}
