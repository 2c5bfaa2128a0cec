//! The worker runtime: batched claims, heartbeats, panic guard, wake-ups, the queue's clock,
//! recording in the completion's transaction, and graceful shutdown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use queue::worker::{
    Handler, JobOutcome, JobReport, Outcome, Ran, RecordError, Worker, WorkerConfig,
};
use queue::{ClaimedJob, JobFailure, JobStatus, NewJob, QueueConfig, QueueWaker};
use serde_json::json;
use tokio::sync::watch;

use crate::helpers::{wait_until, TestQueue, TestResult};

fn config(concurrency: usize) -> WorkerConfig {
    WorkerConfig {
        concurrency,
        heartbeat_interval: Duration::from_millis(100),
        shutdown_timeout: Duration::from_secs(10),
        name: "worker-test".into(),
        ..WorkerConfig::default()
    }
}

/// Counts executions per job, claim statements, and the size of every non-empty claim.
#[derive(Default)]
struct Counting {
    runs: Mutex<HashMap<i64, usize>>,
    claims: Mutex<Vec<usize>>,
    claim_statements: AtomicUsize,
    /// While set, every job waits until it turns true before finishing.
    hold: Option<watch::Receiver<bool>>,
    running: AtomicUsize,
}

impl Counting {
    /// A handler whose jobs wait for the returned switch.
    fn holding() -> (Arc<Self>, watch::Sender<bool>) {
        let (release, hold) = watch::channel(false);
        let handler = Counting {
            hold: Some(hold),
            ..Counting::default()
        };
        (Arc::new(handler), release)
    }
}

impl Handler for Counting {
    type Output = ();

    async fn run(&self, job: ClaimedJob) -> Ran {
        *self.runs.lock().unwrap().entry(job.id).or_default() += 1;
        self.running.fetch_add(1, Ordering::SeqCst);
        if let Some(hold) = &self.hold {
            let _ = hold.clone().wait_for(|released| *released).await;
        }
        Ran::from(Ok(()))
    }

    fn claimed(&self, jobs: usize, _took: Duration) {
        self.claim_statements.fetch_add(1, Ordering::SeqCst);
        if jobs > 0 {
            self.claims.lock().unwrap().push(jobs);
        }
    }
}

#[tokio::test]
async fn a_started_worker_runs_every_job_exactly_once() -> TestResult {
    // Arrange
    let q = TestQueue::new(6).await?;
    let jobs: Vec<NewJob> = (0..60).map(|i| NewJob::new(json!({ "i": i }))).collect();
    let ids = q.enqueue_many(&jobs).await?;
    let waker = Arc::new(QueueWaker::start(&q.pool).await?);
    let handler = Arc::new(Counting::default());

    // Act
    let worker = Worker::with_shared(q.queue.clone(), handler.clone(), config(4)).start(waker);
    wait_until("every job to complete", || async {
        Ok(q.count_finished(&ids).await? == 60)
    })
    .await?;
    let report = worker.shutdown().await;

    // Assert
    let runs = handler.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 60);
    assert!(runs.values().all(|n| *n == 1), "{runs:?}");
    assert_eq!(q.stats().await?.count(JobStatus::Completed), 60);
    assert_eq!(report.released, 0);
    Ok(())
}

#[tokio::test]
async fn a_worker_claims_as_many_rows_as_it_has_free_slots_in_one_statement() -> TestResult {
    // Arrange: 8 slots and 8 ready rows; jobs hold until released.
    let q = TestQueue::new(6).await?;
    let jobs: Vec<NewJob> = std::iter::repeat_n(NewJob::new(json!({})), 8).collect();
    let ids = q.enqueue_many(&jobs).await?;
    let waker = Arc::new(QueueWaker::start(&q.pool).await?);
    let (handler, release) = Counting::holding();

    // Act
    let worker = Worker::with_shared(q.queue.clone(), handler.clone(), config(8)).start(waker);
    wait_until("eight jobs to run at once", || async {
        Ok(handler.running.load(Ordering::SeqCst) == 8)
    })
    .await?;
    let claims = handler.claims.lock().unwrap().clone();
    release.send(true)?;
    wait_until("the jobs to complete", || async {
        Ok(q.count_finished(&ids).await? == 8)
    })
    .await?;
    worker.shutdown().await;

    // Assert
    assert_eq!(claims, vec![8], "one claim of every free slot");
    Ok(())
}

