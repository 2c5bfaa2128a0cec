//! Group commit of new jobs (`service::jobs::Intake`): concurrent requests share a transaction,
//! yet each is answered for its own job, and one job the database refuses fails alone.

use std::collections::HashSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use queue::NewJob;
use serde_json::json;
use service::jobs::{FileResult, JobKind, NewIndexJob};
use uuid::Uuid;

use crate::api::handlers::{call, state};
use harness::TestEnv;

use crate::support::TestResult;

#[tokio::test]
async fn concurrent_index_requests_each_get_their_job_and_rows() -> TestResult {
    let env = TestEnv::new().await?;
    // Arrange: 40 requests of three files; every fourth has a binary file (skipped at once).
    let state = state(&env, None).await?;
    let requests: Vec<_> = (0..40)
        .map(|i| {
            let third = if i % 4 == 0 {
                "bin\u{0}ary"
            } else {
                "fn c() {}"
            };
            json!({
                "project": "intake",
                "files": [
                    {"path": format!("r{i}/a.rs"), "content": "fn a() {}"},
                    {"path": format!("r{i}/b.rs"), "content": "fn b() {}"},
                    {"path": format!("r{i}/c.rs"), "content": third},
                ],
            })
        })
        .collect();

    // Act: all at once.
    let mut tasks = tokio::task::JoinSet::new();
    for (i, body) in requests.into_iter().enumerate() {
        let state = state.clone();
        tasks.spawn(async move {
            let request = Request::post("/index")
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))?;
            let (status, body) = call(state, request).await?;
            anyhow::ensure!(
                status == StatusCode::ACCEPTED,
                "request {i}: {status} {body}"
            );
            let id: Uuid = body["job_id"].as_str().unwrap_or_default().parse()?;
            anyhow::Ok((i, id))
        });
    }
    let mut jobs = Vec::new();
    while let Some(result) = tasks.join_next().await {
        jobs.push(result??);
    }

    // Assert: 40 distinct jobs, each with its own queue rows and skipped results.
    let ids: HashSet<Uuid> = jobs.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), 40);
    for (i, id) in &jobs {
        let (files_total, rows, skipped): (i32, i64, i64) = sqlx::query_as(
            "SELECT j.files_total,
                    (SELECT count(*) FROM queue_jobs q WHERE q.job_ref = j.id AND q.queue_id = $2),
                    (SELECT count(*) FROM index_job_files f WHERE f.job_id = j.id AND f.status = 'skipped')
             FROM index_jobs j WHERE j.id = $1",
        )
        .bind(id)
        .bind(state.queue.id().as_str())
        .fetch_one(&state.pool)
        .await?;
        let binary = i % 4 == 0;
        assert_eq!(files_total, 3, "job {i}");
        assert_eq!(rows, if binary { 2 } else { 3 }, "job {i}: queue rows");
        assert_eq!(skipped, i64::from(binary), "job {i}: skipped results");
    }
    env.finish().await?;
    Ok(())
}

#[tokio::test]
async fn a_job_the_database_refuses_fails_alone() -> TestResult {
    let env = TestEnv::new().await?;
    // Arrange: 20 good jobs and one whose project breaks the table's length check (the API
    // validates projects first; the intake itself must still keep the others apart).
    let state = state(&env, None).await?;
    let job = |project: String| NewIndexJob {
        id: Uuid::new_v4(),
        project,
        kind: JobKind::Files,
        files_total: 2,
        repository: None,
        git_ref: None,
        rows: vec![
            NewJob::new(json!({"path": "a.rs"})),
            NewJob::new(json!({"path": "b.rs"})),
        ],
        skipped: Vec::<FileResult>::new(),
    };
    let good: Vec<NewIndexJob> = (0..20).map(|_| job("intake".into())).collect();
    let bad = job("x".repeat(300));
    let (good_ids, bad_id): (Vec<Uuid>, Uuid) = (good.iter().map(|j| j.id).collect(), bad.id);

    // Act: all submitted at once, so some share a batch with the bad one.
    let mut tasks = tokio::task::JoinSet::new();
    for job in good.into_iter().chain(std::iter::once(bad)) {
        let intake = state.intake.clone();
        tasks.spawn(async move {
            let id = job.id;
            (id, intake.submit(job).await)
        });
    }
    let mut refused = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let (id, outcome) = result?;
        if outcome.is_err() {
            refused.push(id);
        }
    }

    // Assert: only the bad job was refused; every good one is stored with its rows.
    assert_eq!(refused, vec![bad_id]);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM index_jobs WHERE id = ANY($1)")
        .bind(&good_ids)
        .fetch_one(&state.pool)
        .await?;
    assert_eq!(stored, 20);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM queue_jobs WHERE queue_id = $1")
        .bind(state.queue.id().as_str())
        .fetch_one(&state.pool)
        .await?;
    assert_eq!(
        rows, 40,
        "the bad job's rows were written or a good job's lost"
    );
    env.finish().await?;
    Ok(())
}
