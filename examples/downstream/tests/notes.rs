//! The downstream service tested through the harness's public API only.

use std::time::Duration;

use downstream::{router, store_note, AppState, DIM};
use harness::TestEnv;
use rstest::rstest;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

async fn app(env: &TestEnv) -> anyhow::Result<(harness::TestApp, harness::WorkerHandle)> {
    let (client, collection) = (env.qdrant_client(), env.collection().to_owned());
    let worker = env
        .spawn_worker(move |job| store_note(job, client.clone(), collection.clone()))
        .await?;
    let state = AppState {
        queue: env.queue().clone(),
        qdrant: env.qdrant_client(),
        collection: env.collection().to_owned(),
        project: env.project().to_owned(),
    };
    Ok((env.spawn_app(router(state)).await?, worker))
}

#[tokio::test]
async fn a_posted_note_is_stored_by_the_worker_and_found_by_search() -> anyhow::Result<()> {
    let env = TestEnv::builder("downstream_note")
        .vector_size(DIM)
        .build()
        .await?;
    let (app, _worker) = app(&env).await?;

    let response = app
        .post_json("/notes", &json!({ "text": "buy oat milk" }))
        .await?;
    assert_eq!(response.status().as_u16(), 202);
    let job_id = response.json::<Value>().await?["job_id"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("no job id"))?;
    let row = env.wait_for_job(job_id, WAIT).await?;
    assert_eq!(row.status, harness::queue::JobStatus::Completed);

    let found: Value = app.get("/notes/search?q=oat%20milk").await?.json().await?;
    assert_eq!(found["notes"], json!(["buy oat milk"]));
    env.finish().await?;
    Ok(())
}

#[tokio::test]
async fn an_empty_note_is_refused_and_nothing_is_enqueued() -> anyhow::Result<()> {
    let env = TestEnv::builder("downstream_empty")
        .vector_size(DIM)
        .build()
        .await?;
    let (app, _worker) = app(&env).await?;

    let response = app.post_json("/notes", &json!({ "text": "  " })).await?;

    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        env.queue().stats().await?.by_status.values().sum::<i64>(),
        0
    );
    env.finish().await?;
    Ok(())
}

#[rstest]
#[tokio::test]
async fn the_rstest_fixture_gives_each_test_its_own_project(
    #[future] env: TestEnv,
) -> anyhow::Result<()> {
    let env = env.await;
    assert!(
        env.project()
            .contains("the_rstest_fixture_gives_each_test_its_own_project"),
        "{}",
        env.project()
    );
    assert_eq!(env.queue_id().as_str(), env.namespace().id);
    env.finish().await?;
    Ok(())
}

use harness::fixtures::env;
