use std::str::FromStr;

use queue::db;
use queue::namespace;
use queue::{JobStatus, NewJob, Queue, QueueId};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgPool};

use crate::helpers::{pool, TestResult};

/// The migrations of main before the queue became a crate of its own (one folder for every
/// table), as a database migrated then holds them.
static MAIN_20261202: sqlx::migrate::Migrator = sqlx::migrate!("tests/fixtures/main-20261202");

#[tokio::test]
async fn many_concurrent_migrate_calls_all_succeed() -> TestResult {
    let (pool, _) = pool(8).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let pool = pool.clone();
        tasks.spawn(async move { db::migrate(&pool).await });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    assert!(db::is_migrated(&pool).await?);
    Ok(())
}

/// A database of its own, dropped at the end.
struct ScratchDatabase {
    admin: sqlx::PgConnection,
    name: String,
    url: String,
}

impl ScratchDatabase {
    async fn create() -> anyhow::Result<Self> {
        let base = PgConnectOptions::from_str(&db::database_url_from_env())?;
        let name = format!("qv_upgrade_{}", uuid::Uuid::new_v4().simple());
        let mut admin = base.clone().database("postgres").connect().await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let url = base.database(&name).to_url_lossy().to_string();
        Ok(Self { admin, name, url })
    }

    async fn drop(mut self) -> anyhow::Result<()> {
        sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .execute(&mut self.admin)
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn a_database_migrated_by_the_single_migrations_folder_keeps_working_after_the_upgrade(
) -> TestResult {
    // Arrange: a database as main left it, with a pending row, a dead row and a namespace.
    let scratch = ScratchDatabase::create().await?;
    let result = async {
        let pool = PgPool::connect(&scratch.url).await?;
        MAIN_20261202.run(&pool).await?;
        let queue = Queue::new(pool.clone(), QueueId::new("upgraded")?);
        let pending = queue.enqueue(NewJob::new(serde_json::json!({ "n": 1 }))).await?;
        let dead = queue.enqueue(NewJob::new(serde_json::json!({ "n": 2 })).max_attempts(1)).await?;
        let claimed = queue.claim(1, "old-worker").await?;
        assert_eq!(claimed[0].id, pending);
        queue.release(&claimed[0].lease()).await?;
        sqlx::query("UPDATE queue_jobs SET status = 'dead', errors = '[{\"error\": \"old\"}]', finished_at = now() WHERE id = $1")
            .bind(dead)
            .execute(&pool)
            .await?;
        sqlx::query("INSERT INTO queue_namespaces (namespace, queue_ids) VALUES ('load_old', '{upgraded}')")
            .execute(&pool)
            .await?;

        // Act: the new layout's migrations, as every owner applies them.
        db::migrate(&pool).await?;
        db::migrate(&pool).await?;

        // Assert: the rows work as before, and deleting the old namespace deletes its queue.
        assert!(db::is_migrated(&pool).await?);
        let claimed = queue.claim(5, "new-worker").await?;
        assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![pending]);
        assert!(queue.complete(&claimed[0].lease()).await?);
        assert_eq!(queue.redrive_ids(&[dead]).await?, vec![dead]);
        let redriven = queue.get(dead).await?.expect("row");
        assert_eq!(redriven.status, JobStatus::Pending);
        assert!(redriven.errors.to_string().contains("old"), "errors kept");
        let mut conn = pool.acquire().await?;
        namespace::delete_namespace(&mut conn, "load_old").await?;
        assert_eq!(queue.stats().await?.by_status.values().sum::<i64>(), 0);
        drop(conn);
        pool.close().await;
        anyhow::Ok(())
    }
    .await;
    scratch.drop().await?;
    result
}

#[tokio::test]
async fn an_owner_whose_version_another_owner_applied_gets_a_clear_error_not_a_silent_skip(
) -> TestResult {
    // Arrange: a database where the queue's first migration is applied; another owner reuses
    // its version with other contents.
    let scratch = ScratchDatabase::create().await?;
    let result = async {
        let pool = PgPool::connect(&scratch.url).await?;
        db::migrate(&pool).await?;
        let first = db::MIGRATOR.iter().next().expect("a migration").version;
        let clash = sqlx::migrate::Migrator {
            migrations: std::borrow::Cow::Owned(vec![sqlx::migrate::Migration::new(
                first,
                "create_orders".into(),
                sqlx::migrate::MigrationType::Simple,
                "CREATE TABLE orders (id bigint)".into(),
                false,
            )]),
            ..sqlx::migrate::Migrator::DEFAULT
        };

        // Act
        let mut conn = pool.acquire().await?;
        let checked = db::is_migrated_on(&mut conn, &clash).await;
        let applied = db::migrate_on(&mut conn, &clash).await;

        // Assert
        for result in [checked.map(drop), applied] {
            let err = result.expect_err("a clashing version must be refused");
            assert!(err.to_string().contains(&first.to_string()), "{err}");
        }
        drop(conn);
        pool.close().await;
        anyhow::Ok(())
    }
    .await;
    scratch.drop().await?;
    result
}
