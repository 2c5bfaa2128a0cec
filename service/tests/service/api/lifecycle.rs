//! Graceful shutdown and restart: no row left in processing, expired leases rescued.

use std::time::Duration;

use queue::{JobStatus, NewJob};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::support::{spawn_app_with, TestResult, DEADLINE};

#[tokio::test]
async fn graceful_shutdown_leaves_no_row_in_processing() -> TestResult {
    // Arrange: no grace period, so work in flight at the stop is released, not finished.
    let mut app = spawn_app_with(|settings| {
        settings.server.shutdown_timeout_secs = 0;
        settings.worker.concurrency = 2;
    })
    .await?;
    let files: Vec<(String, String)> = (0..30)
        .map(|i| {
            (
                format!("src/f{i}.rs"),
                format!("/// Function number {i}.\npub fn f{i}() -> usize {{ {i} }}\n"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let job_id = app.index_files(&refs).await?;
    harness::wait_for(DEADLINE, "a row in flight", || async {
        Ok((app.rows_in(JobStatus::Processing).await? > 0).then_some(()))
    })
    .await?;

    // Act
    let report = app.stop().await?;

    // Assert
    let pool = app.env.pool().clone();
    let processing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM queue_jobs WHERE queue_id = $1 AND status = 'processing'",
    )
    .bind(app.queue.id().as_str())
    .fetch_one(&pool)
    .await?;
    assert_eq!(processing, 0, "{report:?}");
    // And the job finishes after a restart.
    app.restart(|settings| settings.server.shutdown_timeout_secs = 10)
        .await?;
    let job = app.wait_for_job(job_id).await?;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["files"]["done"], 30);
    Ok(())
}

#[tokio::test]
async fn a_restart_rescues_rows_whose_lease_expired() -> TestResult {
    // Arrange: a worker elsewhere claimed the row with a 1 s lease and died.
    let mut app = spawn_app_with(|settings| {
        settings.worker.concurrency = 0;
        settings.queue.lease_secs = 1;
    })
    .await?;
    let job_id = app
        .index_files(&[(
            "src/a.rs",
            "/// Adds.\npub fn add(a: i32, b: i32) -> i32 { a + b }\n",
        )])
        .await?;
    let claimed = app.queue.claim(1, "crashed-worker").await?;
    assert_eq!(claimed.len(), 1);
    harness::wait_for(DEADLINE, "the lease to expire", || async {
        let expired: bool =
            sqlx::query_scalar("SELECT locked_until < now() FROM queue_jobs WHERE id = $1")
                .bind(claimed[0].id)
                .fetch_one(&app.pool)
                .await?;
        Ok(expired.then_some(()))
    })
    .await?;

    // Act: restart with workers; they rescue expired leases on start.
    app.restart(|settings| settings.worker.concurrency = 3)
        .await?;

    // Assert
    let job: Value = app.wait_for_job(job_id).await?;
    assert_eq!(job["status"], "completed", "{job}");
    let row = app
        .queue
        .get(claimed[0].id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("row gone"))?;
    assert_eq!(row.status, JobStatus::Completed);
    assert!(
        row.errors.to_string().contains("lease_expired"),
        "{}",
        row.errors
    );
    Ok(())
}

#[tokio::test]
async fn workers_stop_claiming_as_soon_as_shutdown_begins() -> TestResult {
    // Arrange: a request whose body is still arriving holds the whole intake budget and keeps
    // the HTTP server draining once shutdown begins.
    let mut app = spawn_app_with(|settings| {
        settings.server.intake_max_bytes = 1024;
        settings.server.shutdown_timeout_secs = 10;
    })
    .await?;
    let body = json!({ "project": app.project, "files": [{ "path": "a.rs", "content": "x".repeat(2048) }] })
        .to_string();
    let mut held =
        tokio::net::TcpStream::connect(app.address.trim_start_matches("http://")).await?;
    let head = format!(
        "POST /index HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    held.write_all(head.as_bytes()).await?;
    held.write_all(&body.as_bytes()[..16]).await?;
    harness::wait_for(
        DEADLINE,
        "the held request to take the intake budget",
        || async {
            let other = app.index_files(&[("b.rs", "fn b() {}")]).await;
            Ok(other
                .err()
                .filter(|error| error.to_string().contains("503"))
                .map(|_| ()))
        },
    )
    .await?;

    // Act: shutdown begins while the request is in flight; then a row arrives.
    app.begin_shutdown();
    let row = app
        .queue
        .enqueue(NewJob::new(json!({ "kind": "late" })))
        .await?;
    // The window in which a claiming worker takes a new row (a notification wakes it within
    // milliseconds; it polls every 200 ms anyway).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let draining = app.is_serving();
    let during = app
        .queue
        .get(row)
        .await?
        .map(|job| (job.status, job.attempts));
    held.write_all(&body.as_bytes()[16..]).await?;
    app.stop().await?;

    // Assert
    assert!(draining, "the server had stopped before the row arrived");
    assert_eq!(during, Some((JobStatus::Pending, 0)));
    Ok(())
}
