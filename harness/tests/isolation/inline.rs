//! Inline execution and the manual clock: retries, dead letters and lease expiry without sleeping.

use std::time::Duration;

use harness::queue::{ClaimedJob, JobFailure, JobStatus, NewJob};
use harness::{HarnessError, JobOutcome, TestEnv};
use serde_json::json;

use crate::helpers::{TestResult, DIM, WAIT};

fn always_failing(_job: ClaimedJob) -> std::future::Ready<Result<(), JobFailure>> {
    std::future::ready(Err(JobFailure::transient("the mail server is down")))
}

#[tokio::test]
async fn drain_retries_a_failing_job_each_time_the_clock_passes_its_backoff_until_it_is_dead(
) -> TestResult {
    // Arrange
    let env = TestEnv::builder("drain_retries")
        .vector_size(DIM)
        .manual_clock()
        .build()
        .await?;
    let id = env
        .queue()
        .enqueue(NewJob::new(json!({ "to": "a@example.com" })).max_attempts(3))
        .await?;

    // Act: drain, and move the clock past the backoff between drains.
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let reports = env.drain(always_failing).await?;
        assert_eq!(reports.len(), 1, "exactly the one job ran: {reports:?}");
        outcomes.push(reports[0].outcome);
        assert!(
            env.drain(always_failing).await?.is_empty(),
            "ran before its backoff"
        );
        env.advance(Duration::from_secs(3600))?;
    }

    // Assert: retried, retried, dead, with three errors.
    assert!(
        matches!(outcomes[0], JobOutcome::Retrying { .. }),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[1], JobOutcome::Retrying { .. }),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[2], JobOutcome::Dead);
    let row = env.queue().get(id).await?.expect("row");
    assert_eq!(row.status, JobStatus::Dead);
    assert_eq!(
        row.errors.as_array().map(Vec::len),
        Some(3),
        "{}",
        row.errors
    );
    env.finish().await?;
    Ok(())
}

#[tokio::test]
async fn a_lease_that_expired_on_the_manual_clock_is_rescued_and_the_job_runs_again() -> TestResult
{
    // Arrange: a spawned worker whose first attempt hangs (a stuck worker).
    let env = TestEnv::builder("lease_rescued")
        .vector_size(DIM)
        .manual_clock()
        .build()
        .await?;
    let _worker = env
        .spawn_workers(
            |job: ClaimedJob| async move {
                if job.attempts == 1 {
                    std::future::pending::<()>().await;
                }
                Ok::<(), JobFailure>(())
            },
            2,
        )
        .await?;
    let id = env.enqueue(json!({ "stuck": "at first" })).await?;
    harness::wait_for(WAIT, "the first attempt to start", || async {
        let row = env.queue().get(id).await?;
        Ok(row.filter(|r| r.status == JobStatus::Processing).map(drop))
    })
    .await?;

    // Act: the lease runs out on the clock, and the rescuer runs.
    env.advance(env.queue().config().lease + Duration::from_secs(1))?;
    let rescued = env.rescue_expired().await?;

    // Assert: rescued, then completed by the second attempt, with the lost attempt on record.
    assert_eq!(rescued, vec![id]);
    let row = env.wait_for_job(id, WAIT).await?;
    assert_eq!((row.status, row.attempts), (JobStatus::Completed, 2));
    assert!(
        row.errors.to_string().contains("lease_expired"),
        "{}",
        row.errors
    );
    env.finish().await?;
    Ok(())
}

#[tokio::test]
async fn perform_runs_one_job_by_id_and_refuses_one_that_is_not_ready() -> TestResult {
    // Arrange
    let env = TestEnv::builder("perform_one")
        .vector_size(DIM)
        .manual_clock()
        .build()
        .await?;
    let first = env.enqueue(json!({ "n": 1 })).await?;
    let second = env.enqueue(json!({ "n": 2 })).await?;
    let later = env
        .queue()
        .enqueue(
            NewJob::new(json!({ "n": 3 })).run_at(chrono::Utc::now() + chrono::Duration::hours(1)),
        )
        .await?;
    let ok = |_job: ClaimedJob| async { Ok::<(), JobFailure>(()) };

    // Act
    let report = env.perform(second, ok).await?;
    let refused = env.perform(later, ok).await;

    // Assert
    assert_eq!((report.id, report.outcome), (second, JobOutcome::Completed));
    assert_eq!(
        env.queue().get(first).await?.expect("row").status,
        JobStatus::Pending
    );
    assert!(
        matches!(&refused, Err(HarnessError::Assertion(m)) if m.contains("not ready")),
        "{refused:?}"
    );
    env.finish().await?;
    Ok(())
}
