use harness::queue::{Queue, QueueId};
use harness::{wait_until, CollectionMode, HarnessError, TestEnv};
use qdrant_client::qdrant::{CountPointsBuilder, PointStruct};
use serde_json::json;
use std::process::{Command, Stdio};

use crate::helpers::{vector, TestResult, DIM, WAIT};

async fn rows_of(pool: &sqlx::PgPool, queue: &str) -> anyhow::Result<i64> {
    let stats = Queue::new(pool.clone(), QueueId::new(queue)?)
        .stats()
        .await?;
    Ok(stats.by_status.values().sum())
}

async fn points_left(
    env: &TestEnv,
    collection: &str,
    project: &str,
    mode: CollectionMode,
) -> anyhow::Result<u64> {
    let client = env.qdrant_client();
    if mode == CollectionMode::PerTest {
        return Ok(u64::from(client.collection_exists(collection).await?));
    }
    let filter = qdrant_client::qdrant::Filter::must([qdrant_client::qdrant::Condition::matches(
        "project",
        project.to_owned(),
    )]);
    Ok(client
        .count(
            CountPointsBuilder::new(collection)
                .filter(filter)
                .exact(true),
        )
        .await?
        .result
        .map_or(0, |r| r.count))
}

#[tokio::test]
async fn an_environment_is_cleaned_up_after_its_test_panics() -> TestResult {
    let observer = TestEnv::builder("panic_observer")
        .vector_size(DIM)
        .build()
        .await?;
    let (tx, rx) = tokio::sync::oneshot::channel();

    let failed = tokio::spawn(async move {
        let env = TestEnv::builder("panicking")
            .vector_size(DIM)
            .build()
            .await
            .expect("provisioned");
        env.enqueue(json!({ "doc": "left behind?" }))
            .await
            .expect("enqueued");
        let point = PointStruct::new(1, vector("x"), [("project", json!(env.project()).into())]);
        env.qdrant().upsert(vec![point]).await.expect("stored");
        let _ = tx.send((
            env.queue_id().to_string(),
            env.collection().to_owned(),
            env.project().to_owned(),
            env.collection_mode(),
        ));
        panic!("the test failed half-way");
    })
    .await;

    assert!(failed.is_err(), "the test was meant to panic");
    let (queue, collection, project, mode) = rx.await?;
    assert_eq!(
        rows_of(observer.pool(), &queue).await?,
        0,
        "queue rows survived the panic"
    );
    assert_eq!(
        points_left(&observer, &collection, &project, mode).await?,
        0,
        "points survived the panic"
    );
    observer.finish().await?;
    Ok(())
}

/// Not a test on its own: the body of the process the next test kills with SIGKILL.
#[tokio::test]
#[ignore = "run by a_test_killed_with_sigkill_leaves_nothing_once_the_next_environment_starts"]
async fn killed_test_body() -> TestResult {
    let file = std::env::var("HARNESS_KILL_FILE")?;
    let env = TestEnv::builder("killed").vector_size(DIM).build().await?;
    env.enqueue(json!({ "doc": "orphan" })).await?;
    let point = PointStruct::new(
        1,
        vector("orphan"),
        [("project", json!(env.project()).into())],
    );
    env.qdrant().upsert(vec![point]).await?;
    let info = json!({ "queue": env.queue_id().as_str(), "collection": env.collection(), "project": env.project() });
    std::fs::write(&file, info.to_string())?;
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::test]
async fn a_test_killed_with_sigkill_leaves_nothing_once_the_next_environment_starts() -> TestResult
{
    // Arrange: a test process on the same servers as us, killed mid-test.
    let observer = TestEnv::builder("kill_observer")
        .vector_size(DIM)
        .build()
        .await?;
    let file = std::env::temp_dir().join(format!("harness-kill-{}.json", uuid::Uuid::new_v4()));
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "cleanup::killed_test_body",
            "--ignored",
            "--nocapture",
        ])
        .env_remove("NEXTEST_RUN_ID")
        .env_remove("NEXTEST_TEST_GLOBAL_SLOT")
        .env("HARNESS_KILL_FILE", &file)
        .env("QDRANT_URL", observer.qdrant_url())
        .env("DATABASE_URL", observer.database_url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // The doomed test is set up once its file holds complete JSON; count its row while it still
    // lives (once it is dead, any environment starting elsewhere may reap it).
    let alive = async {
        wait_until(WAIT, "the doomed test to set up", || async {
            Ok(std::fs::read(&file)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                .is_some())
        })
        .await?;
        let info: serde_json::Value = serde_json::from_slice(&std::fs::read(&file)?)?;
        let queue = info["queue"].as_str().unwrap_or_default().to_owned();
        let rows = rows_of(observer.pool(), &queue).await?;
        anyhow::Ok((info, rows))
    }
    .await;
    child.kill()?; // SIGKILL: no Drop, no cleanup
    child.wait()?;
    let (info, rows_before_kill) = alive?;
    std::fs::remove_file(&file)?;
    let queue = info["queue"].as_str().unwrap_or_default().to_owned();
    let collection = info["collection"].as_str().unwrap_or_default().to_owned();
    let project = info["project"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        rows_before_kill, 1,
        "the doomed test had not enqueued its row"
    );

    // Act: the next environments start (the server frees the dead owner's lock once it notices).
    wait_until(
        WAIT,
        "a new environment to reap the killed test's namespace",
        || async {
            let next = TestEnv::builder("after_kill")
                .vector_size(DIM)
                .build()
                .await?;
            let gone = rows_of(next.pool(), &queue)
                .await
                .map_err(|e| HarnessError::Config(e.to_string()))?
                == 0;
            next.finish().await?;
            Ok(gone)
        },
    )
    .await?;

    // Assert: its rows and its collection are gone.
    assert_eq!(rows_of(observer.pool(), &queue).await?, 0);
    assert_eq!(
        points_left(&observer, &collection, &project, CollectionMode::PerTest).await?,
        0,
        "its collection remains"
    );
    observer.finish().await?;
    Ok(())
}

#[tokio::test]
async fn a_finished_environment_leaves_its_slot_collection_empty_or_removes_its_own() -> TestResult
{
    let first = TestEnv::builder("slot_first")
        .vector_size(DIM)
        .build()
        .await?;
    let point = PointStruct::new(
        7,
        vector("old"),
        [("project", json!(first.project()).into())],
    );
    first.qdrant().upsert(vec![point]).await?;
    assert_eq!(first.qdrant().count_project().await?, 1);
    let (collection, mode) = (first.collection().to_owned(), first.collection_mode());
    let client = first.qdrant_client();

    first.finish().await?;

    if mode == CollectionMode::PerSlot {
        // Under nextest the slot keeps its collection for its next test, emptied.
        assert!(
            client.collection_exists(&collection).await?,
            "slot collection deleted"
        );
        let left = client
            .count(CountPointsBuilder::new(&collection).exact(true))
            .await?;
        assert_eq!(left.result.map_or(0, |r| r.count), 0);
    } else {
        assert!(
            !client.collection_exists(&collection).await?,
            "per-test collection not deleted"
        );
    }
    Ok(())
}
