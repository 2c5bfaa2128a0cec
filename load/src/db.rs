//! The load suite's own table (`load/migrations`: the ledger), migrated after the queue's.

use queue::db::DbError;
use sqlx::migrate::Migrator;
use sqlx::PgPool;

/// The load suite's migrations.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Whether the queue's and the load suite's migrations are all applied.
pub async fn is_migrated(pool: &PgPool) -> Result<bool, DbError> {
    let mut conn = pool.acquire().await?;
    Ok(
        queue::db::is_migrated_on(&mut conn, &queue::db::MIGRATOR).await?
            && queue::db::is_migrated_on(&mut conn, &MIGRATOR).await?,
    )
}

/// Applies the queue's migrations, then the load suite's.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    queue::db::migrate(pool).await?;
    queue::db::migrate_owner(pool, &MIGRATOR).await
}
