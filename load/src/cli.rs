//! Command-line options.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Serialize;

/// Load suite for the PostgreSQL queue: many concurrent runs, every invariant checked.
///
/// Safe against a shared staging database: it works in a namespace of its own, touches nothing
/// else, removes everything it made at the end, and removes what a killed earlier execution left.
#[derive(Debug, Clone, Parser)]
#[command(name = "load", version)]
pub struct Args {
    /// PostgreSQL to load.
    #[arg(long, env = "DATABASE_URL", default_value = queue::db::DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// Concurrent runs per scenario (each run enqueues its jobs and waits for them).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub runs: u32,

    /// Concurrent workers claiming jobs.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub workers: u32,

    /// Connections in the pool shared by every run and worker.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub pool_size: u32,

    /// Jobs each run enqueues.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub jobs_per_run: u32,

    /// Share of jobs given an injected failure (dlq and mixed scenarios), 0.0 to 1.0.
    #[arg(long, default_value_t = 0.2, value_parser = parse_rate)]
    pub failure_rate: f64,

    /// Which scenario to run.
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    pub scenario: Scenario,

    /// Longest a scenario may take before it is reported as stuck (e.g. 120s, 5m).
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    pub duration: Duration,

    /// How long the retention scenario streams jobs (e.g. 10m; at least 90s, so the table's
    /// size after its 30 s warm-up can be compared with its size at the end).
    #[arg(long, default_value = "90s", value_parser = parse_duration)]
    pub steady_for: Duration,

    /// Also write the report as JSON to this path.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Also write the report as one self-contained HTML page (plots over time, invariants) to
    /// this path; it opens in any browser without network access.
    #[arg(long)]
    pub html: Option<PathBuf>,

    /// Crash scenario: run the workers in N processes of their own (this binary again), killed
    /// with SIGKILL at random points and restarted, instead of tasks aborted in this process.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub processes: Option<u32>,

    /// Internal: run as one worker process of `--processes` on this queue, reporting to the
    /// parent on stdout, until stdin closes.
    #[arg(long, hide = true, value_name = "QUEUE")]
    pub worker_of: Option<String>,

    /// Apply the migrations when the database lacks them (otherwise refuse to run).
    #[arg(long)]
    pub migrate: bool,

    /// Break the queue on purpose, to see the checks catch it (for testing the load suite).
    #[arg(long, value_enum, default_value_t = Sabotage::None)]
    pub sabotage: Sabotage,
}

/// A scenario to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Every job executed to completion exactly once, none lost.
    Claim,
    /// Many runs on a small pool: no acquire timeouts, connections within the budget.
    Pool,
    /// Injected permanent failures end dead, transient ones retried to success.
    Dlq,
    /// Workers aborted mid-job and stalled past their lease: every job still completes once.
    Crash,
    /// Multi-step jobs passing data forward; a failing step stops its job and runs its cleanup.
    Mixed,
    /// All of the above, in order.
    All,
    /// A steady stream for `--steady-for` with the queue's maintenance on: finished rows are
    /// pruned and the table stays the same size (not part of `all`).
    Retention,
}

/// A deliberate defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sabotage {
    /// The real queue.
    None,
    /// Claim with a plain SELECT then UPDATE: no row locks, no SKIP LOCKED.
    ClaimWithoutLocking,
    /// Complete by id alone, without checking the lease token.
    CompleteWithoutLeaseCheck,
    /// Give the workers a second pool as large as `--pool-size`, ignoring the budget.
    PoolOverBudget,
    /// Never prune finished rows (the retention scenario's table then grows).
    KeepFinished,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is outside 0.0..=1.0"))
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s or 5m"))?;
    let secs = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use ms, s, m or h")),
    };
    if secs <= 0.0 || !secs.is_finite() {
        return Err(format!("{s:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_reject_nonsense() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("12"), Ok(Duration::from_secs(12)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn failure_rates_outside_zero_to_one_are_refused() {
        assert!(parse_rate("0.3").is_ok());
        assert!(parse_rate("1.5").is_err());
        assert!(parse_rate("-0.1").is_err());
        assert!(parse_rate("NaN").is_err());
    }
}
