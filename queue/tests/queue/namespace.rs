//! Reaping the namespace of a dead owner, including what its sessions were still writing.

use std::str::FromStr;
use std::time::{Duration, Instant};

use queue::namespace::{self, DataKey, NamespaceGuard};
use queue::{NewJob, Queue, QueueId};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::helpers::{pool, TestResult};

/// A writer of the namespace's owner in the middle of a transaction (left open on the returned
/// connection), as a statement the server still runs for a killed client would be.
async fn unfinished_write(
    options: &PgConnectOptions,
    pool: &sqlx::PgPool,
    ns: &str,
    queue: &QueueId,
) -> anyhow::Result<PgConnection> {
    let mut writer = PgConnection::connect_with(
        &options
            .clone()
            .application_name(&namespace::client_name("writer", ns)),
    )
    .await?;
    sqlx::query("BEGIN").execute(&mut writer).await?;
    let jobs: Vec<NewJob> = (0..50)
        .map(|i| NewJob::new(serde_json::json!({ "i": i })))
        .collect();
    Queue::new(pool.clone(), queue.clone())
        .enqueue_many_with(&mut writer, &jobs)
        .await?;
    Ok(writer)
}

async fn commit(writer: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("COMMIT").execute(writer).await.map(drop)
}

/// A pool, connection options, a namespace no one else uses and its queue.
async fn fresh_namespace() -> anyhow::Result<(sqlx::PgPool, PgConnectOptions, String, QueueId)> {
    let (pool, url) = pool(2).await?;
    let options = PgConnectOptions::from_str(&url)?;
    let ns = format!("tns_{}", uuid::Uuid::new_v4().simple());
    let queue = QueueId::new(format!("{ns}:q"))?;
    Ok((pool, options, ns, queue))
}

/// A table of another owner whose rows belong to queues, registered for cleanup (as a service
/// registers its job table in a migration of its own).
async fn owned_table(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    // Concurrent CREATE TABLE IF NOT EXISTS may still collide: one test process at a time.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('queue-tests:owned-rows', 0))")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS queue_tests_owned_rows (
             queue_id text NOT NULL, project text, note text)",
    )
    .execute(&mut *tx)
    .await?;
    namespace::register_table(
        &mut *tx,
        "queue_tests_owned_rows",
        "queue_id",
        &DataKey::QueueId,
        "queue-tests",
    )
    .await?;
    namespace::register_table(
        &mut *tx,
        "queue_tests_owned_rows",
        "project",
        &DataKey::Resource("project".into()),
        "queue-tests",
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Rows of `table` (`queue_jobs`, `queue_tests_owned_rows`) for `queue`.
async fn rows(pool: &sqlx::PgPool, table: &str, queue: &QueueId) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE queue_id = $1"))
            .bind(queue.as_str())
            .fetch_one(pool)
            .await?,
    )
}

#[tokio::test]
async fn a_dead_owners_unfinished_write_is_ended_before_its_namespace_is_reaped() -> TestResult {
    // Arrange
    let (pool, options, ns, queue) = fresh_namespace().await?;
    let mut guard = NamespaceGuard::acquire(&options, &ns, serde_json::json!({})).await?;
    guard.register_queue(&queue).await?;
    owned_table(&pool).await?;
    sqlx::query("INSERT INTO queue_tests_owned_rows (queue_id, note) VALUES ($1, 'by queue')")
        .bind(queue.as_str())
        .execute(&pool)
        .await?;
    let mut writer = unfinished_write(&options, &pool, &ns, &queue).await?;

    // Act: the owner dies (its lock goes with its connection), a reaper runs, then the writer
    // tries to commit.
    drop(guard);
    let deadline = Instant::now() + Duration::from_secs(30);
    let reaped = loop {
        let reaped = namespace::reap_abandoned(&pool, &ns).await?;
        if !reaped.is_empty() {
            break reaped;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the dead owner's lock never came free"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let committed = commit(&mut writer).await;

    // Assert
    assert_eq!(reaped.len(), 1);
    assert_eq!(reaped[0].queue_ids, vec![queue.as_str().to_owned()]);
    assert!(
        committed.is_err(),
        "the dead owner's write committed after the reap"
    );
    assert_eq!(
        rows(&pool, "queue_jobs", &queue).await?,
        0,
        "rows of the reaped namespace remain"
    );
    assert_eq!(
        rows(&pool, "queue_tests_owned_rows", &queue).await?,
        0,
        "rows of a registered table remain"
    );
    Ok(())
}

#[tokio::test]
async fn a_name_taken_over_from_a_dead_owner_gets_none_of_its_unfinished_writes() -> TestResult {
    // Arrange: the name's queue is the same for every owner, as a harness slot's is.
    let (pool, options, ns, queue) = fresh_namespace().await?;
    let resources = serde_json::json!({});
    let mut first = PgConnection::connect_with(&options).await?;
    assert!(namespace::take(&mut first, &ns, &resources, &[&queue]).await?);
    let mut writer = unfinished_write(&options, &pool, &ns, &queue).await?;

    // Act: the first owner dies; the next one takes the name, then the writer tries to commit.
    drop(first);
    let mut next = PgConnection::connect_with(&options).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !namespace::take(&mut next, &ns, &resources, &[&queue]).await? {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the dead owner's lock never came free"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let committed = commit(&mut writer).await;

    // Assert
    assert!(
        committed.is_err(),
        "the dead owner's write committed after the takeover"
    );
    assert_eq!(
        rows(&pool, "queue_jobs", &queue).await?,
        0,
        "the new owner's queue holds the dead owner's rows"
    );
    namespace::release(&mut next, &ns).await?;
    Ok(())
}

#[tokio::test]
async fn releasing_a_namespace_deletes_what_registered_tables_keep_for_it_and_nothing_else(
) -> TestResult {
    // Arrange: rows keyed by this namespace's queue and by its resources' project, and rows of
    // another queue and project that must stay.
    let (pool, options, ns, queue) = fresh_namespace().await?;
    owned_table(&pool).await?;
    let project = format!("p_{ns}");
    let mut conn = PgConnection::connect_with(&options).await?;
    let resources = serde_json::json!({ "project": project });
    assert!(namespace::take(&mut conn, &ns, &resources, &[&queue]).await?);
    let other = format!("{ns}_other");
    sqlx::query(
        "INSERT INTO queue_tests_owned_rows (queue_id, project, note) VALUES
         ($1, NULL, 'queue'), ('elsewhere', $2, 'project'), ($3, $3, 'other')",
    )
    .bind(queue.as_str())
    .bind(&project)
    .bind(&other)
    .execute(&pool)
    .await?;

    // Act
    namespace::release(&mut conn, &ns).await?;

    // Assert
    let notes: Vec<String> = sqlx::query_scalar(
        "SELECT note FROM queue_tests_owned_rows
         WHERE queue_id IN ($1, 'elsewhere', $3) AND (project IS NULL OR project IN ($2, $3))
         ORDER BY note",
    )
    .bind(queue.as_str())
    .bind(&project)
    .bind(&other)
    .fetch_all(&pool)
    .await?;
    assert_eq!(notes, vec!["other".to_owned()]);
    namespace::delete_queues(&pool, &[&other]).await?;
    Ok(())
}
