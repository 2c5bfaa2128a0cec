use queue::{JobStatus, NewJob, Queue};
use serde_json::json;

use crate::helpers::{pool, TestQueue, TestResult};

#[tokio::test]
async fn a_paused_queue_hands_out_nothing_until_resumed_from_another_connection() -> TestResult {
    let q = TestQueue::new(2).await?;
    q.enqueue_many(&vec![NewJob::new(json!(1)); 3]).await?;
    // Another process's view of the same queue: its own pool, its own connections.
    let (other_pool, _) = pool(1).await?;
    let other = Queue::new(other_pool, q.id().clone());

    q.pause().await?;
    assert!(
        other.is_paused().await?,
        "pause is not visible to another connection"
    );
    assert!(
        other.claim(10, "w").await?.is_empty(),
        "paused queue handed out a row"
    );
    assert!(q.claim(10, "w").await?.is_empty());

    other.resume().await?;
    assert!(!q.is_paused().await?);
    assert_eq!(q.claim(10, "w").await?.len(), 3);
    Ok(())
}

#[tokio::test]
async fn pausing_one_queue_leaves_the_others_running() -> TestResult {
    let mut q = TestQueue::new(2).await?;
    let other = q.sibling();
    other.enqueue(NewJob::new(json!(1))).await?;

    q.pause().await?;

    assert_eq!(other.claim(1, "w").await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn stats_count_rows_by_status() -> TestResult {
    let q = TestQueue::new(2).await?;
    q.enqueue_many(&vec![NewJob::new(json!(1)); 4]).await?;
    let claimed = q.claim(2, "w").await?;
    q.complete(&claimed[0].lease()).await?;

    let stats = q.stats().await?;

    assert_eq!(stats.count(JobStatus::Pending), 2);
    assert_eq!(stats.count(JobStatus::Processing), 1);
    assert_eq!(stats.count(JobStatus::Completed), 1);
    assert_eq!(stats.depth(), 3);
    assert!(!stats.paused);
    assert_eq!(q.purge().await?, 4);
    assert_eq!(q.stats().await?.depth(), 0);
    Ok(())
}
