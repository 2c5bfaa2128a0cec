//! The downstream service tested through the harness's public API only.

use std::time::Duration;

use downstream::{router, AppState, NoteWorker, DIM, MIGRATOR};
use harness::fixtures::env;
use harness::queue::JobStatus;
use harness::{DataKey, Enqueued, HarnessError, JobOutcome, TestApp, TestEnv};
use rstest::rstest;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

/// An environment with the service's own migrations and table.
async fn env_for(name: &str) -> Result<TestEnv, HarnessError> {
    TestEnv::builder(name)
        .vector_size(DIM)
        .migrations(&MIGRATOR)
        .owned_table("notes_log", "project", DataKey::Resource("project".into()))
        .build()
        .await
}

fn worker(env: &TestEnv) -> NoteWorker {
    NoteWorker {
        qdrant: env.qdrant_client(),
        collection: env.collection().to_owned(),
    }
}

async fn app(env: &TestEnv) -> anyhow::Result<TestApp> {
    // The service gets the environment's Qdrant URL: a client of its own, like production.
    let qdrant = qdrant_client::Qdrant::from_url(env.qdrant_url())
        .skip_compatibility_check()
        .build()?;
    let state = AppState {
        queue: env.queue().clone(),
        qdrant: std::sync::Arc::new(qdrant),
        collection: env.collection().to_owned(),
        project: env.project().to_owned(),
    };
    Ok(env.spawn_app(router(state)).await?)
}

async fn log_of(env: &TestEnv) -> anyhow::Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT note FROM notes_log WHERE project = $1 ORDER BY id")
            .bind(env.project())
            .fetch_all(env.pool())
            .await?,
    )
}

#[tokio::test]
async fn a_posted_note_is_stored_by_the_worker_and_found_by_search() -> anyhow::Result<()> {
    let env = env_for("downstream_note").await?;
    let _worker = env.spawn_worker(worker(&env)).await?;
    let app = app(&env).await?;

    let response = app
        .post_json("/notes", &json!({ "text": "buy oat milk" }))
        .await?;
    assert_eq!(response.status().as_u16(), 202);
    let job_id = response.json::<Value>().await?["job_id"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("no job id"))?;
    let row = env.wait_for_job(job_id, WAIT).await?;
    assert_eq!(row.status, JobStatus::Completed);

    let found: Value = app.get("/notes/search?q=oat%20milk").await?.json().await?;
    assert_eq!(found["notes"], json!(["buy oat milk"]));
    assert_eq!(log_of(&env).await?, vec!["buy oat milk"]);
    env.finish().await?;
    Ok(())
}

#[tokio::test]
async fn posting_a_note_enqueues_it_for_this_project_and_an_empty_one_enqueues_nothing(
) -> anyhow::Result<()> {
    let env = env_for("downstream_enqueued").await?;
    let app = app(&env).await?;

    app.post_json("/notes", &json!({ "text": "call the plumber" }))
        .await?;
    let empty = app.post_json("/notes", &json!({ "text": "  " })).await?;

    assert_eq!(empty.status().as_u16(), 400);
    env.assert_enqueued(
        Enqueued::payload(json!({ "text": "call the plumber", "project": env.project() }))
            .status(JobStatus::Pending),
    )
    .await?;
    env.refute_enqueued(Enqueued::payload(json!({ "text": "  " })))
        .await?;
    assert_eq!(env.jobs().await?.len(), 1);
    env.finish().await?;
    Ok(())
}

#[tokio::test]
async fn drained_inline_a_note_is_stored_and_logged_and_the_log_goes_with_the_test(
) -> anyhow::Result<()> {
    let env = env_for("downstream_drain").await?;
    let app = app(&env).await?;
    app.post_json("/notes", &json!({ "text": "water the plants" }))
        .await?;

    let reports = env.drain(worker(&env)).await?;

    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, JobOutcome::Completed);
    assert_eq!(log_of(&env).await?, vec!["water the plants"]);
    let (project, pool) = (env.project().to_owned(), env.pool().clone());
    env.finish().await?;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM notes_log WHERE project = $1")
        .bind(project)
        .fetch_one(&pool)
        .await?;
    assert_eq!(left, 0, "the test's own table kept its rows");
    Ok(())
}

#[tokio::test]
async fn a_note_whose_store_is_missing_is_retried_on_the_clock_then_dead_with_every_error(
) -> anyhow::Result<()> {
    let env = TestEnv::builder("downstream_retries")
        .vector_size(DIM)
        .migrations(&MIGRATOR)
        .manual_clock()
        .build()
        .await?;
    env.queue()
        .enqueue(
            harness::queue::NewJob::new(json!({ "text": "lost", "project": env.project() }))
                .max_attempts(3),
        )
        .await?;
    let broken = NoteWorker {
        qdrant: env.qdrant_client(),
        collection: "no_such_collection".into(),
    };

    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.extend(
            env.drain(broken.clone())
                .await?
                .into_iter()
                .map(|r| r.outcome),
        );
        env.advance(Duration::from_secs(3600))?;
    }

    assert!(
        matches!(
            outcomes[..],
            [
                JobOutcome::Retrying { .. },
                JobOutcome::Retrying { .. },
                JobOutcome::Dead
            ]
        ),
        "{outcomes:?}"
    );
    let dead = env.jobs().await?;
    assert_eq!(dead[0].errors.as_array().map(Vec::len), Some(3));
    env.finish().await?;
    Ok(())
}

/// The planted bug of `GET /notes/count` (no project filter) is caught: a strict-tenant Qdrant
/// refuses the call, and the tenant recorder (for a real Qdrant) fails the isolation check.
#[tokio::test]
async fn the_unfiltered_count_in_service_code_is_caught() -> anyhow::Result<()> {
    let env = TestEnv::builder("downstream_unfiltered")
        .vector_size(DIM)
        .record_tenant_reads()
        .build()
        .await?;
    let app = app(&env).await?;

    let response = app.get("/notes/count").await?;
    let status = response.status().as_u16();
    let body: Value = response.json().await?;
    let finished = env.finish().await;

    let refused = status == 503
        && body["error"].as_str().is_some_and(|e| {
            e.contains("strict tenant mode") && e.contains("`must` match on `project`")
        });
    let recorded = matches!(&finished, Err(HarnessError::Isolation(m)) if m.contains("Count on"));
    assert!(
        refused || recorded,
        "the unfiltered count went unnoticed: {status} {body}, finish: {finished:?}"
    );
    Ok(())
}

#[rstest]
#[tokio::test]
async fn the_rstest_fixture_gives_each_test_its_own_project(
    #[future]
    #[with(DIM)]
    env: TestEnv,
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