#[tokio::test]
async fn a_panicking_handler_fails_its_attempt_and_the_worker_lives_on() -> TestResult {
    // Arrange
    let q = TestQueue::new(6).await?;
    let bad = q
        .enqueue(NewJob::new(json!({ "panic": true })).max_attempts(1))
        .await?;
    let waker = Arc::new(QueueWaker::start(&q.pool).await?);
    let handler = |job: ClaimedJob| async move {
        if job.payload["panic"] == true {
            panic!("boom in the handler");
        }
        Ok::<(), JobFailure>(())
    };

    // Act: the panicking job first, then one more on the same single-slot worker.
    let worker = Worker::new(q.queue.clone(), handler, config(1)).start(waker);
    wait_until("the panicked job to be dead", || async {
        Ok(q.count_finished(&[bad]).await? == 1)
    })
    .await?;
    let good = q.enqueue(NewJob::new(json!({ "panic": false }))).await?;
    wait_until("the next job to complete", || async {
        Ok(q.count_finished(&[good]).await? == 1)
    })
    .await?;
    worker.shutdown().await;

    // Assert
    let row = q.get(bad).await?.expect("row");
    assert_eq!(row.status, JobStatus::Dead);
    let error = row.last_error.unwrap_or_default();
    assert!(error.contains("panicked: boom in the handler"), "{error}");
    assert_eq!(
        q.get(good).await?.expect("row").status,
        JobStatus::Completed
    );
    Ok(())
}

#[tokio::test]
async fn heartbeats_keep_a_long_job_leased_beyond_its_first_lease() -> TestResult {
    // Arrange: a 2 s lease, heartbeats every 100 ms, a job that runs until told to stop.
    let q = TestQueue::new(6).await?;
    let queue = q.queue.clone().with_config(QueueConfig {
        lease: Duration::from_secs(2),
        ..QueueConfig::default()
    });
    let id = q.enqueue(NewJob::new(json!({}))).await?;
    let waker = Arc::new(QueueWaker::start(&q.pool).await?);
    let (handler, release) = Counting::holding();
    let worker = Worker::with_shared(queue, handler.clone(), config(1)).start(waker);
    wait_until("the job to run", || async {
        Ok(handler.running.load(Ordering::SeqCst) == 1)
    })
    .await?;
    let first: DateTime<Utc> = q
        .get(id)
        .await?
        .and_then(|r| r.locked_until)
        .expect("leased");

    // Act: wait until a heartbeat has moved the lease on.
    wait_until("a heartbeat to extend the lease", || async {
        let until = q.get(id).await?.and_then(|r| r.locked_until);
        Ok(until.is_some_and(|until| until > first))
    })
    .await?;
    release.send(true)?;
    wait_until("the job to complete", || async {
        Ok(q.count_finished(&[id]).await? == 1)
    })
    .await?;
    worker.shutdown().await;

    // Assert: completed on its first attempt, never rescued.
    let row = q.get(id).await?.expect("row");
    assert_eq!(row.status, JobStatus::Completed);
    assert_eq!(row.attempts, 1);
    Ok(())
}

#[tokio::test]
async fn shutdown_releases_the_jobs_that_do_not_finish_in_time() -> TestResult {
    // Arrange: two slots, one job that never finishes and one that does.
    let q = TestQueue::new(6).await?;
    let stuck = q.enqueue(NewJob::new(json!({ "stuck": true }))).await?;
    let quick = q.enqueue(NewJob::new(json!({ "stuck": false }))).await?;
    let waker = Arc::new(QueueWaker::start(&q.pool).await?);
    let handler = |job: ClaimedJob| async move {
        if job.payload["stuck"] == true {
            std::future::pending::<()>().await;
        }
        Ok::<(), JobFailure>(())
    };
    let worker = Worker::new(q.queue.clone(), handler, config(2)).start(waker);
    wait_until(
        "the quick job to complete and the stuck one to run",
        || async {
            let processing = q.get(stuck).await?.map(|r| r.status) == Some(JobStatus::Processing);
            Ok(processing && q.count_finished(&[quick]).await? == 1)
        },
    )
    .await?;

    // Act
    let report = worker.shutdown_within(Duration::from_millis(100)).await;

    // Assert: the stuck job is pending again, its attempt not counted.
    assert_eq!(report.released, 1);
    let row = q.get(stuck).await?.expect("row");
    assert_eq!(row.status, JobStatus::Pending);
    assert_eq!(row.attempts, 0);
    Ok(())
}

#[tokio::test]
async fn a_worker_that_stopped_claiming_takes_no_new_job() -> TestResult {
    // Arrange: an idle worker whose poll interval is an hour.
    let q = TestQueue::new(6).await?;
    let queue = q.queue.clone().with_config(QueueConfig {
        poll_interval: Duration::from_secs(3600),
        ..QueueConfig::default()
    });
    let waker = Arc::new(QueueWaker::start(&q.pool).await?);
    let worker = Worker::new(queue, |_job: ClaimedJob| async { Ok(()) }, config(2)).start(waker);

    // Act
    worker.stop_claiming();
    let id = q.enqueue(NewJob::new(json!({}))).await?;
    worker.shutdown().await;

    // Assert
    let row = q.get(id).await?.expect("row");
    assert_eq!((row.status, row.attempts), (JobStatus::Pending, 0));
    Ok(())
}

