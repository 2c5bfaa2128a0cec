//! Maintenance services: on tasks of their own, one process at a time.

use std::time::Duration;

use queue::maintenance::{Maintenance, MaintenanceConfig, Rescuer};
use queue::{JobStatus, NewJob, QueueConfig};
use serde_json::json;

use crate::helpers::{wait_until, TestQueue, TestResult};

#[tokio::test]
async fn the_rescuer_skips_its_turn_while_another_process_rescues_the_same_queue() -> TestResult {
    // Arrange: a row whose lease ran out, and another process holding this queue's rescue lock.
    let (q, clock) = TestQueue::manual(QueueConfig::default()).await?;
    let id = q.enqueue(NewJob::new(json!({}))).await?;
    q.claim(1, "crashed").await?;
    clock.advance(Duration::from_secs(31));
    let mut other = q.pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
        .bind(format!("queue-rescue:{}", q.id()))
        .execute(&mut *other)
        .await?;
    let rescuer = Rescuer::new(q.queue.clone());

    // Act and assert: skipped while the other holds the lock...
    assert_eq!(rescuer.run_once().await?, None);
    assert_eq!(q.get(id).await?.expect("row").status, JobStatus::Processing);
    sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
        .bind(format!("queue-rescue:{}", q.id()))
        .execute(&mut *other)
        .await?;
    // ...and rescued once it is free.
    assert_eq!(rescuer.run_once().await?, Some(vec![id]));
    assert_eq!(q.get(id).await?.expect("row").status, JobStatus::Pending);
    Ok(())
}

#[tokio::test]
async fn started_maintenance_rescues_a_crashed_workers_row_on_its_own_task() -> TestResult {
    // Arrange: a worker claimed the row and died; the queue's clock is past its lease.
    let (q, clock) = TestQueue::manual(QueueConfig::default()).await?;
    let id = q.enqueue(NewJob::new(json!({}))).await?;
    q.claim(1, "crashed").await?;
    clock.advance(Duration::from_secs(31));

    // Act
    let maintenance = Maintenance::new(
        q.queue.clone(),
        MaintenanceConfig {
            rescue_interval: Some(Duration::from_millis(50)),
            vacuum_interval: None,
            prune_interval: None,
            ..MaintenanceConfig::default()
        },
    )
    .start();
    wait_until("the row to be rescued", || async {
        Ok(q.get(id).await?.map(|r| r.status) == Some(JobStatus::Pending))
    })
    .await?;
    maintenance.stop().await;

    // Assert: the lost attempt is on record.
    let row = q.get(id).await?.expect("row");
    assert!(
        row.errors.to_string().contains("lease_expired"),
        "{}",
        row.errors
    );
    Ok(())
}
