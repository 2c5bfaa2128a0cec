use service::db;

use crate::helpers::{pool, TestResult};

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
