//! retention: a steady stream of jobs for `--steady-for`, worked by the queue's runtime with its
//! maintenance on (pruner with a short retention, vacuum); the table must stay the same size.
//! Not part of `all`: it runs for minutes by design.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use queue::maintenance::{MaintenanceConfig, Retention};
use queue::worker::{Worker, WorkerConfig};
use queue::{JobFailure, JobStatus, NewJob, Queue, QueueConfig};
use serde_json::json;

use crate::cli::{Sabotage, Scenario};
use crate::context::Context;
use crate::report::timeline::Timeline;
use crate::report::{Invariant, ScenarioReport};
use crate::stats::Percentiles;

/// How long completed rows stay: the window the table holds.
const RETAIN: Duration = Duration::from_secs(10);
/// How often the pruner and the vacuum check run.
const MAINTAIN_EVERY: Duration = Duration::from_secs(2);
/// Until then the table fills up to its window; the size after it is the baseline.
const WARM_UP: Duration = Duration::from_secs(30);
/// How often the table's size is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Jobs enqueued per tick.
const BATCH: usize = 100;
/// Ticks per second.
const TICK: Duration = Duration::from_millis(100);
/// Growth of the table after the baseline that still counts as flat.
const FLAT: f64 = 1.10;

pub async fn run(ctx: &Context) -> anyhow::Result<ScenarioReport> {
    anyhow::ensure!(
        ctx.args.steady_for >= 3 * WARM_UP,
        "--steady-for must be at least {}s: the table fills for {}s before its size is compared",
        (3 * WARM_UP).as_secs(),
        WARM_UP.as_secs()
    );
    let started = Instant::now();
    let queue = Queue::new(ctx.pool.clone(), ctx.queue_id(Scenario::Retention).await?)
        .with_config(QueueConfig::default());
    let config = WorkerConfig {
        concurrency: 64,
        name: format!("load-retention:{}", ctx.namespace()),
        maintenance: Some(MaintenanceConfig {
            rescue_interval: Some(Duration::from_secs(30)),
            vacuum_interval: Some(MAINTAIN_EVERY),
            prune_interval: (ctx.args.sabotage != Sabotage::KeepFinished).then_some(MAINTAIN_EVERY),
            retention: Retention {
                completed_for: RETAIN,
                ..Retention::default()
            },
        }),
        ..WorkerConfig::default()
    };
    let worker = Worker::new(
        queue.clone(),
        |_job: queue::ClaimedJob| async { Ok::<(), JobFailure>(()) },
        config,
    )
    .start(ctx.waker.clone());

    // A steady stream for the whole run, the table's size sampled as it goes.
    let steady_for = ctx.args.steady_for;
    let mut sizes: Vec<(f64, i64)> = Vec::new();
    let mut enqueued = 0u64;
    let mut tick = tokio::time::interval(TICK);
    let mut next_sample = Instant::now();
    while started.elapsed() < steady_for {
        tick.tick().await;
        queue
            .enqueue_many(&vec![NewJob::new(json!({ "steady": true })); BATCH])
            .await
            .context("enqueueing")?;
        enqueued += BATCH as u64;
        if Instant::now() >= next_sample {
            sizes.push((started.elapsed().as_secs_f64(), table_size(ctx).await?));
            next_sample += SAMPLE_EVERY;
        }
    }
    // The last jobs finish; nothing is left behind.
    let deadline = Instant::now() + ctx.args.duration;
    let stats = loop {
        let stats = queue.stats().await?;
        if stats.depth() == 0 || Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let shutdown = worker.shutdown().await;
    sizes.push((started.elapsed().as_secs_f64(), table_size(ctx).await?));

    let elapsed = started.elapsed().as_secs_f64();
    // The baseline: the largest size between the warm-up and the middle of the steady part.
    let (warm, middle) = (
        WARM_UP.as_secs_f64(),
        (WARM_UP.as_secs_f64() + elapsed) / 2.0,
    );
    let baseline = sizes
        .iter()
        .filter(|(at, _)| (warm..=middle).contains(at))
        .map(|(_, size)| *size)
        .max()
        .unwrap_or(0);
    let end = sizes.last().map_or(0, |(_, size)| *size);
    let start = sizes.first().map_or(0, |(_, size)| *size);
    let completed = stats.count(JobStatus::Completed);
    // Completed rows the window may hold: the retention plus one pruning interval of jobs,
    // doubled for slack.
    let window = (RETAIN + MAINTAIN_EVERY).as_secs_f64() * (BATCH as f64 / TICK.as_secs_f64());
    let invariants = vec![
        Invariant::check(
            "every job finished, none dead",
            stats.depth() == 0 && stats.count(JobStatus::Dead) == 0,
            format!(
                "{enqueued} enqueued; {} not finished, {} dead ({shutdown:?})",
                stats.depth(),
                stats.count(JobStatus::Dead)
            ),
        ),
        Invariant::check(
            "completed rows pruned to the retention window",
            (completed as f64) <= 2.0 * window,
            format!(
                "{completed} completed rows kept at the end; the window holds about {window:.0}"
            ),
        ),
        Invariant::check(
            "the table stays the same size",
            baseline > 0 && (end as f64) <= FLAT * baseline as f64,
            format!(
                "pg_total_relation_size('queue_jobs'): {} at the start, {} at most between the \
                 {}s warm-up and the middle of the run, {} at the end (samples: {})",
                mib(start),
                mib(baseline),
                WARM_UP.as_secs(),
                mib(end),
                sizes
                    .iter()
                    .map(|(at, size)| format!("{at:.0}s {}", mib(*size)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    ];
    Ok(ScenarioReport {
        scenario: Scenario::Retention,
        runs: 1,
        jobs: enqueued,
        elapsed_s: elapsed,
        throughput_jobs_per_s: enqueued as f64 / elapsed,
        claim_latency: Percentiles::default(),
        end_to_end_latency: Percentiles::default(),
        acquire_wait: Percentiles::default(),
        max_connections_seen: 0,
        errors: BTreeMap::new(),
        invariants,
        timeline: Timeline::default(),
    })
}

async fn table_size(ctx: &Context) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT pg_total_relation_size('queue_jobs')")
            .fetch_one(&ctx.admin)
            .await?,
    )
}

fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
