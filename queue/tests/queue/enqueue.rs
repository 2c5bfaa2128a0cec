use queue::{JobStatus, NewJob, QueueError, QueueId};
use serde_json::json;

use crate::helpers::{TestQueue, TestResult};

#[tokio::test]
async fn enqueue_many_returns_ids_in_input_order_and_stores_each_payload() -> TestResult {
    let q = TestQueue::new(2).await?;
    let jobs: Vec<_> = (0..50).map(|i| NewJob::new(json!({ "n": i }))).collect();

    let ids = q.enqueue_many(&jobs).await?;

    assert_eq!(ids.len(), 50);
    for (i, id) in ids.iter().enumerate() {
        let row = q.get(*id).await?.expect("row exists");
        assert_eq!(row.payload, json!({ "n": i }));
        assert_eq!(row.status, JobStatus::Pending);
        assert_eq!(row.queue_id, q.id().as_str());
    }
    assert_eq!(q.stats().await?.count(JobStatus::Pending), 50);
    Ok(())
}

#[tokio::test]
async fn a_job_without_attempts_is_refused_and_nothing_is_written() -> TestResult {
    let q = TestQueue::new(2).await?;
    let jobs = [NewJob::new(json!(1)), NewJob::new(json!(2)).max_attempts(0)];

    let err = q
        .enqueue_many(&jobs)
        .await
        .expect_err("max_attempts 0 is refused");

    assert!(matches!(err, QueueError::InvalidJob(_)), "{err}");
    assert_eq!(q.stats().await?.depth(), 0);
    Ok(())
}

#[test]
fn queue_ids_outside_the_allowed_alphabet_are_refused() {
    for bad in ["", "has space", "semi;colon", "quote'", &"x".repeat(201)] {
        assert!(QueueId::new(bad).is_err(), "{bad:?} accepted");
    }
    for good in ["a", "t_run-1:slot.0", &"x".repeat(200)] {
        assert!(QueueId::new(good).is_ok(), "{good:?} refused");
    }
}
