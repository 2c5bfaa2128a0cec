//! Retention: the pruner deletes finished rows by age and count, per queue; completion drops the
//! payload keys the owner names.

use std::time::Duration;

use queue::maintenance::{Pruned, Pruner, Retention};
use queue::{JobFailure, JobStatus, NewJob, QueueConfig};
use serde_json::json;

use crate::helpers::{TestQueue, TestResult};

const HOUR: Duration = Duration::from_secs(3600);

/// Enqueues `n` jobs and completes them all.
async fn completed(q: &TestQueue, n: usize) -> anyhow::Result<()> {
    q.enqueue_many(&vec![NewJob::new(json!({ "doc": "x" })); n])
        .await?;
    let leases: Vec<_> = q
        .claim(u32::try_from(n)?, "w")
        .await?
        .iter()
        .map(|job| job.lease())
        .collect();
    assert_eq!(q.complete_many(&leases).await?.len(), n);
    Ok(())
}

#[tokio::test]
async fn finished_rows_are_pruned_by_age_and_rows_in_flight_never() -> TestResult {
    // Arrange: 1,500 completed rows (more than one batch), one dead, one pending, one in flight.
    let (q, clock) = TestQueue::manual(QueueConfig::default()).await?;
    completed(&q, 1500).await?;
    let dead = q.enqueue(NewJob::new(json!({ "doc": "bad" }))).await?;
    let claimed = q.claim(1, "w").await?;
    q.fail(&claimed[0].lease(), &JobFailure::permanent("broken input"))
        .await?;
    let pending = q.enqueue(NewJob::new(json!({}))).await?;
    let in_flight = q.enqueue(NewJob::new(json!({}))).await?;
    q.claim_ids(&[in_flight], "w").await?;
    let pruner = Pruner::new(q.queue.clone(), Retention::default());

    // Act and assert: nothing is old enough yet.
    assert_eq!(
        pruner.run_once().await?,
        Some(Pruned {
            completed: 0,
            dead: 0
        })
    );
    // A day later the completed rows go; the dead row stays, with its error.
    clock.advance(25 * HOUR);
    assert_eq!(
        pruner.run_once().await?,
        Some(Pruned {
            completed: 1500,
            dead: 0
        })
    );
    let kept = q.get(dead).await?.expect("the dead row is kept");
    assert!(kept.errors.to_string().contains("broken input"));
    // A week later the dead row goes too; pending and in-flight rows stay whatever their age.
    clock.advance(7 * 24 * HOUR);
    assert_eq!(pruner.run_once().await?.map(|p| p.dead), Some(1));
    let stats = q.stats().await?;
    assert_eq!(stats.count(JobStatus::Completed), 0);
    assert_eq!(stats.count(JobStatus::Dead), 0);
    assert_eq!(
        q.get(pending).await?.map(|r| r.status),
        Some(JobStatus::Pending)
    );
    assert_eq!(
        q.get(in_flight).await?.map(|r| r.status),
        Some(JobStatus::Processing)
    );
    Ok(())
}

#[tokio::test]
async fn a_count_keeps_the_newest_completed_rows_and_other_queues_are_untouched() -> TestResult {
    // Arrange: 10 completed rows here, 5 in another queue on the same table.
    let (q, clock) = TestQueue::manual(QueueConfig::default()).await?;
    completed(&q, 4).await?;
    clock.advance(Duration::from_secs(1));
    completed(&q, 6).await?;
    let other = TestQueue::new(2).await?;
    completed(&other, 5).await?;
    let before: Vec<_> = q
        .list(JobStatus::Completed, 100)
        .await?
        .iter()
        .map(|r| r.id)
        .collect();
    let retention = Retention {
        completed_keep: Some(6),
        ..Retention::default()
    };

    // Act
    let pruned = Pruner::new(q.queue.clone(), retention).run_once().await?;

    // Assert: the 4 older rows went, the 6 newest stayed.
    assert_eq!(pruned.map(|p| p.completed), Some(4));
    let left: Vec<_> = q
        .list(JobStatus::Completed, 100)
        .await?
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, before[4..]);
    assert_eq!(other.stats().await?.count(JobStatus::Completed), 5);
    Ok(())
}

#[tokio::test]
async fn completion_drops_the_named_payload_keys_and_a_dead_row_keeps_its_payload() -> TestResult {
    // Arrange: a queue whose owner drops `content` at completion.
    let q = TestQueue::new(2).await?;
    let queue = q.queue.clone().with_config(QueueConfig {
        drop_on_complete: vec!["content".into()],
        ..QueueConfig::default()
    });
    let payload = json!({ "path": "a.rs", "content": "x".repeat(10_000) });
    let ids = queue
        .enqueue_many(&vec![NewJob::new(payload.clone()); 3])
        .await?;

    // Act: one completed alone, one in the batched complete-and-claim, one dead.
    let first = queue.claim_ids(&ids[..1], "w").await?;
    queue.complete(&first[0].lease()).await?;
    let second = queue.claim_ids(&ids[1..2], "w").await?;
    queue
        .complete_and_claim(&[second[0].lease()], 0, "w")
        .await?;
    let third = queue.claim_ids(&ids[2..], "w").await?;
    queue
        .fail(&third[0].lease(), &JobFailure::permanent("no"))
        .await?;

    // Assert
    for id in &ids[..2] {
        let row = queue.get(*id).await?.expect("row");
        assert_eq!(row.status, JobStatus::Completed);
        assert_eq!(row.payload, json!({ "path": "a.rs" }));
    }
    let dead = queue.get(ids[2]).await?.expect("row");
    assert_eq!(dead.status, JobStatus::Dead);
    assert_eq!(dead.payload, payload);
    Ok(())
}
