//! The admin API: bearer token, stats, pause/resume, drain, redrive.

use queue::JobStatus;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{spawn_app, spawn_app_with, TestResult, ADMIN_TOKEN, DEADLINE};

#[tokio::test]
async fn admin_routes_refuse_requests_without_the_right_token() -> TestResult {
    let app = spawn_app().await?;

    for (method, path) in [
        (Method::GET, "/admin/queue"),
        (Method::POST, "/admin/queue/pause"),
        (Method::POST, "/admin/queue/resume"),
        (Method::POST, "/admin/queue/drain"),
        (Method::POST, "/admin/queue/redrive"),
    ] {
        for token in [None, Some("wrong-token"), Some("")] {
            let response = app.admin(method.clone(), path, token).await?;
            assert_eq!(response.status(), 401, "{method} {path} with {token:?}");
            let body: Value = response.json().await?;
            assert!(body["error"].is_string());
        }
    }
    assert!(
        !app.queue.is_paused().await?,
        "a refused pause must not pause"
    );
    Ok(())
}

#[tokio::test]
async fn admin_routes_are_refused_when_no_token_is_configured() -> TestResult {
    let app = spawn_app_with(|settings| settings.admin_token = None).await?;

    let response = app
        .admin(Method::GET, "/admin/queue", Some(ADMIN_TOKEN))
        .await?;

    assert_eq!(response.status(), 401);
    Ok(())
}

#[tokio::test]
async fn queue_stats_show_paused_state_and_counts() -> TestResult {
    let app = spawn_app_with(|settings| settings.worker.concurrency = 0).await?;
    app.index_files(&[("a.rs", "fn a() {}"), ("b.rs", "fn b() {}")])
        .await?;

    let paused: Value = app
        .admin(Method::POST, "/admin/queue/pause", Some(ADMIN_TOKEN))
        .await?
        .json()
        .await?;
    let stats: Value = app
        .admin(Method::GET, "/admin/queue", Some(ADMIN_TOKEN))
        .await?
        .json()
        .await?;
    let resumed: Value = app
        .admin(Method::POST, "/admin/queue/resume", Some(ADMIN_TOKEN))
        .await?
        .json()
        .await?;

    assert_eq!(paused["paused"], true);
    assert_eq!(stats["paused"], true);
    assert_eq!(stats["by_status"]["pending"], 2);
    assert_eq!(stats["depth"], 2);
    assert_eq!(resumed["paused"], false);
    Ok(())
}

#[tokio::test]
async fn drain_waits_for_rows_in_flight_and_times_out_with_the_queue_state() -> TestResult {
    // Arrange: no workers in the app; a row claimed "elsewhere" is in flight.
    let app = spawn_app_with(|settings| settings.worker.concurrency = 0).await?;
    app.index_files(&[("a.rs", "fn a() {}")]).await?;
    let claimed = app.queue.claim(1, "another-process").await?;
    assert_eq!(claimed.len(), 1);

    // Act + Assert: in flight → 504 with the state.
    let response = app
        .admin(
            Method::POST,
            "/admin/queue/drain?timeout_ms=200",
            Some(ADMIN_TOKEN),
        )
        .await?;
    assert_eq!(response.status(), 504);
    let body: Value = response.json().await?;
    assert_eq!(body["drained"], false);
    assert_eq!(body["queue"]["in_flight"], 1);
    assert!(body["error"].is_string());

    // Once it is finished, drain answers 200.
    app.queue.complete(&claimed[0].lease()).await?;
    let response = app
        .admin(
            Method::POST,
            "/admin/queue/drain?timeout_ms=5000",
            Some(ADMIN_TOKEN),
        )
        .await?;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await?;
    assert_eq!(body["drained"], true);
    assert_eq!(body["queue"]["in_flight"], 0);
    Ok(())
}

#[tokio::test]
async fn drain_refuses_a_timeout_over_the_maximum() -> TestResult {
    let app = spawn_app().await?;

    let response = app
        .admin(
            Method::POST,
            "/admin/queue/drain?timeout_ms=999999999",
            Some(ADMIN_TOKEN),
        )
        .await?;

    assert_eq!(response.status(), 400);
    Ok(())
}

#[tokio::test]
async fn redrive_puts_dead_rows_back_to_work() -> TestResult {
    // Arrange: a file over the size limit dies at once.
    let app = spawn_app_with(|settings| settings.worker.max_file_bytes = 10).await?;
    let job_id = app
        .index_files(&[("src/big.rs", "fn big() { /* more than ten bytes */ }")])
        .await?;
    assert_eq!(app.wait_for_job(job_id).await?["status"], "failed");
    let dead = app.queue.list(JobStatus::Dead, 10).await?;
    assert_eq!(dead.len(), 1);

    // Act: redrive that id.
    let response = app
        .client
        .post(format!("{}/admin/queue/redrive", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "ids": [dead[0].id] }))
        .send()
        .await?;

    // Assert: it was redriven and worked again (failing again: two errors in its history).
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await?;
    assert_eq!(body["redriven"], json!([dead[0].id]));
    let row = harness::wait_for(DEADLINE, "the redriven row to die again", || async {
        let row = app.queue.get(dead[0].id).await?;
        Ok(row.filter(|r| {
            r.status == JobStatus::Dead && r.errors.as_array().map_or(0, Vec::len) == 2
        }))
    })
    .await?;
    assert_eq!(row.attempts, 1);

    // Redrive without a body takes every dead row.
    harness::wait_for(DEADLINE, "no row in flight", || async {
        Ok((app.rows_in(JobStatus::Processing).await? == 0).then_some(()))
    })
    .await?;
    let response = app
        .admin(Method::POST, "/admin/queue/redrive", Some(ADMIN_TOKEN))
        .await?;
    let body: Value = response.json().await?;
    assert_eq!(body["redriven"], json!([dead[0].id]));
    Ok(())
}
