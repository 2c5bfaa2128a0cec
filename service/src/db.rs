//! Database connection and the one migration entry point shared by service, harness and load.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

/// Where a newcomer's PostgreSQL lives when `DATABASE_URL` is not set. TLS on loopback only costs
/// time (a handshake of several ms per connection, paid by every test process).
pub const DEFAULT_DATABASE_URL: &str =
    "postgres://postgres@127.0.0.1:5432/queue_vector?sslmode=disable";

/// The workspace's only migrator: `migrations/` at the repository root.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Key of the advisory lock that serialises migrations across processes ("qv-migr").
const MIGRATION_LOCK_KEY: i64 = 0x0071_762d_6d69_6772;

/// Errors of connecting and migrating.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL could not be parsed.
    #[error("invalid database URL: {0}")]
    InvalidUrl(#[source] sqlx::Error),
    /// The server refused or failed a statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed to apply.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The database URL from `DATABASE_URL`, else [`DEFAULT_DATABASE_URL`].
pub fn database_url_from_env() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

/// Creates the URL's database if it does not exist yet (connecting to the `postgres` database).
///
/// Safe when many processes call it at once: losing the race to create it is not an error.
pub async fn ensure_database(url: &str) -> Result<(), DbError> {
    let options = PgConnectOptions::from_str(url).map_err(DbError::InvalidUrl)?;
    let Some(name) = options.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let mut conn = options.clone().database("postgres").connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        let create = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        if let Err(err) = sqlx::query(&create).execute(&mut conn).await {
            // 42P04 duplicate_database, 23505 unique_violation: another process won the race.
            let raced = err
                .as_database_error()
                .and_then(|e| e.code())
                .is_some_and(|code| code == "42P04" || code == "23505");
            if !raced {
                return Err(err.into());
            }
        }
    }
    conn.close().await?;
    Ok(())
}

/// A pool of at most `max_connections` connections that fails an acquire after `acquire_timeout`.
pub async fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<PgPool, DbError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(DbError::InvalidUrl)?
        .application_name("queue-vector");
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .connect_with(options)
        .await?)
}

/// Applies pending migrations; safe when many test processes start at once.
///
/// A session advisory lock serialises the processes; the ones that wait find everything applied.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    let mut conn = pool.acquire().await?;
    migrate_on(&mut conn).await
}

/// [`migrate`] on a given connection.
pub async fn migrate_on(conn: &mut PgConnection) -> Result<(), DbError> {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    let result = MIGRATOR.run_direct(&mut *conn).await;
    let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *conn)
        .await;
    result?;
    unlock?;
    Ok(())
}

/// True when every migration of this build is applied to the pool's database.
pub async fn is_migrated(pool: &PgPool) -> Result<bool, DbError> {
    let mut conn = pool.acquire().await?;
    is_migrated_on(&mut conn).await
}

/// [`is_migrated`] on a given connection.
pub async fn is_migrated_on(conn: &mut PgConnection) -> Result<bool, DbError> {
    let table_exists: bool =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&mut *conn)
            .await?;
    if !table_exists {
        return Ok(false);
    }
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&mut *conn)
            .await?;
    Ok(MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .all(|m| applied.contains(&m.version)))
}
