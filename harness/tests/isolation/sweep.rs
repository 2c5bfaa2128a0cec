//! Sweeps of finished runs' collections only touch what their own database registered: two
//! databases sharing one Qdrant (CI and staging, two developers) never delete each other's live
//! collections.

use std::process::{Command, Stdio};
use std::str::FromStr;

use harness::TestEnv;
use qdrant_client::qdrant::PointStruct;
use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use sqlx::ConnectOptions;

use crate::helpers::{vector, TestResult, DIM};

/// Not a test on its own: a test process of another database and another run, which sweeps.
#[tokio::test]
#[ignore = "run by another_databases_sweep_leaves_this_databases_live_collections_alone"]
async fn sweep_from_another_database() -> TestResult {
    let env = TestEnv::builder("other_database")
        .vector_size(DIM)
        .build()
        .await?;
    let deleted = env.sweep_finished_runs().await?;
    std::fs::write(std::env::var("HARNESS_SWEEP_FILE")?, deleted.to_string())?;
    env.finish().await?;
    Ok(())
}

#[tokio::test]
async fn another_databases_sweep_leaves_this_databases_live_collections_alone() -> TestResult {
    // Arrange: a live environment here, with a point, and another database on the same Qdrant.
    let env = TestEnv::builder("live_here")
        .vector_size(DIM)
        .build()
        .await?;
    let point = PointStruct::new(
        1,
        vector("mine"),
        [("project", json!(env.project()).into())],
    );
    env.qdrant().upsert(vec![point]).await?;
    let base = PgConnectOptions::from_str(env.database_url())?;
    let other = format!("qv_sweep_{}", uuid::Uuid::new_v4().simple());
    let mut admin = base.clone().database("postgres").connect().await?;
    sqlx::query(&format!("CREATE DATABASE {other}"))
        .execute(&mut admin)
        .await?;
    let file = std::env::temp_dir().join(format!("harness-sweep-{}", uuid::Uuid::new_v4()));

    // Act: a test process of that database, in a run of its own, sweeps finished runs.
    let swept = Command::new(std::env::current_exe()?)
        .args(["--exact", "sweep::sweep_from_another_database", "--ignored"])
        .env(
            "DATABASE_URL",
            base.database(&other).to_url_lossy().as_str(),
        )
        .env("QDRANT_URL", env.qdrant_url())
        .env("NEXTEST_RUN_ID", uuid::Uuid::new_v4().to_string())
        .env("NEXTEST_TEST_GLOBAL_SLOT", "0")
        .env("HARNESS_SWEEP_FILE", &file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let dropped = sqlx::query(&format!("DROP DATABASE {other} WITH (FORCE)"))
        .execute(&mut admin)
        .await;
    let swept = swept?;
    dropped?;
    let deleted = std::fs::read_to_string(&file)?;
    std::fs::remove_file(&file)?;

    // Assert: it swept nothing of ours; our collection and point are intact.
    assert!(swept.success(), "the other database's test process failed");
    assert_eq!(deleted, "0");
    assert!(
        env.qdrant_client()
            .collection_exists(env.collection())
            .await?
    );
    assert_eq!(env.qdrant().count_project().await?, 1);
    env.finish().await?;
    Ok(())
}
