//! The model under indexing load and after a panic, through the service: search answers while a
//! large file is embedded, a panic costs one attempt, `/readyz` runs the model.

use queue::JobStatus;
use serde_json::Value;

use service::index::{ChunkOutcome, Chunker};

use crate::support::{spawn_app, TestResult, DEADLINE};

const JSON_FILE: &str = "/// Reads a JSON configuration file from disk.\npub fn load_config(path: &str) -> String {\n    std::fs::read_to_string(path).unwrap_or_default()\n}\n";

#[tokio::test]
async fn search_answers_while_a_large_file_is_being_indexed() -> TestResult {
    // Arrange: a small file indexed, then a file of 3,000 small functions being embedded.
    let app = spawn_app().await?;
    let small = app.index_files(&[("src/config.rs", JSON_FILE)]).await?;
    assert_eq!(app.wait_for_job(small).await?["status"], "completed");
    let big: String = (0..3000)
        .map(|i| format!("def f{i}(x):\n    return x + {i}\n\n"))
        .collect();
    let chunks = match Chunker::default().chunk("big.py", big.as_bytes())? {
        ChunkOutcome::Chunks(chunks) => chunks.len() as u64,
        ChunkOutcome::Skipped(reason) => anyhow::bail!("the large file is skipped: {reason:?}"),
    };
    let embedder = app.state.indexer.embedder().clone();
    let before = embedder.bulk_texts();
    let big_job = app.index_files(&[("big.py", &big)]).await?;
    harness::wait_until(
        DEADLINE,
        "the large file's embedding to be under way",
        || async { Ok(embedder.bulk_texts() > before) },
    )
    .await?;

    // Act
    let results = app.search("read a json configuration file").await?;

    // Assert: answered while the large file's chunks were still being embedded.
    let embedded = embedder.bulk_texts() - before;
    assert_eq!(results["hits"][0]["path"], "src/config.rs", "{results}");
    assert!(
        embedded < chunks,
        "search answered only after all {chunks} chunks were embedded"
    );
    let job: Value = app.get_job(&big_job.to_string()).await?.json().await?;
    assert_eq!(job["status"], "processing", "{job}");
    Ok(())
}

#[tokio::test]
async fn a_panic_inside_the_model_costs_one_attempt_and_later_rows_complete() -> TestResult {
    // Arrange: the model's next run panics.
    let app = spawn_app().await?;
    app.state.indexer.embedder().inject_panics(1);

    // Act
    let first = app.index_files(&[("src/config.rs", JSON_FILE)]).await?;
    let first = app.wait_for_job(first).await?;
    let second = app
        .index_files(&[("src/other.rs", "pub fn other() -> u32 { 2 }\n")])
        .await?;
    let second = app.wait_for_job(second).await?;

    // Assert: the panicked attempt was retried, and nothing went dead.
    assert_eq!(first["status"], "completed", "{first}");
    assert_eq!(second["status"], "completed", "{second}");
    let attempts: Vec<i32> =
        sqlx::query_scalar("SELECT attempts FROM queue_jobs WHERE queue_id = $1 ORDER BY id")
            .bind(app.queue.id().as_str())
            .fetch_all(&app.pool)
            .await?;
    assert_eq!(attempts, vec![2, 1]);
    assert_eq!(app.rows_in(JobStatus::Dead).await?, 0);
    let results = app.search("read a json configuration file").await?;
    assert_eq!(results["hits"][0]["path"], "src/config.rs", "{results}");
    Ok(())
}

#[tokio::test]
async fn readiness_runs_the_model() -> TestResult {
    let app = spawn_app().await?;
    let readyz = || async {
        let response = app
            .client
            .get(format!("{}/readyz", app.address))
            .send()
            .await?;
        anyhow::Ok((response.status().as_u16(), response.json::<Value>().await?))
    };

    let (status, body) = readyz().await?;
    assert_eq!(
        (status, &body["checks"]["model"]),
        (200, &Value::from("ok"))
    );

    // A model that fails is reported...
    app.state.indexer.embedder().inject_panics(1);
    let (status, body) = readyz().await?;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["model"], "unavailable", "{body}");
    assert_eq!(body["checks"]["database"], "ok", "{body}");

    // ...and so is its recovery.
    let (status, body) = readyz().await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}
