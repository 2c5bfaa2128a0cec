//! Index → poll the job → search; partial failure; re-indexing; project deletion; paused workers.

use queue::worker::Outcome;
use queue::JobStatus;
use serde_json::Value;

use crate::support::{spawn_app, spawn_app_with, TestResult, ADMIN_TOKEN};

const JSON_FILE: &str = "use std::fs;\n\n/// Reads a JSON document from disk and parses it.\npub fn load_config(path: &str) -> serde_json::Value {\n    let text = fs::read_to_string(path).unwrap();\n    serde_json::from_str(&text).unwrap()\n}\n";

const PRIMES_FILE: &str = "/// Computes the prime numbers below a bound with the sieve of Eratosthenes.\npub fn primes_below(bound: usize) -> Vec<usize> {\n    let mut sieve = vec![true; bound];\n    let mut primes = Vec::new();\n    for n in 2..bound {\n        if sieve[n] {\n            primes.push(n);\n            let mut m = n * n;\n            while m < bound { sieve[m] = false; m += n; }\n        }\n    }\n    primes\n}\n";

fn hit_paths(results: &Value) -> Vec<String> {
    results["hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .filter_map(|hit| hit["path"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn indexed_files_are_found_by_search_once_their_job_completes() -> TestResult {
    // Arrange
    let app = spawn_app().await?;

    // Act
    let job_id = app
        .index_files(&[("src/config.rs", JSON_FILE), ("src/primes.rs", PRIMES_FILE)])
        .await?;
    let job = app.wait_for_job(job_id).await?;

    // Assert
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["files"]["total"], 2);
    assert_eq!(job["files"]["done"], 2);
    assert_eq!(job["files"]["failed"], 0);
    assert!(job["finished_at"].is_string());
    let results = app.search("read json configuration from a file").await?;
    assert_eq!(
        hit_paths(&results).first().map(String::as_str),
        Some("src/config.rs")
    );
    let results = app.search("sieve of eratosthenes").await?;
    assert_eq!(
        hit_paths(&results).first().map(String::as_str),
        Some("src/primes.rs")
    );
    Ok(())
}

#[tokio::test]
async fn one_failing_file_leaves_its_job_partially_failed_with_the_error() -> TestResult {
    // Arrange: files over 2,000 bytes fail permanently (a size problem is not retried).
    let app = spawn_app_with(|settings| settings.worker.max_file_bytes = 2000).await?;
    let too_large = "// filler line of a file that is too large\n".repeat(100);

    // Act
    let job_id = app
        .index_files(&[
            ("src/config.rs", JSON_FILE),
            ("src/huge.rs", &too_large),
            ("assets/blob.bin", "\u{0}\u{1}binary"),
        ])
        .await?;
    let job = app.wait_for_job(job_id).await?;

    // Assert
    assert_eq!(job["status"], "partially_failed", "{job}");
    assert_eq!(job["files"]["done"], 1);
    assert_eq!(job["files"]["failed"], 1);
    assert_eq!(job["files"]["skipped"], 1);
    let issues = job["issues"].as_array().cloned().unwrap_or_default();
    let huge = issues
        .iter()
        .find(|i| i["path"] == "src/huge.rs")
        .cloned()
        .unwrap_or_default();
    assert_eq!(huge["status"], "failed");
    assert!(
        huge["error"]
            .as_str()
            .unwrap_or("")
            .contains("2000-byte limit"),
        "{huge}"
    );
    let blob = issues
        .iter()
        .find(|i| i["path"] == "assets/blob.bin")
        .cloned()
        .unwrap_or_default();
    assert_eq!(blob["status"], "skipped");
    assert!(
        blob["skip_reason"]
            .as_str()
            .unwrap_or("")
            .starts_with("binary"),
        "{blob}"
    );
    // Not retried: one attempt, straight to the dead-letter queue.
    let dead = app.queue.list(JobStatus::Dead, 10).await?;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 1);
    assert_eq!(
        hit_paths(&app.search("load json config").await?),
        vec!["src/config.rs"]
    );
    Ok(())
}

#[tokio::test]
async fn a_job_whose_every_file_fails_is_failed() -> TestResult {
    let app = spawn_app_with(|settings| settings.worker.max_file_bytes = 10).await?;

    let job_id = app.index_files(&[("src/a.rs", JSON_FILE)]).await?;
    let job = app.wait_for_job(job_id).await?;

    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["files"]["failed"], 1);
    Ok(())
}

