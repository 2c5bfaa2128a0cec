//! The crash scenario with real worker processes (`--processes`): SIGKILLed and restarted, the
//! same exactly-once checks hold (and catch a completion without the lease check), and a killed
//! execution takes its worker processes and their sessions with it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

use super::{assert_passes, database_url, load, small_with, stdout, TestResult};

#[test]
fn the_crash_scenario_with_worker_processes_passes_on_the_real_queue() -> TestResult {
    let output = small_with("crash", &["--processes", "3"])?;

    assert_passes(&output);
    let text = stdout(&output);
    assert!(text.contains("3 worker processes"), "{text}");
    assert!(text.contains("✓ crash   faults were injected"), "{text}");
    assert!(text.contains("killed with SIGKILL"), "{text}");
    assert!(
        text.contains("✓ crash   killed worker processes left nothing behind"),
        "{text}"
    );
    Ok(())
}

#[test]
fn a_completion_without_the_lease_check_fails_the_crash_scenario_with_worker_processes(
) -> TestResult {
    let output = small_with(
        "crash",
        &[
            "--processes",
            "2",
            "--sabotage",
            "complete-without-lease-check",
        ],
    )?;

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
fn processes_without_the_crash_scenario_are_refused() -> TestResult {
    let output = load(&["--scenario", "claim", "--processes", "2"])?;

    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("crash scenario"));
    Ok(())
}

#[tokio::test]
async fn a_killed_execution_takes_its_worker_processes_and_their_sessions_with_it() -> TestResult {
    let mut conn = PgConnection::connect(&database_url()).await?;
    // Make sure the schema exists before the long execution starts.
    assert_passes(&load(&[
        "--scenario",
        "claim",
        "--runs",
        "1",
        "--jobs-per-run",
        "1",
        "--migrate",
    ])?);
    let mut parent = Command::new(env!("CARGO_BIN_EXE_load"))
        .args([
            "--scenario",
            "crash",
            "--processes",
            "2",
            "--runs",
            "200",
            "--jobs-per-run",
            "50",
        ])
        .env("DATABASE_URL", database_url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;

    // Its worker processes (its children, named after its namespace) are at work once their
    // sessions show up.
    let deadline = Instant::now() + Duration::from_secs(60);
    let namespace = loop {
        if let Some(ns) = worker_namespace_of(parent.id())? {
            let sessions: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            )
            .bind(format!("load-worker:{ns}"))
            .fetch_one(&mut conn)
            .await?;
            if sessions > 0 {
                break ns;
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no worker process of the execution showed up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    parent.kill()?; // SIGKILL: the parent runs no cleanup
    parent.wait()?;

    // Its worker processes see their stdin close and exit; their sessions end with them.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sessions: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
                .bind(format!("load-worker:{namespace}"))
                .fetch_one(&mut conn)
                .await?;
        let processes = worker_processes_of(&namespace)?;
        if sessions == 0 && processes == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{processes} worker processes and {sessions} sessions of {namespace} outlived it"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The namespace of the first worker process started by `parent` (from its `--worker-of`).
fn worker_namespace_of(parent: u32) -> anyhow::Result<Option<String>> {
    for pid in pids()? {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // `pid (comm) state ppid ...`: the fields after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(parent) {
            continue;
        }
        let args = process_args(pid);
        if let Some(at) = args.iter().position(|a| a == "--worker-of") {
            let queue = args.get(at + 1).cloned().unwrap_or_default();
            if let Some((ns, _)) = queue.split_once(':') {
                return Ok(Some(ns.to_owned()));
            }
        }
    }
    Ok(None)
}

/// Live processes working `namespace`'s crash queue (`--worker-of <namespace>:crash`).
fn worker_processes_of(namespace: &str) -> anyhow::Result<usize> {
    let queue = format!("{namespace}:crash");
    // An exited process not yet reaped has no command line left, so it does not count.
    Ok(pids()?
        .into_iter()
        .filter(|pid| {
            let args = process_args(*pid);
            args.windows(2)
                .any(|w| w[0] == "--worker-of" && w[1] == queue)
        })
        .count())
}

fn pids() -> anyhow::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        if let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() {
            pids.push(pid);
        }
    }
    Ok(pids)
}

fn process_args(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect()
}
