use std::time::Duration;

use harness::TestEnv;
use serde_json::{json, Value};
use service::worker::WorkerConfig;

use crate::helpers::{TestResult, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_service_indexes_and_finds_code_inside_its_environment() -> TestResult {
    // Arrange: the reference service's app and workers, bound to this test's namespace.
    let env = TestEnv::builder("reference_service").build().await?;
    let indexer = env.service_indexer().await?;
    let workers = env
        .spawn_service_worker(indexer.clone(), WorkerConfig::default())
        .await?;
    let app = env.spawn_service_app(indexer, None).await?;
    let file = "/// Parse a JSON file from disk.\npub fn parse_json_file(path: &str) -> serde_json::Value { todo!() }\n";

    // Act
    let response = app
        .post_json("/index", &json!({ "project": env.project(), "files": [{ "path": "src/json.rs", "content": file }] }))
        .await?;
    assert_eq!(response.status().as_u16(), 202);
    env.wait_idle(WAIT).await?;
    let found: Value = app
        .get(&format!(
            "/search?project={}&q=parse%20a%20json%20file&limit=3",
            env.project()
        ))
        .await?
        .json()
        .await?;

    // Assert
    assert!(found.to_string().contains("parse_json_file"), "{found}");
    workers.shutdown(Duration::from_secs(10)).await;
    let (queue, pool) = (env.queue_id().to_string(), env.pool().clone());
    let api_jobs = "SELECT count(*) FROM index_jobs WHERE queue_id = $1";
    let before: i64 = sqlx::query_scalar(api_jobs)
        .bind(&queue)
        .fetch_one(&pool)
        .await?;
    env.finish().await?;
    let after: i64 = sqlx::query_scalar(api_jobs)
        .bind(&queue)
        .fetch_one(&pool)
        .await?;
    assert_eq!(
        (before, after),
        (1, 0),
        "the API job outlived the environment"
    );
    Ok(())
}
