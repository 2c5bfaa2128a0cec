//! Connecting to PostgreSQL, and migrations by owner.
//!
//! Each crate migrates the tables it owns: this crate applies `queue/migrations` with
//! [`migrate`]; the reference service, the load suite and downstream teams apply theirs with
//! [`migrate_owner`]. All owners share sqlx's `_sqlx_migrations` history, so their versions must
//! not collide (each owner picks its own timestamps); a collision shows as
//! [`DbError::Migrate`] `VersionMismatch` naming the version. Versions another owner applied
//! are not an error here, unlike in `sqlx::migrate::Migrator::run`, which requires every applied
//! version to be its own.
//!
//! Every owner migrates under one PostgreSQL advisory lock, so many processes (nextest's
//! process-per-test, several service replicas) may migrate at once.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migrate, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

/// Where a newcomer's PostgreSQL lives when `DATABASE_URL` is not set. TLS on loopback only costs
/// time (a handshake of several ms per connection, paid by every test process).
pub const DEFAULT_DATABASE_URL: &str =
    "postgres://postgres@127.0.0.1:5432/queue_vector?sslmode=disable";

/// The queue's own migrations (`queue/migrations`): its tables, functions and triggers.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Key of the advisory lock that serialises migrations of every owner across processes
/// ("qv-migr").
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
    /// A migration failed to apply, or an applied one differs from this build's.
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
/// Its connections are named by the URL's `application_name`, else `queue-vector`.
pub async fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<PgPool, DbError> {
    let options = PgConnectOptions::from_str(url).map_err(DbError::InvalidUrl)?;
    let options = match options.get_application_name() {
        Some(_) => options,
        None => options.application_name("queue-vector"),
    };
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .connect_with(options)
        .await?)
}

/// Applies the queue's pending migrations; safe when many processes start at once.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    migrate_owner(pool, &MIGRATOR).await
}

/// Applies another owner's migrations (e.g. a service's own tables) the way [`migrate`] applies
/// the queue's. Apply the queue's first when the owner's tables refer to the queue's.
pub async fn migrate_owner(pool: &PgPool, migrator: &Migrator) -> Result<(), DbError> {
    let mut conn = pool.acquire().await?;
    migrate_on(&mut conn, migrator).await
}

/// [`migrate_owner`] on a given connection.
pub async fn migrate_on(conn: &mut PgConnection, migrator: &Migrator) -> Result<(), DbError> {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    let result = apply_pending(&mut *conn, migrator).await;
    let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *conn)
        .await;
    result?;
    unlock?;
    Ok(())
}

/// What `Migrator::run_direct` does, except that versions applied by other owners are allowed.
async fn apply_pending(conn: &mut PgConnection, migrator: &Migrator) -> Result<(), DbError> {
    conn.ensure_migrations_table().await?;
    if let Some(version) = conn.dirty_version().await? {
        return Err(sqlx::migrate::MigrateError::Dirty(version).into());
    }
    let applied: HashMap<i64, Vec<u8>> = conn
        .list_applied_migrations()
        .await?
        .into_iter()
        .map(|m| (m.version, m.checksum.into_owned()))
        .collect();
    for migration in migrator.iter() {
        if migration.migration_type.is_down_migration() {
            continue;
        }
        match applied.get(&migration.version) {
            Some(checksum) if *checksum != *migration.checksum => {
                return Err(sqlx::migrate::MigrateError::VersionMismatch(migration.version).into())
            }
            Some(_) => {}
            None => {
                conn.apply(migration).await?;
            }
        }
    }
    Ok(())
}

/// True when every migration of `migrator` is applied to the connection's database (one query
/// when they are: what a test process checks before taking the migration lock). A version that
/// another owner applied with other contents is an error (`VersionMismatch`), not "applied":
/// owners must pick versions of their own.
pub async fn is_migrated_on(conn: &mut PgConnection, migrator: &Migrator) -> Result<bool, DbError> {
    let table_exists: bool =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&mut *conn)
            .await?;
    if !table_exists {
        return Ok(false);
    }
    let applied: HashMap<i64, Vec<u8>> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    let mut all = true;
    for migration in migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
    {
        match applied.get(&migration.version) {
            Some(checksum) if *checksum != *migration.checksum => {
                return Err(sqlx::migrate::MigrateError::VersionMismatch(migration.version).into())
            }
            Some(_) => {}
            None => all = false,
        }
    }
    Ok(all)
}

/// [`is_migrated_on`] for the queue's own migrations, on a connection of `pool`.
pub async fn is_migrated(pool: &PgPool) -> Result<bool, DbError> {
    let mut conn = pool.acquire().await?;
    is_migrated_on(&mut conn, &MIGRATOR).await
}

/// Whether `error` means PostgreSQL is out of reach or restarting (worth trying again later)
/// rather than refusing the statement: no connection could be had or it broke, or the server
/// said so (class 08 connection exceptions; 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03
/// cannot_connect_now; 53300 too_many_connections).
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}
