//! Bad input: a clear 4xx with a JSON `{"error": ...}` body, and nothing half-written.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{spawn_app_with, TestApp, TestResult};

/// Sends a raw body to `POST /index` and returns the status and JSON error message.
async fn post_raw(
    app: &TestApp,
    body: impl Into<reqwest::Body>,
) -> anyhow::Result<(StatusCode, String)> {
    let response = app
        .client
        .post(format!("{}/index", app.address))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    error_of(response).await
}

async fn error_of(response: reqwest::Response) -> anyhow::Result<(StatusCode, String)> {
    let status = response.status();
    let body: Value = response.json().await?;
    let message = body["error"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no error field in {body}"))?
        .to_owned();
    Ok((status, message))
}

/// Nothing reached the database: no job row and no queue row for this app's queue.
async fn assert_nothing_written(app: &TestApp) -> TestResult {
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM index_jobs WHERE queue_id = $1")
        .bind(app.queue.id().as_str())
        .fetch_one(&app.pool)
        .await?;
    assert_eq!(jobs, 0, "a job row was written");
    assert_eq!(
        app.queue.stats().await?.by_status.values().sum::<i64>(),
        0,
        "a queue row was written"
    );
    Ok(())
}

async fn app_without_workers() -> anyhow::Result<TestApp> {
    spawn_app_with(|settings| {
        settings.worker.concurrency = 0;
        settings.server.body_limit_bytes = 512 * 1024;
    })
    .await
}

#[tokio::test]
async fn malformed_json_and_missing_fields_are_refused_with_a_json_error() -> TestResult {
    let app = app_without_workers().await?;

    let (status, message) = post_raw(&app, "{\"project\": \"p\", \"files\": [").await?;
    assert_eq!(status, 400);
    assert!(message.contains("malformed JSON"), "{message}");

    let (status, message) = post_raw(&app, json!({ "project": "p" }).to_string()).await?;
    assert_eq!(status, 422);
    assert!(message.contains("files"), "{message}");

    let (status, message) = post_raw(
        &app,
        json!({ "project": "p", "files": [{ "path": "a.rs" }] }).to_string(),
    )
    .await?;
    assert_eq!(status, 422);
    assert!(message.contains("content"), "{message}");

    let response = app
        .client
        .post(format!("{}/index", app.address))
        .body("{}")
        .send()
        .await?;
    assert_eq!(error_of(response).await?.0, 415);
    assert_nothing_written(&app).await
}

#[tokio::test]
async fn an_empty_file_list_is_refused() -> TestResult {
    let app = app_without_workers().await?;

    let response = app
        .post_index(&json!({ "project": app.project, "files": [] }))
        .await?;

    let (status, message) = error_of(response).await?;
    assert_eq!(status, 400);
    assert!(message.contains("files must not be empty"), "{message}");
    assert_nothing_written(&app).await
}

#[tokio::test]
async fn escaping_and_absolute_paths_are_refused_and_nothing_is_written() -> TestResult {
    let app = app_without_workers().await?;

    for bad in [
        "../etc/passwd",
        "src/../../x.rs",
        "/etc/passwd",
        "C:\\windows\\x",
        "",
        "a\u{0}b",
    ] {
        let response = app
            .post_index(&json!({
                "project": app.project,
                "files": [{ "path": "ok.rs", "content": "fn ok() {}" }, { "path": bad, "content": "x" }],
            }))
            .await?;
        let (status, message) = error_of(response).await?;
        assert_eq!(status, 400, "{bad:?}");
        assert!(message.contains("invalid path"), "{message}");
    }
    let duplicate = app
        .post_index(&json!({
            "project": app.project,
            "files": [{ "path": "a.rs", "content": "1" }, { "path": "a.rs", "content": "2" }],
        }))
        .await?;
    assert_eq!(error_of(duplicate).await?.0, 400);
    assert_nothing_written(&app).await
}

#[tokio::test]
async fn ten_thousand_files_in_one_request_are_refused() -> TestResult {
    let app = app_without_workers().await?;
    let files: Vec<Value> = (0..10_000)
        .map(|i| json!({ "path": format!("f{i}.rs"), "content": "x" }))
        .collect();

    let response = app
        .post_index(&json!({ "project": app.project, "files": files }))
        .await?;

    let (status, message) = error_of(response).await?;
    assert_eq!(status, 400);
    assert!(message.contains("too many files: 10000"), "{message}");
    assert_nothing_written(&app).await
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() -> TestResult {
    let app = app_without_workers().await?;
    let content = "x".repeat(600 * 1024);

    let response = app
        .post_index(
            &json!({ "project": app.project, "files": [{ "path": "big.rs", "content": content }] }),
        )
        .await?;

    let (status, message) = error_of(response).await?;
    assert_eq!(status, 413);
    assert!(message.contains("size limit"), "{message}");
    assert_nothing_written(&app).await
}

#[tokio::test]
async fn invalid_project_names_are_refused_everywhere() -> TestResult {
    let app = app_without_workers().await?;

    for bad in ["", "a b", "a/b", "ünï", &"x".repeat(129)] {
        let response = app
            .post_index(&json!({ "project": bad, "files": [{ "path": "a.rs", "content": "x" }] }))
            .await?;
        let (status, message) = error_of(response).await?;
        assert_eq!(status, 400, "{bad:?}");
        assert!(message.contains("invalid project name"), "{message}");
        let search = app
            .client
            .get(format!("{}/search", app.address))
            .query(&[("project", bad), ("q", "x")])
            .send()
            .await?;
        assert_eq!(error_of(search).await?.0, 400, "{bad:?}");
    }
    let delete = app
        .client
        .delete(format!("{}/projects/a%20b", app.address))
        .send()
        .await?;
    assert_eq!(error_of(delete).await?.0, 400);
    assert_nothing_written(&app).await
}

#[tokio::test]
async fn unknown_and_malformed_job_ids_are_404_and_400() -> TestResult {
    let app = app_without_workers().await?;

    let (status, message) = error_of(app.get_job(&uuid::Uuid::new_v4().to_string()).await?).await?;
    assert_eq!(status, 404);
    assert!(message.contains("not found"), "{message}");
    assert_eq!(error_of(app.get_job("not-a-uuid").await?).await?.0, 400);
    Ok(())
}

#[tokio::test]
async fn searches_without_a_query_or_with_a_bad_limit_are_refused() -> TestResult {
    let app = app_without_workers().await?;

    for query in [
        vec![("project", app.project.as_str())],
        vec![("project", app.project.as_str()), ("q", "   ")],
        vec![
            ("project", app.project.as_str()),
            ("q", "x"),
            ("limit", "0"),
        ],
        vec![
            ("project", app.project.as_str()),
            ("q", "x"),
            ("limit", "many"),
        ],
    ] {
        let response = app
            .client
            .get(format!("{}/search", app.address))
            .query(&query)
            .send()
            .await?;
        assert_eq!(error_of(response).await?.0, 400, "{query:?}");
    }
    Ok(())
}
