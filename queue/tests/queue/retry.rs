use std::time::Duration;

use queue::{FailOutcome, JobFailure, JobStatus, NewJob, QueueConfig, RetryPolicy};
use serde_json::json;

use crate::helpers::{TestQueue, TestResult};

fn config() -> QueueConfig {
    QueueConfig {
        lease: Duration::from_secs(30),
        retry: RetryPolicy {
            base: Duration::from_secs(10),
            factor: 2.0,
            max: Duration::from_secs(3600),
            jitter: 0.5,
        },
        poll_interval: Duration::from_secs(5),
        ..QueueConfig::default()
    }
}

#[tokio::test]
async fn transient_failures_retry_on_the_backoff_schedule_then_go_dead_with_every_error(
) -> TestResult {
    let (q, clock) = TestQueue::manual(config()).await?;
    let policy = q.config().retry.clone();
    let id = q
        .enqueue(NewJob::new(json!("flaky")).max_attempts(3))
        .await?;

    for attempt in 1..=3 {
        let claimed = q.claim(1, "w").await?;
        assert_eq!(claimed.len(), 1, "attempt {attempt} was not claimable");
        assert_eq!(claimed[0].attempts, attempt);
        let failed_at = clock.now();

        let outcome = q
            .fail(
                &claimed[0].lease(),
                &JobFailure::transient(format!("boom {attempt}")),
            )
            .await?;

        if attempt < 3 {
            let FailOutcome::Retrying { run_at } = outcome else {
                panic!("attempt {attempt}: expected a retry, got {outcome:?}");
            };
            let (low, high) = policy.delay_bounds(attempt);
            let waited = (run_at - failed_at).to_std()?;
            assert!(
                waited >= low && waited <= high,
                "attempt {attempt}: waited {waited:?}, policy says {low:?}..={high:?}"
            );
            assert_eq!(q.get(id).await?.expect("row").status, JobStatus::Failed);
            // Not claimable before its time...
            clock.advance(low - Duration::from_millis(1));
            assert!(q.claim(1, "w").await?.is_empty(), "claimed before run_at");
            // ...and claimable once it has come.
            clock.advance(high - low + Duration::from_millis(2));
        } else {
            assert_eq!(outcome, FailOutcome::Dead);
        }
    }

    let row = q.get(id).await?.expect("row");
    assert_eq!(row.status, JobStatus::Dead);
    assert_eq!(row.attempts, 3);
    assert_eq!(row.last_error.as_deref(), Some("boom 3"));
    let errors: Vec<&str> = row
        .errors
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["error"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(errors, ["boom 1", "boom 2", "boom 3"]);
    assert!(row.finished_at.is_some());
    Ok(())
}

#[tokio::test]
async fn a_permanent_failure_is_dead_after_one_attempt_and_redrive_brings_it_back() -> TestResult {
    let (q, _clock) = TestQueue::manual(config()).await?;
    let id = q
        .enqueue(NewJob::new(json!("bad input")).max_attempts(5))
        .await?;
    let claimed = q.claim(1, "w").await?;

    let outcome = q
        .fail(&claimed[0].lease(), &JobFailure::permanent("cannot parse"))
        .await?;

    assert_eq!(outcome, FailOutcome::Dead);
    let row = q.get(id).await?.expect("row");
    assert_eq!((row.status, row.attempts), (JobStatus::Dead, 1));
    assert_eq!(row.errors[0]["kind"], "permanent");

    // Redrive: claimable again with fresh attempts, history kept.
    assert_eq!(q.redrive_all().await?, vec![id]);
    let again = q.claim(1, "w").await?;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(
        q.get(id)
            .await?
            .expect("row")
            .errors
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    Ok(())
}

#[tokio::test]
async fn redrive_by_id_requeues_only_the_named_dead_rows() -> TestResult {
    let mut q = TestQueue::new(2).await?;
    let other = q.sibling();
    let ids = q
        .enqueue_many(&vec![NewJob::new(json!(0)).max_attempts(1); 3])
        .await?;
    for job in q.claim(3, "w").await? {
        q.fail(&job.lease(), &JobFailure::transient("x")).await?;
    }
    let foreign = other.enqueue(NewJob::new(json!(0)).max_attempts(1)).await?;
    let job = other.claim(1, "w").await?;
    other
        .fail(&job[0].lease(), &JobFailure::permanent("x"))
        .await?;

    // A foreign queue's dead row is not redriven through this queue, even by id.
    let redriven = q.redrive_ids(&[ids[1], foreign]).await?;

    assert_eq!(redriven, vec![ids[1]]);
    let stats = q.stats().await?;
    assert_eq!(
        (
            stats.count(JobStatus::Dead),
            stats.count(JobStatus::Pending)
        ),
        (2, 1)
    );
    assert_eq!(
        other.get(foreign).await?.expect("row").status,
        JobStatus::Dead
    );
    Ok(())
}

#[test]
fn backoff_grows_exponentially_up_to_the_cap_and_jitter_stays_in_bounds() {
    let policy = RetryPolicy {
        base: Duration::from_secs(1),
        factor: 2.0,
        max: Duration::from_secs(60),
        jitter: 0.25,
    };
    assert_eq!(policy.base_delay(1), Duration::from_secs(1));
    assert_eq!(policy.base_delay(4), Duration::from_secs(8));
    assert_eq!(policy.base_delay(30), Duration::from_secs(60));
    for attempt in 1..10 {
        let (low, high) = policy.delay_bounds(attempt);
        for _ in 0..100 {
            let d = policy.delay(attempt);
            assert!(d >= low && d <= high);
        }
    }
}
