//! Bounded intake (a byte budget answered with 503 + Retry-After; group commit split by bytes),
//! the optional API token, and 503 for a database that restarts.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use harness::TestEnv;
use queue::NewJob;
use serde_json::{json, Value};
use service::api::{router, AppState};
use service::jobs::{Intake, JobKind, NewIndexJob};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;
use uuid::Uuid;

use crate::api::handlers::{call, state};
use crate::support::{spawn_app_with, TestApp, TestResult, DEADLINE};

/// A `POST /index` body of about `bytes` bytes; `valid: false` names an invalid project, so it
/// is refused (400) without writing anything if it gets through.
fn index_body(project: &str, bytes: usize, valid: bool) -> String {
    let project = if valid {
        project
    } else {
        "not a valid project!"
    };
    json!({
        "project": project,
        "files": [{ "path": "src/big.rs", "content": "x".repeat(bytes) }],
    })
    .to_string()
}

async fn post_raw(app: &TestApp, body: String) -> anyhow::Result<reqwest::Response> {
    Ok(app
        .client
        .post(format!("{}/index", app.address))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?)
}

async fn jobs_of(app: &TestApp) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM index_jobs WHERE queue_id = $1")
            .bind(app.queue.id().as_str())
            .fetch_one(&app.pool)
            .await?,
    )
}

#[tokio::test]
async fn over_the_intake_budget_a_request_gets_503_with_retry_after_and_writes_nothing(
) -> TestResult {
    // Arrange: a 100 KiB budget; one 60 KB request whose body arrives slowly holds its share.
    let app = spawn_app_with(|settings| {
        settings.server.intake_max_bytes = 100 * 1024;
        settings.worker.concurrency = 0;
    })
    .await?;
    let slow_body = index_body(&app.project, 60_000, true);
    let port = app.address.rsplit(':').next().unwrap_or_default();
    let mut slow = TcpStream::connect(format!("127.0.0.1:{port}")).await?;
    let head = format!(
        "POST /index HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        slow_body.len()
    );
    slow.write_all(head.as_bytes()).await?;
    let (first_half, second_half) = slow_body.split_at(slow_body.len() / 2);
    slow.write_all(first_half.as_bytes()).await?;
    // An invalid 50 KB request fits only once the slow one has let go: until then it is 503.
    harness::wait_for(DEADLINE, "the slow request to hold its share", || async {
        let probe = post_raw(&app, index_body(&app.project, 50_000, false)).await?;
        Ok((probe.status() == StatusCode::SERVICE_UNAVAILABLE).then_some(()))
    })
    .await?;

    // Act
    let refused = post_raw(&app, index_body(&app.project, 50_000, true)).await?;

    // Assert: 503 with Retry-After, nothing written.
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = refused.json().await?;
    assert!(
        body["error"].as_str().unwrap_or("").contains("retry"),
        "{body}"
    );
    assert_eq!(jobs_of(&app).await?, 0);

    // And once the slow request is done, the same request goes through.
    slow.write_all(second_half.as_bytes()).await?;
    let mut answer = [0u8; 12];
    slow.read_exact(&mut answer).await?;
    assert_eq!(&answer, b"HTTP/1.1 202");
    let accepted = post_raw(&app, index_body(&app.project, 50_000, true)).await?;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    assert_eq!(jobs_of(&app).await?, 2);
    Ok(())
}

fn job_with_rows(rows: Vec<NewJob>) -> NewIndexJob {
    let id = Uuid::new_v4();
    let rows: Vec<NewJob> = rows.into_iter().map(|row| row.job_ref(id)).collect();
    NewIndexJob {
        id,
        project: "intake".into(),
        kind: JobKind::Files,
        files_total: i32::try_from(rows.len()).unwrap_or(i32::MAX),
        repository: None,
        git_ref: None,
        rows,
        skipped: Vec::new(),
    }
}

