//! Outages: a dependency down costs no attempts (the worker stops claiming and probes), and a
//! PostgreSQL restart under load loses no job and completes none twice.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use queue::maintenance::MaintenanceConfig;
use queue::worker::{Handler, JobReport, Ran, RecordError, Worker, WorkerConfig, WorkerHealth};
use queue::{ClaimedJob, JobFailure, JobStatus, NewJob, Queue, QueueConfig, QueueId, QueueWaker};
use serde_json::json;

use crate::cluster::Cluster;
use crate::helpers::{wait_until, TestQueue, TestResult};

/// A handler whose store is down while `down` is set.
#[derive(Default)]
struct StoreClient {
    down: AtomicBool,
    probes: AtomicUsize,
    ran: Mutex<HashSet<i64>>,
}

impl Handler for StoreClient {
    type Output = ();

    async fn run(&self, job: ClaimedJob) -> Ran {
        self.ran.lock().unwrap().insert(job.id);
        if self.down.load(Ordering::SeqCst) {
            return Ran::from(Err(JobFailure::unavailable(
                "the store refused the connection",
            )));
        }
        Ran::from(Ok(()))
    }

    async fn probe(&self) -> Result<(), String> {
        self.probes.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            Err("the store still refuses connections".into())
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn a_dependency_outage_pauses_claiming_costs_no_attempt_and_ends_by_itself() -> TestResult {
    // Arrange: 40 jobs, four slots, the store down.
    let q = TestQueue::new(6).await?;
    let ids = q.enqueue_many(&vec![NewJob::new(json!({})); 40]).await?;
    let waker = Arc::new(QueueWaker::start(&q.pool).await?);
    let store = Arc::new(StoreClient::default());
    store.down.store(true, Ordering::SeqCst);
    let config = WorkerConfig {
        concurrency: 4,
        postpone_for: Duration::from_millis(100),
        ..WorkerConfig::default()
    };

    // Act: the outage is noticed and probed twice...
    let worker = Worker::with_shared(q.queue.clone(), store.clone(), config).start(waker);
    wait_until("the worker to pause and probe twice", || async {
        let paused = matches!(worker.health(), WorkerHealth::Paused { .. });
        Ok(paused && store.probes.load(Ordering::SeqCst) >= 2)
    })
    .await?;
    let ran_during_outage = store.ran.lock().unwrap().len();
    let spent: i32 =
        sqlx::query_scalar("SELECT coalesce(max(attempts), 0) FROM queue_jobs WHERE queue_id = $1")
            .bind(q.id().as_str())
            .fetch_one(&q.pool)
            .await?;
    // ...then the store comes back.
    store.down.store(false, Ordering::SeqCst);
    wait_until("every job to complete", || async {
        Ok(q.count_finished(&ids).await? == 40)
    })
    .await?;
    worker.shutdown().await;

    // Assert: only the first claim ran during the outage, no attempt was spent on it, and every
    // job completed on its first counted attempt.
    assert!(
        ran_during_outage <= 4,
        "{ran_during_outage} jobs ran during the outage"
    );
    assert_eq!(spent, 0, "the outage spent attempts");
    let stats = q.stats().await?;
    assert_eq!(stats.count(JobStatus::Completed), 40);
    let attempts: Vec<i32> =
        sqlx::query_scalar("SELECT attempts FROM queue_jobs WHERE queue_id = $1")
            .bind(q.id().as_str())
            .fetch_all(&q.pool)
            .await?;
    assert!(attempts.iter().all(|a| *a == 1), "{attempts:?}");
    Ok(())
}

/// Records each job's effect in its completion's transaction: a second completion would
/// violate the primary key.
struct Ledger;

impl Handler for Ledger {
    type Output = ();
    const RECORDS: bool = true;

    async fn run(&self, _job: ClaimedJob) -> Ran {
        // Some work, so the restart finds jobs in hand.
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ran::from(Ok(()))
    }

    async fn record(
        &self,
        tx: &mut sqlx::PgConnection,
        report: &JobReport,
        _output: Option<&()>,
    ) -> Result<(), RecordError> {
        sqlx::query("INSERT INTO effects (job_id) VALUES ($1)")
            .bind(report.id)
            .execute(tx)
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn a_postgres_restart_under_load_loses_no_job_and_completes_none_twice() -> TestResult {
    // Arrange: a server of this test's own, 1,500 jobs, a worker with eight slots.
    let cluster = Cluster::start()?;
    let pool = queue::db::connect(&cluster.url(), 10, Duration::from_secs(30)).await?;
    queue::db::migrate(&pool).await?;
    sqlx::query("CREATE TABLE effects (job_id bigint PRIMARY KEY)")
        .execute(&pool)
        .await?;
    // A claim that committed just before the restart but whose answer was lost is rescued once
    // its lease runs out: short leases keep the test short.
    let queue = Queue::new(pool.clone(), QueueId::new("restart")?).with_config(QueueConfig {
        lease: Duration::from_secs(3),
        ..QueueConfig::default()
    });
    let ids = queue
        .enqueue_many(&vec![NewJob::new(json!({})).max_attempts(3); 1500])
        .await?;
    let waker = Arc::new(QueueWaker::start(&pool).await?);
    let config = WorkerConfig {
        concurrency: 8,
        heartbeat_interval: Duration::from_millis(200),
        maintenance: Some(MaintenanceConfig {
            rescue_interval: Some(Duration::from_millis(500)),
            vacuum_interval: None,
            ..MaintenanceConfig::default()
        }),
        ..WorkerConfig::default()
    };
    let worker = Worker::new(queue.clone(), Ledger, config).start(waker);
    wait_until("a few hundred jobs to complete", || async {
        Ok(queue.count_finished(&ids).await? >= 300)
    })
    .await?;

    // Act: the server restarts under load.
    cluster.restart()?;

    // Assert: every job completes, once.
    wait_until("every job to finish after the restart", || async {
        Ok(queue.count_finished(&ids).await.unwrap_or(0) == 1500)
    })
    .await?;
    worker.shutdown().await;
    let stats = queue.stats().await?;
    assert_eq!(stats.count(JobStatus::Completed), 1500, "{stats:?}");
    let effects: i64 = sqlx::query_scalar("SELECT count(*) FROM effects")
        .fetch_one(&pool)
        .await?;
    assert_eq!(effects, 1500);
    pool.close().await;
    Ok(())
}
