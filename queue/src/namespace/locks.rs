//! The advisory locks behind ownership: one per namespace, held exclusively by its owner, and one
//! per group (e.g. a test run), held shared by every member.

use sqlx::PgConnection;

use super::NamespaceError;

/// The session advisory lock of a namespace or group name, if free (or already this session's).
pub(super) async fn try_lock(conn: &mut PgConnection, key: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(key)
        .fetch_one(conn)
        .await
}

pub(super) async fn unlock(conn: &mut PgConnection, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Holds a shared lock on `group` (e.g. a test run) on `conn` for as long as the session lives,
/// so a reaper that takes the group's lock exclusively ([`try_lock_group`]) knows no member is
/// alive. Waits while a reaper holds it.
pub async fn hold_group(conn: &mut PgConnection, group: &str) -> Result<(), NamespaceError> {
    sqlx::query("SELECT pg_advisory_lock_shared(hashtextextended($1, 0))")
        .bind(group)
        .execute(conn)
        .await?;
    Ok(())
}

/// Takes `group`'s lock exclusively on `conn` if no member holds it ([`hold_group`]): while held,
/// no member of the group is alive and none can start. Give it back with [`unlock_group`].
pub async fn try_lock_group(conn: &mut PgConnection, group: &str) -> Result<bool, NamespaceError> {
    Ok(try_lock(conn, group).await?)
}

/// Gives back a lock taken with [`try_lock_group`].
pub async fn unlock_group(conn: &mut PgConnection, group: &str) -> Result<(), NamespaceError> {
    Ok(unlock(conn, group).await?)
}
