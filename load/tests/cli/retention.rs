//! The retention scenario: the pruner keeps a steady stream's completed rows to the retention
//! window, and without it (`--sabotage keep-finished`) the check fails. Only the per-queue check
//! is asserted on a pass: the size check measures the whole `queue_jobs` table, which the other
//! tests of the run write into at the same time.

use super::{load, stdout, TestResult};

/// The shortest run the scenario accepts.
const STEADY_FOR: &str = "90s";

const PRUNED: &str = "retention completed rows pruned to the retention window";

#[test]
fn the_pruner_keeps_a_steady_streams_completed_rows_to_the_window() -> TestResult {
    let output = load(&[
        "--scenario",
        "retention",
        "--steady-for",
        STEADY_FOR,
        "--migrate",
    ])?;

    let text = stdout(&output);
    assert!(text.contains(&format!("✓ {PRUNED}")), "{text}");
    assert!(
        text.contains("✓ retention every job finished, none dead"),
        "{text}"
    );
    Ok(())
}

#[test]
fn without_the_pruner_the_retention_check_fails() -> TestResult {
    let output = load(&[
        "--scenario",
        "retention",
        "--steady-for",
        STEADY_FOR,
        "--sabotage",
        "keep-finished",
        "--migrate",
    ])?;

    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("✗ {PRUNED}")), "{text}");
    assert!(text.contains("RESULT: FAIL"), "{text}");
    Ok(())
}