#[tokio::test]
async fn a_reindexed_file_replaces_its_old_chunks() -> TestResult {
    // Arrange
    let app = spawn_app().await?;
    let first = app.index_files(&[("src/lib.rs", JSON_FILE)]).await?;
    app.wait_for_job(first).await?;

    // Act: the same path with new content.
    let second = app.index_files(&[("src/lib.rs", PRIMES_FILE)]).await?;
    let job = app.wait_for_job(second).await?;

    // Assert: only the new content is stored.
    assert_eq!(job["status"], "completed");
    let chunks = app.state.indexer.store().count(&app.project).await?;
    assert_eq!(
        i64::try_from(chunks)?,
        job["chunks_stored"].as_i64().unwrap_or(-1)
    );
    let results = app.search("parse a json file").await?;
    for hit in results["hits"].as_array().cloned().unwrap_or_default() {
        assert!(
            !hit["content"].as_str().unwrap_or("").contains("from_str"),
            "stale chunk: {hit}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn deleting_a_project_removes_it_from_search() -> TestResult {
    // Arrange
    let app = spawn_app().await?;
    let job_id = app.index_files(&[("src/primes.rs", PRIMES_FILE)]).await?;
    app.wait_for_job(job_id).await?;
    assert!(!hit_paths(&app.search("prime numbers").await?).is_empty());

    // Act
    let response = app
        .client
        .delete(format!("{}/projects/{}", app.address, app.project))
        .send()
        .await?;

    // Assert
    assert_eq!(response.status(), 200);
    assert!(hit_paths(&app.search("prime numbers").await?).is_empty());
    Ok(())
}

#[tokio::test]
async fn post_index_answers_while_workers_are_paused_and_the_job_stays_pending() -> TestResult {
    // Arrange
    let app = spawn_app().await?;
    let paused = app
        .admin(
            reqwest::Method::POST,
            "/admin/queue/pause",
            Some(ADMIN_TOKEN),
        )
        .await?;
    assert_eq!(paused.status(), 200);

    // Act
    let job_id = app.index_files(&[("src/config.rs", JSON_FILE)]).await?;

    // Assert: no worker can take the row, so the job is pending (the request did not embed).
    assert_eq!(app.worker().run_once().await?, Outcome::Idle);
    let job: Value = app.get_job(&job_id.to_string()).await?.json().await?;
    assert_eq!(job["status"], "pending", "{job}");
    assert_eq!(app.rows_in(JobStatus::Pending).await?, 1);
    assert_eq!(app.state.indexer.store().count(&app.project).await?, 0);

    // And it completes once resumed.
    app.admin(
        reqwest::Method::POST,
        "/admin/queue/resume",
        Some(ADMIN_TOKEN),
    )
    .await?;
    assert_eq!(app.wait_for_job(job_id).await?["status"], "completed");
    Ok(())
}

#[tokio::test]
async fn metrics_count_processed_rows_and_show_queue_depth() -> TestResult {
    let app = spawn_app().await?;
    let job_id = app.index_files(&[("src/primes.rs", PRIMES_FILE)]).await?;
    app.wait_for_job(job_id).await?;

    let response = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await?;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        service::metrics::CONTENT_TYPE
    );
    let text = response.text().await?;
    assert!(text.contains("qv_rows_succeeded_total 1\n"), "{text}");
    assert!(text.contains(&format!(
        "qv_queue_rows{{queue=\"{}\",status=\"completed\"}} 1\n",
        app.queue.id()
    )));
    assert!(text.contains("qv_claim_duration_seconds_count"));
    assert!(text.contains("qv_job_duration_seconds_bucket"));
    // Requests by route template and status: the one POST, and the polls of the job.
    let post = "method=\"POST\",route=\"/index\",status=\"202\"";
    assert!(text.contains(&format!("qv_http_requests_total{{{post}}} 1\n")));
    assert!(text.contains(&format!(
        "qv_http_request_duration_seconds_count{{{post}}} 1\n"
    )));
    assert!(
        text.contains("qv_http_requests_total{method=\"GET\",route=\"/jobs/{id}\",status=\"200\"}")
    );
    Ok(())
}

#[tokio::test]
async fn readiness_reports_database_qdrant_and_model() -> TestResult {
    let app = spawn_app().await?;

    let response = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await?;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await?;
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["qdrant"], "ok");
    assert_eq!(body["checks"]["model"], "ok");
    Ok(())
}
