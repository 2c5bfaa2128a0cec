//! Pickup latency on an idle queue: how long a job waits between its enqueue's commit and its
//! handler's start, when only a `NOTIFY` can wake the worker.
//!
//! ```text
//! cargo run --release -p queue --example pickup_latency -- --jobs 1000
//! ```
//!
//! A worker runtime idles on a fresh queue whose poll interval is an hour. The bench enqueues one
//! job at a time; each is timed from the enqueue's return (its commit acknowledged) to its
//! handler's start, and the next is enqueued only once this one is completed and `--gap-ms` more
//! have passed, so every job finds the worker asleep. Prints p50, p90, p99 and max (target: p50
//! at most 5 ms), the claim statement's share of it, and the same from the enqueue call for
//! comparison; then deletes the queue's rows.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use queue::worker::{Handler, JobOutcome, JobReport, Ran, Worker, WorkerConfig};
use queue::{ClaimedJob, JobId, NewJob, Queue, QueueConfig, QueueId, QueueWaker};
use tokio::sync::mpsc;

/// Jobs run first and left out of the figures (connections opening, plans cached).
const WARM_UP: usize = 20;
/// A pickup slower than this means the notification was lost (the poll interval is an hour).
const PICKUP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Args {
    jobs: usize,
    gap: Duration,
    threads: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        jobs: 1000,
        gap: Duration::from_millis(5),
        threads: 2,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let value = argv
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        let value: u64 = value
            .parse()
            .with_context(|| format!("{flag} must be a number, got {value}"))?;
        match flag.as_str() {
            "--jobs" if value > 0 => args.jobs = value as usize,
            "--gap-ms" => args.gap = Duration::from_millis(value),
            "--threads" if value > 0 => args.threads = value as usize,
            _ => bail!("unknown flag or bad value: {flag} {value}"),
        }
    }
    Ok(args)
}

/// What the handler tells the bench.
enum Event {
    /// A claim statement that returned rows took this long.
    Claimed(Duration),
    Started(JobId, Instant),
    Finished(JobId, JobOutcome),
}

/// A no-op job that reports its start and its completion.
struct Probe(mpsc::UnboundedSender<Event>);

impl Handler for Probe {
    type Output = ();

    fn run(&self, job: ClaimedJob) -> impl Future<Output = Ran<()>> + Send {
        let _ = self.0.send(Event::Started(job.id, Instant::now()));
        std::future::ready(Ran::from(Ok(())))
    }

    fn claimed(&self, jobs: usize, took: Duration) {
        if jobs > 0 {
            let _ = self.0.send(Event::Claimed(took));
        }
    }

    fn finished(&self, report: &JobReport) {
        let _ = self.0.send(Event::Finished(report.id, report.outcome));
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
    let pool = queue::db::connect(&url, 10, Duration::from_secs(30)).await?;
    queue::db::migrate(&pool).await?;
    let id = QueueId::new(format!("bench_pickup_{}", uuid::Uuid::new_v4().simple()))?;
    // Only a notification can wake the worker within the bench's lifetime.
    let config = QueueConfig {
        poll_interval: Duration::from_secs(3600),
        ..QueueConfig::default()
    };
    let queue = Queue::new(pool.clone(), id.clone()).with_config(config);
    let result = measure(&queue, &args).await;
    queue::namespace::delete_queues(&pool, &[id.as_str()]).await?;
    let latencies = result?;
    print("enqueue commit -> handler start", &latencies.from_commit);
    print("  of which the claim statement ", &latencies.claims);
    print("enqueue call   -> handler start", &latencies.from_call);
    Ok(())
}

async fn measure(queue: &Queue, args: &Args) -> anyhow::Result<Latencies> {
    let waker = Arc::new(QueueWaker::start(queue.pool()).await?);
    let (tx, mut events) = mpsc::unbounded_channel();
    let worker = Worker::new(queue.clone(), Probe(tx), WorkerConfig::default());
    let handle = worker.start(waker);
    let mut from_commit = Vec::with_capacity(args.jobs);
    let mut from_call = Vec::with_capacity(args.jobs);
    let mut claims = Vec::with_capacity(args.jobs);
    let mut early = 0;
    let result = async {
        // Let the worker's first (empty) claim pass, so the first job finds it asleep.
        tokio::time::sleep(Duration::from_millis(200)).await;
        for n in 0..WARM_UP + args.jobs {
            let called = Instant::now();
            let id = queue.enqueue(NewJob::new(serde_json::json!({}))).await?;
            let committed = Instant::now();
            let claim = match next(&mut events).await? {
                Event::Claimed(took) => took,
                _ => bail!("job {id}: expected its claim first"),
            };
            let started = match next(&mut events).await? {
                Event::Started(job, at) if job == id => at,
                _ => bail!("job {id}: expected its start first"),
            };
            match next(&mut events).await? {
                Event::Finished(job, JobOutcome::Completed) if job == id => {}
                _ => bail!("job {id}: expected its completion"),
            }
            if n >= WARM_UP {
                // The handler may start before the enqueue's reply reaches the bench.
                early += usize::from(started < committed);
                from_commit.push(started.saturating_duration_since(committed));
                from_call.push(started - called);
                claims.push(claim);
            }
            tokio::time::sleep(args.gap).await;
        }
        anyhow::Ok(())
    }
    .await;
    handle.shutdown().await;
    result?;
    if early > 0 {
        eprintln!("{early} handlers started before their enqueue returned (counted as 0)");
    }
    from_commit.sort();
    from_call.sort();
    claims.sort();
    Ok(Latencies {
        from_commit,
        from_call,
        claims,
    })
}

/// Sorted latencies of the measured jobs.
struct Latencies {
    from_commit: Vec<Duration>,
    from_call: Vec<Duration>,
    /// The claim statement's own time, part of `from_commit`.
    claims: Vec<Duration>,
}

async fn next(events: &mut mpsc::UnboundedReceiver<Event>) -> anyhow::Result<Event> {
    tokio::time::timeout(PICKUP_TIMEOUT, events.recv())
        .await
        .context("no pickup within 10 s: the notification was lost")?
        .context("the worker is gone")
}

fn print(what: &str, sorted: &[Duration]) {
    let at = |q: f64| {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1].as_secs_f64() * 1000.0
    };
    println!(
        "{what}: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} jobs)",
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0),
        sorted.len()
    );
}
