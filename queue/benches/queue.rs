//! Queue core throughput on the local PostgreSQL (`DATABASE_URL`).
//!
//! - enqueue: one row per statement, and 50 rows per statement;
//! - claim → complete of no-op jobs with 1, 4 and 16 concurrent claimers and claim batches of
//!   1, 10 and 50 (leases and status tracking on, completion batched like the claim). Each
//!   claimer completes its batch and claims the next in one statement
//!   ([`Queue::complete_and_claim`]); `separate` runs batch 50 with a claim and a completion
//!   statement each, for comparison.
//!
//! criterion's `thrpt` line is jobs per second. Each benchmark works in its own queue and removes
//! its rows afterwards.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use queue::db;
use queue::{NewJob, Queue, QueueId};
use serde_json::json;
use sqlx::PgPool;
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn setup(max_connections: u32) -> PgPool {
    let url = db::database_url_from_env();
    db::ensure_database(&url).await.expect("database");
    let pool = db::connect(&url, max_connections, Duration::from_secs(30))
        .await
        .expect("connect");
    db::migrate(&pool).await.expect("migrate");
    pool
}

fn queue(pool: &PgPool, label: &str) -> Queue {
    let id = format!("bench_{label}_{}", uuid::Uuid::new_v4().simple());
    Queue::new(pool.clone(), QueueId::new(id).expect("valid id"))
}

fn enqueue(c: &mut Criterion) {
    let rt = runtime();
    let pool = rt.block_on(setup(4));
    let q = queue(&pool, "enqueue");
    let mut group = c.benchmark_group("enqueue");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));

    group.throughput(Throughput::Elements(1));
    group.bench_function("single", |b| {
        b.to_async(&rt)
            .iter(|| async { q.enqueue(NewJob::new(json!({}))).await.expect("enqueue") })
    });

    let batch = vec![NewJob::new(json!({})); 50];
    group.throughput(Throughput::Elements(50));
    group.bench_function("batch_50", |b| {
        b.to_async(&rt)
            .iter(|| async { q.enqueue_many(&batch).await.expect("enqueue") })
    });
    group.finish();
    rt.block_on(q.purge()).expect("purge");
}

/// Fewest jobs one claim → complete sample processes: about 100 rounds per claimer, so a sample
/// measures a steady state rather than claimers starting and stopping.
fn min_sample_jobs(claimers: u32, batch: u32) -> u64 {
    (u64::from(claimers) * u64::from(batch) * 100).clamp(2_000, 20_000)
}

/// Processes `jobs` pre-enqueued no-op jobs with `claimers` concurrent claimers; returns the time.
async fn drain(q: &Queue, jobs: u64, claimers: u32, batch: u32, separate: bool) -> Duration {
    let rows = vec![NewJob::new(json!({})); 1000];
    let mut left = jobs;
    while left > 0 {
        let n = left.min(1000) as usize;
        q.enqueue_many(&rows[..n]).await.expect("enqueue");
        left -= n as u64;
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..claimers {
        let q = q.clone();
        tasks.spawn(async move {
            let name = format!("bench-{worker}");
            let mut claimed = q.claim(batch, &name).await.expect("claim");
            while !claimed.is_empty() {
                let leases: Vec<_> = claimed.iter().map(|j| j.lease()).collect();
                let done = if separate {
                    let done = q.complete_many(&leases).await.expect("complete");
                    claimed = q.claim(batch, &name).await.expect("claim");
                    done
                } else {
                    let (done, next) = q
                        .complete_and_claim(&leases, batch, &name)
                        .await
                        .expect("complete and claim");
                    claimed = next;
                    done
                };
                assert_eq!(done.len(), leases.len(), "a fresh lease was rejected");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("claimer");
    }
    start.elapsed()
}

fn claim_complete(c: &mut Criterion) {
    let rt = runtime();
    let pool = rt.block_on(setup(20));
    let mut group = c.benchmark_group("claim_complete");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(1));
    let mut configurations: Vec<(u32, u32, bool)> = Vec::new();
    for claimers in [1u32, 4, 16] {
        for batch in [1u32, 10, 50] {
            configurations.push((claimers, batch, false));
        }
    }
    configurations.extend([(4, 50, true), (16, 50, true)]);
    for (claimers, batch, separate) in configurations {
        let q = queue(&pool, "claim");
        group.bench_with_input(
            BenchmarkId::new(
                format!("claimers_{claimers}"),
                format!("batch_{batch}{}", if separate { "_separate" } else { "" }),
            ),
            &(claimers, batch),
            |b, &(claimers, batch)| {
                b.to_async(&rt).iter_custom(|iters| {
                    let q = q.clone();
                    async move {
                        // Short samples would mostly measure starting and stopping claimers;
                        // run at least min_sample_jobs and scale the time to `iters`.
                        let jobs = iters.max(min_sample_jobs(claimers, batch));
                        let elapsed = drain(&q, jobs, claimers, batch, separate).await;
                        let elapsed = elapsed.mul_f64(iters as f64 / jobs as f64);
                        // Keep finished history and dead rows from piling up between samples,
                        // warm-up included, so every sample starts from a compact table (the
                        // server may run without autovacuum); untimed, and the same upkeep the
                        // worker pool's rescuer does.
                        q.purge().await.expect("purge");
                        let mut conn = q.pool().acquire().await.expect("connection");
                        queue::maintenance::vacuum_if_bloated(&mut conn)
                            .await
                            .expect("vacuum");
                        elapsed
                    }
                })
            },
        );
        rt.block_on(q.purge()).expect("purge");
    }
    group.finish();
}

criterion_group!(benches, enqueue, claim_complete);
criterion_main!(benches);
