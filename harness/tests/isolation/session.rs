//! The harness's PostgreSQL session holds the locks that say a test is alive. When it drops, the
//! environment takes its namespace back, or fails its test with a clear error; it is never
//! reaped while it runs without anyone noticing.

use harness::{HarnessError, TestEnv};
use serde_json::json;
use sqlx::{Connection, PgConnection};

use crate::helpers::{TestResult, DIM, WAIT};

/// The `application_name` of this process's harness session.
fn session_name() -> String {
    format!("harness-session:{}", std::process::id())
}

/// Whether a session named `holder` holds the advisory lock of namespace `ns`.
async fn lock_held_by(conn: &mut PgConnection, ns: &str, holder: &str) -> anyhow::Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND l.classid::bigint = (hashtextextended($1, 0) >> 32) & 4294967295
               AND l.objid::bigint = hashtextextended($1, 0) & 4294967295
               AND a.application_name = $2)",
    )
    .bind(ns)
    .bind(holder)
    .fetch_one(conn)
    .await?)
}

#[tokio::test]
async fn an_environment_whose_session_dropped_takes_its_namespace_back_and_is_not_reaped(
) -> TestResult {
    // Arrange
    let env = TestEnv::builder("session_back")
        .vector_size(DIM)
        .build()
        .await?;
    let ns = env.namespace().id.clone();
    let mut admin = PgConnection::connect(env.database_url()).await?;
    assert!(lock_held_by(&mut admin, &ns, &session_name()).await?);

    // Act: the session's backend is terminated (as a PostgreSQL restart or an idle timeout would).
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
         WHERE application_name = $1 AND datname = current_database()",
    )
    .bind(session_name())
    .fetch_all(&mut admin)
    .await?;
    assert_eq!(ended, vec![true]);
    harness::wait_for(WAIT, "the session to take its namespace back", || async {
        Ok(lock_held_by(
            &mut PgConnection::connect(env.database_url()).await?,
            &ns,
            &session_name(),
        )
        .await?
        .then_some(()))
    })
    .await?;

    // Assert: a reaper finds nothing to reap, and the environment works and cleans up.
    let reaped = queue::namespace::reap_abandoned(env.pool(), &ns).await?;
    assert!(reaped.is_empty(), "a live environment was reaped");
    let id = env.enqueue(json!({ "still": "mine" })).await?;
    assert_eq!(env.queue().claim(1, "w").await?[0].id, id);
    env.finish().await?;
    Ok(())
}

#[tokio::test]
async fn an_environment_reaped_while_its_session_was_down_fails_its_test_with_a_clear_error(
) -> TestResult {
    // Arrange
    let env = TestEnv::builder("session_lost")
        .vector_size(DIM)
        .build()
        .await?;
    let ns = env.namespace().id.clone();
    env.enqueue(json!({ "doomed": true })).await?;
    let mut reaper = PgConnection::connect(env.database_url()).await?;

    // Act: in one statement, end the session and take its namespace's lock the moment the server
    // frees it (before the session can come back), then reap the namespace as a reaper would.
    let taken: Vec<()> = sqlx::query_scalar(
        "SELECT pg_advisory_lock(hashtextextended($1, 0)) FROM (
             SELECT pg_terminate_backend(pid, 5000) AS ended FROM pg_stat_activity
             WHERE application_name = $2 AND datname = current_database()) t
         WHERE t.ended",
    )
    .bind(&ns)
    .bind(session_name())
    .fetch_all(&mut reaper)
    .await?;
    assert_eq!(taken.len(), 1, "the session was not ended");
    queue::namespace::delete_namespace(&mut reaper, &ns).await?;
    sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
        .bind(&ns)
        .execute(&mut reaper)
        .await?;

    // Assert: the test learns it lost its namespace, and why.
    let err = env
        .finish()
        .await
        .expect_err("a reaped environment must fail its test");
    assert!(
        matches!(&err, HarnessError::NamespaceLost { namespace, reason }
            if *namespace == ns && reason.contains("reaped")),
        "{err}"
    );
    Ok(())
}
