use std::time::Duration;

use queue::{FailOutcome, JobFailure, JobStatus, NewJob, QueueConfig};
use serde_json::json;

use crate::helpers::{TestQueue, TestResult};

fn config() -> QueueConfig {
    QueueConfig {
        lease: Duration::from_secs(30),
        ..QueueConfig::default()
    }
}

#[tokio::test]
async fn an_expired_lease_is_rescued_and_the_old_owner_can_no_longer_finish() -> TestResult {
    // Arrange: owner A claims, then its lease runs out.
    let (q, clock) = TestQueue::manual(config()).await?;
    let id = q.enqueue(NewJob::new(json!("slow"))).await?;
    let old = q.claim(1, "a").await?.remove(0);
    clock.advance(Duration::from_secs(31));

    // Act: rescue, and owner B claims it.
    let rescued = q.rescue_expired().await?;
    let new = q.claim(1, "b").await?.remove(0);

    // Assert
    assert_eq!(rescued, vec![id]);
    assert_eq!(new.id, id);
    assert_eq!(new.attempts, 2, "the expired claim counts as an attempt");
    assert!(
        !q.complete(&old.lease()).await?,
        "old owner completed a row it lost"
    );
    assert_eq!(
        q.fail(&old.lease(), &JobFailure::transient("late")).await?,
        FailOutcome::LeaseLost
    );
    assert!(q.heartbeat(&old.lease()).await?.is_none());
    assert!(q.complete(&new.lease()).await?);
    let row = q.get(id).await?.expect("row");
    assert_eq!(row.status, JobStatus::Completed);
    assert_eq!(row.errors[0]["kind"], "lease_expired");
    Ok(())
}

#[tokio::test]
async fn a_heartbeat_keeps_a_lease_from_being_rescued() -> TestResult {
    let (q, clock) = TestQueue::manual(config()).await?;
    q.enqueue(NewJob::new(json!("long"))).await?;
    let job = q.claim(1, "a").await?.remove(0);

    clock.advance(Duration::from_secs(20));
    let until = q.heartbeat(&job.lease()).await?.expect("still owned");
    clock.advance(Duration::from_secs(20));

    assert_eq!(until, job.locked_until + chrono::Duration::seconds(20));
    assert!(q.rescue_expired().await?.is_empty());
    assert_eq!(q.heartbeat_many(&[job.lease()]).await?, vec![job.id]);
    assert!(q.complete(&job.lease()).await?);
    Ok(())
}

#[tokio::test]
async fn a_rescued_row_whose_attempts_are_used_up_goes_dead() -> TestResult {
    let (q, clock) = TestQueue::manual(config()).await?;
    let id = q.enqueue(NewJob::new(json!("x")).max_attempts(1)).await?;
    q.claim(1, "a").await?;
    clock.advance(Duration::from_secs(31));

    q.rescue_expired().await?;

    assert_eq!(q.get(id).await?.expect("row").status, JobStatus::Dead);
    assert!(q.claim(1, "b").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn rescue_touches_only_its_own_queue() -> TestResult {
    let (mut q, clock) = TestQueue::manual(config()).await?;
    let other = q
        .sibling()
        .with_clock(q.clock().clone())
        .with_config(config());
    other.enqueue(NewJob::new(json!("other"))).await?;
    other.claim(1, "o").await?;
    clock.advance(Duration::from_secs(31));

    assert!(q.rescue_expired().await?.is_empty());
    assert_eq!(other.stats().await?.count(JobStatus::Processing), 1);
    Ok(())
}

#[tokio::test]
async fn a_released_row_is_pending_again_without_spending_an_attempt() -> TestResult {
    let q = TestQueue::new(2).await?;
    let id = q.enqueue(NewJob::new(json!("x"))).await?;
    let job = q.claim(1, "a").await?.remove(0);

    assert!(q.release(&job.lease()).await?);

    let row = q.get(id).await?.expect("row");
    assert_eq!(
        (row.status, row.attempts, row.lease_token),
        (JobStatus::Pending, 0, None)
    );
    assert!(!q.complete(&job.lease()).await?);
    assert_eq!(q.claim(1, "b").await?[0].attempts, 1);
    Ok(())
}
