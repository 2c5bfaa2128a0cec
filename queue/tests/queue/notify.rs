use std::time::Duration;

use queue::{NewJob, QueueWaker, WakeReason};
use serde_json::json;

use crate::helpers::{TestQueue, TestResult};

#[tokio::test]
async fn an_idle_claimer_is_woken_by_notify_long_before_its_poll_interval() -> TestResult {
    // Arrange: an idle claimer whose poll interval is an hour, so only NOTIFY can wake it.
    let mut q = TestQueue::new(3).await?;
    let waker = QueueWaker::start(&q.pool).await?;
    let mut subscription = waker.subscribe(q.id());
    let mut unrelated = waker.subscribe(&q.sibling().id().clone());
    subscription.mark_seen();
    unrelated.mark_seen();
    assert!(q.claim(1, "w").await?.is_empty());
    let idle = tokio::spawn(async move { subscription.wait(Duration::from_secs(3600)).await });

    // Act
    let id = q.enqueue(NewJob::new(json!("wake up"))).await?;

    // Assert: woken by a notification (the outer timeout only keeps a broken build from hanging).
    let reason = tokio::time::timeout(Duration::from_secs(60), idle).await??;
    assert_eq!(reason, WakeReason::Notified);
    assert_eq!(q.claim(1, "w").await?[0].id, id);
    // A queue with no new rows was not woken.
    assert_eq!(
        unrelated.wait(Duration::from_millis(200)).await,
        WakeReason::Poll
    );
    Ok(())
}

#[tokio::test]
async fn a_notification_sent_before_waiting_is_not_lost() -> TestResult {
    let q = TestQueue::new(3).await?;
    let waker = QueueWaker::start(&q.pool).await?;
    let mut subscription = waker.subscribe(q.id());
    subscription.mark_seen();

    q.resume().await?; // resume notifies, like an insert
                       // Seen whether it lands before the wait starts or during it.
    let reason = tokio::time::timeout(
        Duration::from_secs(60),
        subscription.wait(Duration::from_secs(3600)),
    )
    .await?;

    assert_eq!(reason, WakeReason::Notified);
    Ok(())
}
