//! What a queue or a namespace leaves in the database, and deleting it: the queues' rows and
//! settings, and the rows of every table registered for them in `queue_data_tables`. The SQL
//! function `queue_delete_data` (`queue/migrations/*_create_queue_data_tables.sql`) is the one
//! list; this module only calls it.

use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};

use super::NamespaceError;
use crate::QueueId;

/// Which key a registered table's rows are deleted by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataKey {
    /// The id of one of the namespace's queues (rows of a queue).
    QueueId,
    /// The namespace's name.
    Namespace,
    /// A field of the namespace's resources, e.g. `project` for a harness environment.
    Resource(String),
}

impl DataKey {
    fn as_str(&self) -> &str {
        match self {
            DataKey::QueueId => "queue_id",
            DataKey::Namespace => "namespace",
            DataKey::Resource(field) => field,
        }
    }
}

/// Registers `table` (whose `key_column` holds `key`) so that deleting a queue's or a
/// namespace's data deletes its rows too; `owner` names who registered it. Idempotent. Owners
/// usually do this in a migration of their own:
///
/// ```sql
/// INSERT INTO queue_data_tables (table_name, key_column, key, owner)
/// VALUES ('orders', 'queue_id', 'queue_id', 'shop') ON CONFLICT DO NOTHING;
/// ```
pub async fn register_table<'e>(
    executor: impl PgExecutor<'e>,
    table: &str,
    key_column: &str,
    key: &DataKey,
    owner: &str,
) -> Result<(), NamespaceError> {
    sqlx::query(
        "INSERT INTO queue_data_tables (table_name, key_column, key, owner)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(table)
    .bind(key_column)
    .bind(key.as_str())
    .bind(owner)
    .execute(executor)
    .await?;
    Ok(())
}

/// Deletes everything kept for `queues` of namespace `namespace` with `resources`.
pub(super) async fn delete_data(
    conn: &mut PgConnection,
    namespace: &str,
    queues: &[String],
    resources: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT queue_delete_data($1, $2, $3)")
        .bind(namespace)
        .bind(queues)
        .bind(resources)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes everything kept for `queues` in one statement: their rows and settings, and the rows
/// registered tables keep for them (test and benchmark teardown, a dead owner's leftovers).
pub async fn delete_queues<'e>(
    executor: impl PgExecutor<'e>,
    queues: &[&str],
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT queue_delete_data(NULL, $1, '{}'::jsonb)")
        .bind(queues)
        .execute(executor)
        .await?;
    Ok(())
}

/// Deletes a namespace's data (its queues', and what registered tables keep for its name and
/// resources) and its registration in one statement (no lock taken: the caller owns the
/// namespace, or knows its owner is gone).
pub async fn delete_namespace(conn: &mut PgConnection, namespace: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH reg AS (DELETE FROM queue_namespaces WHERE namespace = $1
                      RETURNING queue_ids, resources)
         SELECT queue_delete_data($1, coalesce((SELECT queue_ids FROM reg), '{}'),
                                  coalesce((SELECT resources FROM reg), '{}'::jsonb))",
    )
    .bind(namespace)
    .execute(conn)
    .await?;
    Ok(())
}

/// Queues other than `own` that rows written by clients named `application_name` went to: a
/// test that enqueued outside its namespace.
pub async fn rows_written_outside<'e>(
    executor: impl PgExecutor<'e>,
    application_name: &str,
    own: &QueueId,
) -> Result<Vec<(String, i64)>, NamespaceError> {
    let rows = sqlx::query_as(
        "SELECT queue_id, count(*) FROM queue_jobs
         WHERE created_by = $1 AND queue_id <> $2
         GROUP BY queue_id ORDER BY queue_id",
    )
    .bind(application_name)
    .bind(own.as_str())
    .fetch_all(executor)
    .await?;
    Ok(rows)
}