#[tokio::test]
async fn an_idle_worker_is_woken_by_notify_not_by_its_poll_interval() -> TestResult {
    // Arrange: an idle worker whose poll interval is an hour.
    let q = TestQueue::new(6).await?;
    let queue = q.queue.clone().with_config(QueueConfig {
        poll_interval: Duration::from_secs(3600),
        ..QueueConfig::default()
    });
    let waker = Arc::new(QueueWaker::start(&q.pool).await?);
    let handler = Arc::new(Counting::default());
    let worker = Worker::with_shared(queue, handler.clone(), config(2)).start(waker);
    wait_until("the worker's first (empty) claim", || async {
        Ok(handler.claim_statements.load(Ordering::SeqCst) > 0)
    })
    .await?;

    // Act
    let id = q.enqueue(NewJob::new(json!({}))).await?;

    // Assert: done within the wait, an hour before the next poll.
    wait_until("the job to complete", || async {
        Ok(q.count_finished(&[id]).await? == 1)
    })
    .await?;
    worker.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn run_once_honours_the_queues_clock_and_retries_until_dead_with_every_error() -> TestResult {
    // Arrange: a manual clock; a job due in a minute whose handler always fails.
    let (q, clock) = TestQueue::manual(QueueConfig::default()).await?;
    let later = clock.now() + chrono::Duration::seconds(60);
    let id = q
        .enqueue(NewJob::new(json!({})).run_at(later).max_attempts(3))
        .await?;
    let worker = Worker::new(
        q.queue.clone(),
        |_job: ClaimedJob| async { Err(JobFailure::transient("not today")) },
        config(2),
    );

    // Act and assert: nothing before its time...
    assert_eq!(worker.run_once().await?, Outcome::Idle);
    // ...then three attempts, each once the clock passed the backoff.
    clock.advance(Duration::from_secs(61));
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let Outcome::Processed(reports) = worker.run_once().await? else {
            panic!("nothing was ready after the backoff");
        };
        outcomes.push(reports[0].outcome);
        clock.advance(Duration::from_secs(3600));
    }
    assert!(
        matches!(outcomes[0], JobOutcome::Retrying { .. }),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[1], JobOutcome::Retrying { .. }),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[2], JobOutcome::Dead);
    let row = q.get(id).await?.expect("row");
    assert_eq!(row.errors.as_array().map(Vec::len), Some(3));
    Ok(())
}

/// Writes a row into `queue_tests_effects` in the transaction that finishes each job; a job
/// whose payload says so fails to record.
struct Recording;

impl Handler for Recording {
    type Output = String;
    const RECORDS: bool = true;

    async fn run(&self, job: ClaimedJob) -> Ran<String> {
        Ran {
            result: Ok(()),
            output: job.payload["note"].as_str().unwrap_or_default().to_owned(),
        }
    }

    async fn record(
        &self,
        tx: &mut sqlx::PgConnection,
        report: &JobReport,
        output: Option<&String>,
    ) -> Result<(), RecordError> {
        let note = output.cloned().unwrap_or_default();
        if note == "refuse" {
            return Err("the effect could not be written".into());
        }
        sqlx::query("INSERT INTO queue_tests_effects (job_id, note) VALUES ($1, $2)")
            .bind(report.id)
            .bind(note)
            .execute(tx)
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn a_recording_handler_commits_its_effect_with_the_completion_or_fails_the_attempt(
) -> TestResult {
    // Arrange
    let q = TestQueue::new(6).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS queue_tests_effects (job_id bigint PRIMARY KEY, note text)",
    )
    .execute(&q.pool)
    .await
    .or_else(|e| match e.as_database_error().and_then(|d| d.code()) {
        // Another test process created it at the same moment.
        Some(code) if code == "23505" || code == "42P07" => Ok(Default::default()),
        _ => Err(e),
    })?;
    let ok = q.enqueue(NewJob::new(json!({ "note": "written" }))).await?;
    let refused = q.enqueue(NewJob::new(json!({ "note": "refuse" }))).await?;
    let worker = Worker::new(q.queue.clone(), Recording, config(2));

    // Act
    let Outcome::Processed(reports) = worker.run_once().await? else {
        panic!("nothing ran");
    };

    // Assert: the refused record rolled its completion back and failed the attempt, with its
    // error; the other committed both.
    let refused_report = reports.iter().find(|r| r.id == refused).expect("a report");
    assert!(
        matches!(refused_report.outcome, JobOutcome::Retrying { .. }),
        "{refused_report:?}"
    );
    let effects: Vec<(i64, String)> =
        sqlx::query_as("SELECT job_id, note FROM queue_tests_effects WHERE job_id = ANY($1)")
            .bind([ok, refused])
            .fetch_all(&q.pool)
            .await?;
    assert_eq!(effects, vec![(ok, "written".to_owned())]);
    assert_eq!(q.get(ok).await?.expect("row").status, JobStatus::Completed);
    let row = q.get(refused).await?.expect("row");
    assert_eq!(row.status, JobStatus::Failed);
    assert!(
        row.last_error
            .unwrap_or_default()
            .contains("the effect could not be written"),
        "the record's error is on the row"
    );
    Ok(())
}
