//! The service's own tables (`service/migrations`: the API's job tables), migrated after the
//! queue's, whose tables they refer to.

use queue::db::DbError;
use sqlx::migrate::Migrator;
use sqlx::PgPool;

/// The service's migrations.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Applies the queue's migrations, then the service's; safe when many processes start at once.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    queue::db::migrate(pool).await?;
    queue::db::migrate_owner(pool, &MIGRATOR).await
}