#[tokio::test]
async fn a_job_over_the_statement_cap_is_written_whole_or_not_at_all() -> TestResult {
    // Arrange: a 4 KiB cap per statement; jobs of 50 rows of 1 KiB.
    let env = TestEnv::new().await?;
    service::db::migrate(env.pool()).await?;
    let intake =
        Intake::new(env.pool().clone(), env.queue().clone()).with_max_statement_bytes(4096);
    let row =
        |i: usize| NewJob::new(json!({"path": format!("f{i}.rs"), "content": "y".repeat(1024)}));
    let good = job_with_rows((0..50).map(row).collect());
    // The last row is refused by the queue, after earlier statements went through.
    let mut bad_rows: Vec<NewJob> = (0..50).map(row).collect();
    bad_rows.push(row(50).max_attempts(0));
    let bad = job_with_rows(bad_rows);
    let (good_id, bad_id) = (good.id, bad.id);

    // Act
    intake.submit(good).await?;
    let refused = intake.submit(bad).await;

    // Assert
    assert!(refused.is_err());
    let pool = env.pool().clone();
    let rows = |id: Uuid| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM queue_jobs WHERE job_ref = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
        }
    };
    assert_eq!(rows(good_id).await?, 50);
    assert_eq!(rows(bad_id).await?, 0, "a refused job was half-written");
    let bad_job: i64 = sqlx::query_scalar("SELECT count(*) FROM index_jobs WHERE id = $1")
        .bind(bad_id)
        .fetch_one(env.pool())
        .await?;
    assert_eq!(bad_job, 0);
    env.finish().await?;
    Ok(())
}

#[tokio::test]
async fn the_api_token_guards_the_data_endpoints_only_when_set() -> TestResult {
    let env = TestEnv::new().await?;
    let open = state(&env, None).await?;
    let guarded = open.clone().with_api_token(Some("data-token".into()));
    let search = "/search?project=p&q=json";
    let job = format!("/jobs/{}", Uuid::new_v4());
    let index = || {
        Request::post("/index")
            .header("content-type", "application/json")
            .body(Body::from(index_body("p", 10, true)))
    };

    // Without a token configured, nothing asks for one.
    let (status, _) = call(open, Request::get(job.as_str()).body(Body::empty())?).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // With one, data endpoints refuse requests without it (writing nothing)...
    for request in [
        Request::get(search).body(Body::empty())?,
        Request::get(job.as_str()).body(Body::empty())?,
        Request::delete("/projects/p").body(Body::empty())?,
        index()?,
        Request::get(job.as_str())
            .header("authorization", "Bearer wrong")
            .body(Body::empty())?,
    ] {
        let path = request.uri().to_string();
        let response = router(guarded.clone()).oneshot(request).await?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .map(|v| v.as_bytes()),
            Some(&b"Bearer"[..])
        );
    }
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM index_jobs WHERE queue_id = $1")
        .bind(env.queue().id().as_str())
        .fetch_one(env.pool())
        .await?;
    assert_eq!(written, 0);
    // ...and serve requests with it.
    let with_token = Request::get(job.as_str())
        .header("authorization", "Bearer data-token")
        .body(Body::empty())?;
    let (status, _) = call(guarded.clone(), with_token).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Health and the documents stay open.
    for path in ["/healthz", "/metrics", "/openapi.json"] {
        let request = Request::get(path).body(Body::empty())?;
        let response = router(guarded.clone()).oneshot(request).await?;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    env.finish().await?;
    Ok(())
}

#[tokio::test]
async fn a_database_that_restarts_answers_503_with_a_clear_message() -> TestResult {
    // Arrange: handlers over a one-connection pool whose backend the server then terminates
    // (SQLSTATE 57P01, what a restart sends), with no liveness check before its next use.
    let env = TestEnv::new().await?;
    let base = state(&env, None).await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect(env.database_url())
        .await?;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&pool)
        .await?;
    // Released connections are pinged on their way back to the pool: wait until it is idle
    // there, so the request below gets it, terminated.
    harness::wait_until(DEADLINE, "the connection back in the pool", || async {
        Ok(pool.num_idle() == 1)
    })
    .await?;
    let state = AppState::new(pool, base.queue.clone(), Arc::clone(&base.indexer), None);
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(env.pool())
        .await?;
    assert!(terminated);
    harness::wait_for(DEADLINE, "the backend to be gone", || async {
        let alive: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
                .bind(pid)
                .fetch_one(env.pool())
                .await?;
        Ok((!alive).then_some(()))
    })
    .await?;

    // Act
    let request = Request::get(format!("/jobs/{}", Uuid::new_v4())).body(Body::empty())?;
    let response = router(state).oneshot(request).await?;

    // Assert
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await?
        .to_bytes();
    let body: Value = serde_json::from_slice(&bytes)?;
    let error = body["error"].as_str().unwrap_or("");
    assert!(error.contains("database is unavailable"), "{body}");
    env.finish().await?;
    Ok(())
}
