//! A team's own schema: migrated once per database, cleaned per test, and covered by the
//! foreign-write check, as are claims, completions and deletes on another test's queue.

use harness::fixtures::env;
use harness::queue::{NewJob, Queue};
use harness::{CollectionMode, DataKey, HarnessError, TestEnv};
use rstest::rstest;
use serde_json::json;
use sqlx::migrate::Migrator;

use crate::helpers::{TestResult, DIM};

static ORDERS: Migrator = sqlx::migrate!("tests/isolation/migrations");

async fn with_orders(name: &str) -> Result<TestEnv, HarnessError> {
    TestEnv::builder(name)
        .vector_size(DIM)
        .migrations(&ORDERS)
        .owned_table(
            "harness_test_orders",
            "project",
            DataKey::Resource("project".into()),
        )
        .build()
        .await
}

async fn orders_of(pool: &sqlx::PgPool, project: &str) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM harness_test_orders WHERE project = $1")
            .bind(project)
            .fetch_one(pool)
            .await?,
    )
}

#[tokio::test]
async fn a_teams_table_is_migrated_once_and_its_rows_go_with_their_environment() -> TestResult {
    // Arrange: two environments with the team's migrations, each with an order.
    let a = with_orders("orders_a").await?;
    let b = with_orders("orders_b").await?;
    for env in [&a, &b] {
        sqlx::query("INSERT INTO harness_test_orders (project, item) VALUES ($1, 'tea')")
            .bind(env.project())
            .execute(env.pool())
            .await?;
    }
    let (a_project, pool) = (a.project().to_owned(), b.pool().clone());

    // Act
    a.finish().await?;

    // Assert: A's order is gone, B's is not.
    assert_eq!(orders_of(&pool, &a_project).await?, 0);
    assert_eq!(orders_of(&pool, b.project()).await?, 1);
    let b_project = b.project().to_owned();
    drop(b); // cleanup on drop too
    assert_eq!(orders_of(&pool, &b_project).await?, 0);
    Ok(())
}

#[tokio::test]
async fn claims_completions_deletes_and_writes_on_another_tests_rows_are_reported() -> TestResult {
    // Arrange: B has a job and an order; A's connections touch them.
    let a = with_orders("touches_others").await?;
    let b = with_orders("is_touched").await?;
    b.enqueue(json!({ "mine": "b" })).await?;
    let victim = b.enqueue(json!({ "doomed": true })).await?;
    sqlx::query("INSERT INTO harness_test_orders (project, item) VALUES ($1, 'tea')")
        .bind(b.project())
        .execute(b.pool())
        .await?;

    // Act: through A's pool, claim and complete B's job, delete another, change B's order.
    let through_a = Queue::new(a.pool().clone(), b.queue_id().clone());
    let claimed = through_a.claim(1, "intruder").await?;
    through_a.complete(&claimed[0].lease()).await?;
    sqlx::query("DELETE FROM queue_jobs WHERE id = $1")
        .bind(victim)
        .execute(a.pool())
        .await?;
    sqlx::query("UPDATE harness_test_orders SET item = 'coffee' WHERE project = $1")
        .bind(b.project())
        .execute(a.pool())
        .await?;

    // Assert
    let err = a
        .finish()
        .await
        .expect_err("touching another test's rows must fail");
    let message = err.to_string();
    let queue = format!("{:?}", b.queue_id().as_str());
    assert!(
        message.contains(&format!("update(s) of queue rows of queue {queue}")),
        "{message}"
    );
    assert!(
        message.contains(&format!("delete(s) of queue rows of queue {queue}")),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "update(s) of harness_test_orders rows keyed {:?}",
            b.project()
        )),
        "{message}"
    );
    b.finish().await?; // B itself did nothing wrong
    Ok(())
}

#[tokio::test]
async fn an_environment_working_its_own_rows_is_isolated() -> TestResult {
    let env = with_orders("own_rows").await?;
    let id = env.enqueue(json!({})).await?;
    let claimed = env.queue().claim(1, "me").await?;
    env.queue().complete(&claimed[0].lease()).await?;
    env.queue().enqueue(NewJob::new(json!({ "n": 2 }))).await?;
    sqlx::query("INSERT INTO harness_test_orders (project, item) VALUES ($1, 'tea')")
        .bind(env.project())
        .execute(env.pool())
        .await?;
    sqlx::query("DELETE FROM queue_jobs WHERE id = $1")
        .bind(id)
        .execute(env.pool())
        .await?;
    env.assert_isolated().await?;
    env.finish().await?;
    Ok(())
}

#[rstest]
#[tokio::test]
async fn the_fixture_takes_a_vector_size_and_a_collection_mode(
    #[future]
    #[with(8, CollectionMode::PerTest)]
    env: TestEnv,
) -> TestResult {
    let env = env.await;
    assert_eq!(env.collection_mode(), CollectionMode::PerTest);
    let info = env
        .qdrant_client()
        .collection_info(env.collection())
        .await?;
    assert!(format!("{info:?}").contains("size: 8"), "{info:?}");
    env.finish().await?;
    Ok(())
}
