//! The `load` binary end to end against the local PostgreSQL (`DATABASE_URL`): small
//! configurations of every scenario pass, deliberate defects fail with a clear message, and it
//! cleans up after itself and after killed executions. The HTML report is rendered in a headless
//! Chromium ([`html`]); the crash scenario's worker processes are in [`processes`]; the
//! minutes-long retention scenario is in [`retention`].

mod html;
mod processes;
mod retention;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

type TestResult = anyhow::Result<()>;

/// The database under test, created first if missing (a new machine has none yet; the load tool
/// itself never creates one, since it may point at staging).
fn database_url() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| queue::db::DEFAULT_DATABASE_URL.to_owned());
        // Its own thread and runtime: callers may be sync tests or inside a test's runtime.
        let ensure = url.clone();
        let created = std::thread::spawn(move || -> anyhow::Result<()> {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(queue::db::ensure_database(&ensure))?;
            Ok(())
        })
        .join();
        match created {
            Ok(Ok(())) => {}
            Ok(Err(err)) => panic!("cannot create the test database: {err:#}"),
            Err(_) => panic!("creating the test database panicked"),
        }
        url
    })
    .clone()
}

/// `url` with its database replaced by `name` (its parameters, such as sslmode, kept).
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let (server, _) = path
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("no database in {url}"))?;
    Ok(if query.is_empty() {
        format!("{server}/{name}")
    } else {
        format!("{server}/{name}?{query}")
    })
}

fn load(args: &[&str]) -> anyhow::Result<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_load"))
        .args(args)
        .env("DATABASE_URL", database_url())
        .stdin(Stdio::null())
        .output()?)
}

fn small(scenario: &str) -> anyhow::Result<Output> {
    small_with(scenario, &[])
}

/// A small configuration of `scenario` with `extra` options.
fn small_with(scenario: &str, extra: &[&str]) -> anyhow::Result<Output> {
    let mut args = vec![
        "--scenario",
        scenario,
        "--runs",
        "20",
        "--jobs-per-run",
        "5",
        "--workers",
        "4",
        "--pool-size",
        "5",
        "--duration",
        "120s",
        "--migrate",
    ];
    args.extend_from_slice(extra);
    load(&args)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn assert_passes(output: &Output) {
    let text = stdout(output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "expected a pass:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("RESULT: PASS"), "{text}");
    assert!(!text.contains('✗'), "{text}");
}

#[test]
fn the_claim_scenario_passes_on_the_real_queue() -> TestResult {
    assert_passes(&small("claim")?);
    Ok(())
}

#[test]
fn the_pool_scenario_passes_on_the_real_queue() -> TestResult {
    let output = small("pool")?;
    assert_passes(&output);
    assert!(stdout(&output).contains("✓ pool    connections never above the pool budget"));
    Ok(())
}

#[test]
fn a_second_pool_over_the_budget_fails_the_pool_check() -> TestResult {
    let output = small_with("pool", &["--sabotage", "pool-over-budget"])?;

    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("✗ pool    connections never above the pool budget"),
        "{text}"
    );
    // Caught by counting every pool of the execution, whatever its connections are named.
    assert!(text.contains("load-workers"), "{text}");
    assert!(text.contains("RESULT: FAIL"), "{text}");
    Ok(())
}

#[test]
fn the_dlq_scenario_passes_on_the_real_queue() -> TestResult {
    assert_passes(&small("dlq")?);
    Ok(())
}

#[test]
fn the_crash_scenario_passes_on_the_real_queue() -> TestResult {
    let output = small("crash")?;
    assert_passes(&output);
    assert!(stdout(&output).contains("✓ crash   faults were injected"));
    Ok(())
}

#[test]
fn the_mixed_scenario_passes_on_the_real_queue() -> TestResult {
    assert_passes(&small("mixed")?);
    Ok(())
}

#[test]
fn a_claim_without_row_locks_fails_the_exactly_once_check() -> TestResult {
    let output = load(&[
        "--scenario",
        "claim",
        "--runs",
        "50",
        "--jobs-per-run",
        "10",
        "--workers",
        "8",
        "--sabotage",
        "claim-without-locking",
        "--migrate",
    ])?;

    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("✗ claim   every job executed exactly once"),
        "{text}"
    );
    assert!(text.contains("executed twice"), "{text}");
    assert!(text.contains("RESULT: FAIL"), "{text}");
    Ok(())
}

