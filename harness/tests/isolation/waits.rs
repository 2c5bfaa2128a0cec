use std::time::Duration;

use harness::queue::JobFailure;
use harness::{HarnessError, TestEnv};
use serde_json::json;

use crate::helpers::{TestResult, DIM, WAIT};

#[tokio::test]
async fn a_wait_that_times_out_fails_with_the_queue_state() -> TestResult {
    let env = TestEnv::builder("wait_dump")
        .vector_size(DIM)
        .build()
        .await?;
    let id = env.enqueue(json!({ "doc": "never processed" })).await?;

    let err = env
        .wait_for_job(id, Duration::from_millis(200))
        .await
        .expect_err("no worker runs");

    let HarnessError::Timeout { dump, .. } = &err else {
        panic!("{err}")
    };
    assert!(dump.contains(&format!("pending #{id}")), "{dump}");
    assert!(dump.contains("rows by status"), "{dump}");
    env.finish().await?;
    Ok(())
}

#[tokio::test]
async fn wait_for_job_returns_the_finished_row_with_its_errors() -> TestResult {
    let env = TestEnv::builder("wait_dead")
        .vector_size(DIM)
        .build()
        .await?;
    let worker = env
        .spawn_worker(|_job| async { Err(JobFailure::permanent("bad document")) })
        .await?;
    let id = env.enqueue(json!({ "doc": "x" })).await?;

    let row = env.wait_for_job(id, WAIT).await?;

    assert_eq!(row.status, harness::queue::JobStatus::Dead);
    assert_eq!(row.last_error.as_deref(), Some("bad document"));
    worker.shutdown().await;
    env.wait_idle(WAIT).await?;
    env.finish().await?;
    Ok(())
}
