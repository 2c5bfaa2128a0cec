//! Provisioning time of a test environment, next to the sqlx::test way (a database per test
//! with migrations) on the same server.
//!
//! - `env/per_slot` and `env/per_test`: namespace + collection + project (+ cleanup outside the
//!   timing) with each collection design; `env/with_worker`: the same plus a worker ready to claim.
//! - `createdb_migrate`: `CREATE DATABASE` + migrations + `DROP DATABASE`'s create half.
//!
//! Runs against `DATABASE_URL` and `QDRANT_URL` (else an embedded Qdrant in this process). The
//! per-slot design needs a nextest-like run id and slot, which the bench sets for itself.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use harness::queue::{ClaimedJob, JobFailure};
use harness::{CollectionMode, TestEnv};
use sqlx::{Connection, PgConnection};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn provision(c: &mut Criterion) {
    let rt = runtime();
    // A run id and slot as nextest would give them, so the per-slot design is what is measured.
    std::env::set_var("NEXTEST_RUN_ID", uuid::Uuid::new_v4().to_string());
    std::env::set_var("NEXTEST_TEST_GLOBAL_SLOT", "0");
    let mut group = c.benchmark_group("env");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(10));
    for (label, mode) in [
        ("per_slot", CollectionMode::PerSlot),
        ("per_test", CollectionMode::PerTest),
    ] {
        group.bench_function(label, |b| {
            b.to_async(&rt).iter_custom(|iters| async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let env = TestEnv::builder("bench")
                        .collection_mode(mode)
                        .vector_size(8)
                        .build()
                        .await
                        .expect("env");
                    total += started.elapsed();
                    env.finish().await.expect("cleanup");
                }
                total
            })
        });
    }
    group.bench_function("with_worker", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let env = TestEnv::builder("bench")
                    .vector_size(8)
                    .build()
                    .await
                    .expect("env");
                let worker = env
                    .spawn_worker(|_job: ClaimedJob| async { Ok::<(), JobFailure>(()) })
                    .await
                    .expect("worker");
                total += started.elapsed();
                worker.stop().await;
                env.finish().await.expect("cleanup");
            }
            total
        })
    });
    group.finish();

    let url = service::db::database_url_from_env();
    let (server, _) = url
        .rsplit_once('/')
        .expect("database URL with a database name");
    let server = server.to_owned();
    c.bench_function("createdb_migrate", |b| {
        let server = server.clone();
        b.to_async(&rt).iter_custom(move |iters| {
            let server = server.clone();
            async move {
                let mut admin = PgConnection::connect(&format!("{server}/postgres"))
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
                    let mut conn = PgConnection::connect(&format!("{server}/{name}"))
                        .await
                        .expect("connect");
                    service::db::MIGRATOR
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
criterion_main!(benches);