#[test]
fn a_completion_without_the_lease_check_fails_the_crash_scenario() -> TestResult {
    let output = load(&[
        "--scenario",
        "crash",
        "--runs",
        "20",
        "--jobs-per-run",
        "5",
        "--workers",
        "4",
        "--sabotage",
        "complete-without-lease-check",
        "--migrate",
    ])?;

    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("✗ crash   stale owners cannot complete"),
        "{text}"
    );
    assert!(text.contains("after its lease had expired"), "{text}");
    Ok(())
}

#[test]
fn the_json_report_lists_every_invariant() -> TestResult {
    let path = std::env::temp_dir().join(format!("load-{}.json", uuid::Uuid::new_v4()));
    let path_arg = path.to_string_lossy().into_owned();
    let output = load(&[
        "--scenario",
        "dlq",
        "--runs",
        "10",
        "--jobs-per-run",
        "5",
        "--json",
        &path_arg,
        "--migrate",
    ])?;
    assert_passes(&output);

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    std::fs::remove_file(&path)?;
    assert_eq!(report["passed"], true);
    let invariants = report["scenarios"][0]["invariants"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert_eq!(invariants, 4, "{report}");
    assert!(report["scenarios"][0]["claim_latency"]["p99_ms"].is_number());
    Ok(())
}

#[test]
fn bad_options_are_refused_with_a_message() -> TestResult {
    let output = load(&["--failure-rate", "1.5"])?;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("outside 0.0..=1.0"));
    let output = load(&["--scenario", "everything"])?;
    assert_eq!(output.status.code(), Some(2));
    Ok(())
}

#[tokio::test]
async fn a_database_without_the_migrations_is_refused_unless_asked_to_migrate() -> TestResult {
    // Arrange: an empty database of this test's own.
    let name = format!("load_empty_{}", uuid::Uuid::new_v4().simple());
    let base = database_url();
    let mut admin = PgConnection::connect(&with_database(&base, "postgres")?).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let url = with_database(&base, &name)?;

    // Act
    let refused = Command::new(env!("CARGO_BIN_EXE_load"))
        .args(["--database-url", &url, "--scenario", "claim", "--runs", "2"])
        .output()?;
    let migrated = Command::new(env!("CARGO_BIN_EXE_load"))
        .args([
            "--database-url",
            &url,
            "--scenario",
            "claim",
            "--runs",
            "2",
            "--migrate",
        ])
        .output()?;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;

    // Assert
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--migrate"));
    assert_eq!(migrated.status.code(), Some(0), "{}", stdout(&migrated));
    Ok(())
}

#[tokio::test]
async fn a_killed_execution_leaves_nothing_once_the_next_one_has_started() -> TestResult {
    let mut conn = PgConnection::connect(&database_url()).await?;
    // Make sure the schema exists before we look at it.
    assert_passes(&load(&[
        "--scenario",
        "claim",
        "--runs",
        "1",
        "--jobs-per-run",
        "1",
        "--migrate",
    ])?);
    let before: Vec<String> = sqlx::query_scalar(
        "SELECT namespace FROM queue_namespaces WHERE starts_with(namespace, 'load_')",
    )
    .fetch_all(&mut conn)
    .await?;

    // A long execution, killed once its namespace has rows.
    let mut child = Command::new(env!("CARGO_BIN_EXE_load"))
        .args([
            "--scenario",
            "crash",
            "--runs",
            "200",
            "--jobs-per-run",
            "50",
        ])
        .env("DATABASE_URL", database_url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed = loop {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT n.namespace, (SELECT count(*) FROM queue_jobs j WHERE j.queue_id = ANY(n.queue_ids))
             FROM queue_namespaces n WHERE starts_with(n.namespace, 'load_')",
        )
        .fetch_all(&mut conn)
        .await?;
        if let Some((ns, _)) = rows.iter().find(|(ns, n)| !before.contains(ns) && *n > 0) {
            break ns.clone();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the execution never enqueued anything"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    child.kill()?; // SIGKILL: no cleanup of its own runs
    child.wait()?;

    // The next execution reaps it (the server frees the dead owner's lock when its socket closes).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert_passes(&load(&[
            "--scenario",
            "claim",
            "--runs",
            "1",
            "--jobs-per-run",
            "1",
        ])?);
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM queue_namespaces WHERE namespace = $1")
                .bind(&killed)
                .fetch_one(&mut conn)
                .await?;
        if left == 0 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "{killed} was never reaped");
    }
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM queue_jobs WHERE starts_with(queue_id, $1)")
            .bind(&killed)
            .fetch_one(&mut conn)
            .await?;
    assert_eq!(rows, 0, "rows of the killed execution remain");
    Ok(())
}
