//! Provisioning time of a test environment, next to the sqlx::test way (a database per test
//! with migrations) on the same server.
//!
//! - `env/per_slot` and `env/per_test`: namespace + collection + project (+ cleanup outside the
//!   timing) with each collection design, in a process that already made one environment (what
//!   several environments per test, or `cargo test`'s threads, pay); the test's pool connects on
//!   first use, so `env/per_slot_connected` adds its first connection;
//!   `env/with_worker`: the same plus a worker ready to claim (its connection open).
//! - `env/cold_process`: the first environment of a fresh process, as nextest's process-per-test
//!   pays it (the harness's session connection, runtime and Qdrant client included; the process
//!   start itself is not).
//! - `createdb_migrate`: `CREATE DATABASE` + migrations (the create half of sqlx::test).
//!
//! Runs against `DATABASE_URL` and `QDRANT_URL` (else an embedded Qdrant in this process, or in
//! each child process for `cold_process`). The per-slot design needs a nextest-like run id and
//! slot, which the bench sets for itself.

use std::str::FromStr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use harness::queue::{ClaimedJob, JobFailure};
use harness::{CollectionMode, TestEnv};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Set in the child processes of `env/cold_process`: build one environment, print its time.
const COLD_CHILD: &str = "HARNESS_BENCH_COLD_CHILD";

fn cold_child() {
    let rt = runtime();
    rt.block_on(async {
        let started = Instant::now();
        let env = TestEnv::builder("bench_cold")
            .vector_size(8)
            .build()
            .await
            .expect("env");
        let elapsed = started.elapsed();
        env.finish().await.expect("cleanup");
        println!("{}", elapsed.as_nanos());
    });
}

/// Provisioning time of the first environment of `iters` fresh processes on the servers the
/// parent uses (a shared Qdrant, as under this repository's nextest setup).
fn cold_processes(iters: u64, qdrant_url: &str) -> Duration {
    let exe = std::env::current_exe().expect("bench executable");
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let out = std::process::Command::new(&exe)
            .env(COLD_CHILD, "1")
            .env("QDRANT_URL", qdrant_url)
            .output()
            .expect("child process");
        assert!(out.status.success(), "child failed: {out:?}");
        let nanos: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("child's time");
        total += Duration::from_nanos(nanos);
    }
    total
}

#[derive(Clone, Copy, Debug)]
enum Case {
    PerSlot,
    PerTest,
    PerSlotConnected,
    WithWorker,
}

/// One environment of `case` in this (warm) process; returns its provisioning time.
async fn provision_once(case: Case) -> Duration {
    let mode = match case {
        Case::PerTest => CollectionMode::PerTest,
        _ => CollectionMode::PerSlot,
    };
    let started = Instant::now();
    let env = TestEnv::builder("bench")
        .collection_mode(mode)
        .vector_size(8)
        .build()
        .await
        .expect("env");
    let worker = match case {
        Case::WithWorker => Some(
            env.spawn_worker(|_job: ClaimedJob| async { Ok::<(), JobFailure>(()) })
                .await
                .expect("worker"),
        ),
        _ => None,
    };
    if matches!(case, Case::PerSlotConnected | Case::WithWorker) {
        // Connected / ready = able to run a statement (or claim) without connecting first.
        drop(env.pool().acquire().await.expect("first connection"));
    }
    let elapsed = started.elapsed();
    if let Some(worker) = worker {
        worker.shutdown().await;
    }
    env.finish().await.expect("cleanup");
    elapsed
}

/// p50 and p99 of `samples`, printed (criterion reports means).
fn print_percentiles(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{label}: p50 {:.2} ms, p99 {:.2} ms over {} environments",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples.len()
    );
}

const CASES: [(&str, Case); 4] = [
    ("env/per_slot", Case::PerSlot),
    ("env/per_test", Case::PerTest),
    ("env/per_slot_connected", Case::PerSlotConnected),
    ("env/with_worker", Case::WithWorker),
];

fn provision(c: &mut Criterion) {
    let rt = runtime();
    // A run id and slot as nextest would give them, so the per-slot design is what is measured.
    std::env::set_var("NEXTEST_RUN_ID", uuid::Uuid::new_v4().to_string());
    std::env::set_var("NEXTEST_TEST_GLOBAL_SLOT", "0");
    // The first environment of this process opens the shared session; the warm figures below
    // are about the ones after it.
    let qdrant_url = rt.block_on(async {
        let env = TestEnv::builder("bench_warmup")
            .vector_size(8)
            .build()
            .await
            .expect("env");
        let url = env.qdrant_url().to_owned();
        env.finish().await.expect("cleanup");
        url
    });
    for (label, case) in CASES {
        let samples = rt.block_on(async {
            let mut samples = Vec::new();
            for _ in 0..200 {
                samples.push(provision_once(case).await);
            }
            samples
        });
        print_percentiles(label, samples);
    }
    let cold: Vec<Duration> = (0..30).map(|_| cold_processes(1, &qdrant_url)).collect();
    print_percentiles("env/cold_process", cold);

    let mut group = c.benchmark_group("env");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(10));
    for (label, case) in CASES {
        let name = label.trim_start_matches("env/");
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += provision_once(case).await;
                }
                total
            })
        });
    }
    group.sample_size(10);
    group.bench_function("cold_process", |b| {
        b.iter_custom(|iters| cold_processes(iters, &qdrant_url))
    });
    group.finish();

    // Same server and connection settings (TLS or not) as the environments above.
    let options =
        PgConnectOptions::from_str(&queue::db::database_url_from_env()).expect("database URL");
    c.bench_function("createdb_migrate", |b| {
        let options = options.clone();
        b.to_async(&rt).iter_custom(move |iters| {
            let options = options.clone();
            async move {
                let mut admin = PgConnection::connect_with(&options.clone().database("postgres"))
                    .await
                    .expect("admin");
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
                    let started = Instant::now();
                    sqlx::query(&format!("CREATE DATABASE {name}"))
                        .execute(&mut admin)
                        .await
                        .expect("create");
                    let mut conn = PgConnection::connect_with(&options.clone().database(&name))
                        .await
                        .expect("connect");
                    queue::db::MIGRATOR
                        .run_direct(&mut conn)
                        .await
                        .expect("migrate");
                    total += started.elapsed();
                    conn.close().await.expect("close");
                    sqlx::query(&format!("DROP DATABASE {name}"))
                        .execute(&mut admin)
                        .await
                        .expect("drop");
                }
                total
            }
        })
    });
}

criterion_group!(benches, provision);

fn main() {
    if std::env::var_os(COLD_CHILD).is_some() {
        cold_child();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
