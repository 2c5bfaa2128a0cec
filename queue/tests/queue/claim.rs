use std::collections::HashSet;
use std::sync::Arc;

use queue::{JobStatus, NewJob};
use serde_json::json;
use tokio::sync::Mutex;

use crate::helpers::{TestQueue, TestResult};

#[tokio::test]
async fn twenty_concurrent_claimers_claim_every_row_exactly_once() -> TestResult {
    // Arrange
    let q = TestQueue::new(20).await?;
    let jobs: Vec<_> = (0..1000).map(|i| NewJob::new(json!({ "n": i }))).collect();
    let enqueued: HashSet<i64> = q.enqueue_many(&jobs).await?.into_iter().collect();
    let claimed = Arc::new(Mutex::new(Vec::new()));

    // Act: 20 claimers race with batch sizes 1..=10 until the queue is empty.
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..20u32 {
        let queue = q.queue.clone();
        let claimed = claimed.clone();
        tasks.spawn(async move {
            let name = format!("w{worker}");
            loop {
                let batch = queue.claim(worker % 10 + 1, &name).await?;
                if batch.is_empty() {
                    return anyhow::Ok(());
                }
                let leases: Vec<_> = batch.iter().map(|j| j.lease()).collect();
                let done = queue.complete_many(&leases).await?;
                anyhow::ensure!(done.len() == leases.len(), "a fresh lease was rejected");
                claimed.lock().await.extend(batch.iter().map(|j| j.id));
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }

    // Assert
    let claimed = claimed.lock().await;
    let unique: HashSet<i64> = claimed.iter().copied().collect();
    assert_eq!(claimed.len(), 1000, "some row was claimed twice or never");
    assert_eq!(unique, enqueued);
    let stats = q.stats().await?;
    assert_eq!(stats.count(JobStatus::Completed), 1000);
    assert_eq!(stats.depth(), 0);
    Ok(())
}

#[tokio::test]
async fn concurrent_complete_and_claim_loops_finish_every_row_exactly_once() -> TestResult {
    // Arrange
    let q = TestQueue::new(8).await?;
    let jobs: Vec<_> = (0..600).map(|i| NewJob::new(json!({ "n": i }))).collect();
    let enqueued: HashSet<i64> = q.enqueue_many(&jobs).await?.into_iter().collect();
    let finished = Arc::new(Mutex::new(Vec::new()));

    // Act: 6 consumers each complete their batch and claim the next in one call.
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..6u32 {
        let queue = q.queue.clone();
        let finished = finished.clone();
        tasks.spawn(async move {
            let name = format!("w{worker}");
            let mut batch = queue.claim(worker + 5, &name).await?;
            while !batch.is_empty() {
                let leases: Vec<_> = batch.iter().map(|j| j.lease()).collect();
                let (done, next) = queue.complete_and_claim(&leases, worker + 5, &name).await?;
                let mut expected: Vec<i64> = leases.iter().map(|l| l.id).collect();
                let mut done_sorted = done.clone();
                expected.sort_unstable();
                done_sorted.sort_unstable();
                anyhow::ensure!(done_sorted == expected, "a fresh lease was not completed");
                finished.lock().await.extend(done);
                batch = next;
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }

    // Assert
    let finished = finished.lock().await;
    let unique: HashSet<i64> = finished.iter().copied().collect();
    assert_eq!(finished.len(), 600, "some row was finished twice or never");
    assert_eq!(unique, enqueued);
    let stats = q.stats().await?;
    assert_eq!(stats.count(JobStatus::Completed), 600);
    assert_eq!(stats.depth(), 0);
    Ok(())
}

#[tokio::test]
async fn complete_and_claim_rejects_a_stale_lease_and_still_claims() -> TestResult {
    // Arrange: a claim whose lease is then replaced (released and claimed again).
    let q = TestQueue::new(2).await?;
    q.enqueue_many(&vec![NewJob::new(json!({})); 3]).await?;
    let first = q.claim(1, "old").await?;
    let stale = first[0].lease();
    assert!(q.release(&stale).await?);
    let again = q.claim(1, "new").await?;
    assert_eq!(again[0].id, stale.id);

    // Act: the old owner completes with its stale token and asks for two more.
    let (done, claimed) = q.complete_and_claim(&[stale], 2, "old").await?;

    // Assert: nothing completed, the other two rows claimed, the new owner's lease intact.
    assert!(done.is_empty(), "a stale lease completed a row");
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|j| j.id != stale.id));
    let (done, claimed) = q.complete_and_claim(&[again[0].lease()], 2, "new").await?;
    assert_eq!(done, vec![stale.id]);
    assert!(claimed.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_claimer_of_one_queue_never_receives_rows_of_another() -> TestResult {
    let mut q = TestQueue::new(4).await?;
    let other = q.sibling();
    let mine: HashSet<i64> = q
        .enqueue_many(&vec![NewJob::new(json!("a")); 30])
        .await?
        .into_iter()
        .collect();
    other
        .enqueue_many(&vec![NewJob::new(json!("b")); 30])
        .await?;

    let mut got = HashSet::new();
    loop {
        let batch = q.claim(7, "a").await?;
        if batch.is_empty() {
            break;
        }
        got.extend(batch.iter().map(|j| j.id));
    }

    assert_eq!(got, mine);
    assert_eq!(other.stats().await?.count(JobStatus::Pending), 30);
    Ok(())
}

#[tokio::test]
async fn rows_are_claimed_by_priority_then_age() -> TestResult {
    let q = TestQueue::new(2).await?;
    let low_old = q.enqueue(NewJob::new(json!("low-old")).priority(0)).await?;
    let high_old = q
        .enqueue(NewJob::new(json!("high-old")).priority(5))
        .await?;
    let low_new = q.enqueue(NewJob::new(json!("low-new")).priority(0)).await?;
    let high_new = q
        .enqueue(NewJob::new(json!("high-new")).priority(5))
        .await?;

    let first = q.claim(3, "w").await?;
    let second = q.claim(3, "w").await?;

    let order: Vec<i64> = first.iter().chain(&second).map(|j| j.id).collect();
    assert_eq!(order, vec![high_old, high_new, low_old, low_new]);
    Ok(())
}

#[tokio::test]
async fn rows_scheduled_for_later_are_not_claimed_before_their_time() -> TestResult {
    let q = TestQueue::new(2).await?;
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    q.enqueue(NewJob::new(json!("later")).run_at(later)).await?;
    let now_id = q.enqueue(NewJob::new(json!("now"))).await?;

    let claimed = q.claim(10, "w").await?;

    assert_eq!(
        claimed.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![now_id]
    );
    Ok(())
}

#[tokio::test]
async fn each_claimed_row_gets_its_own_lease_token_and_an_attempt() -> TestResult {
    let q = TestQueue::new(2).await?;
    q.enqueue_many(&vec![NewJob::new(json!(null)); 5]).await?;

    let claimed = q.claim(5, "w").await?;

    let tokens: HashSet<_> = claimed.iter().map(|j| j.lease_token).collect();
    assert_eq!(tokens.len(), 5);
    assert!(claimed.iter().all(|j| j.attempts == 1));
    for job in &claimed {
        let row = q.get(job.id).await?.expect("row exists");
        assert_eq!(row.status, JobStatus::Processing);
        assert_eq!(row.locked_by.as_deref(), Some("w"));
        assert_eq!(row.lease_token, Some(job.lease_token));
    }
    Ok(())
}
