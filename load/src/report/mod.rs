//! The final report: a table for people, the same as JSON for machines, and as a page with plots
//! over time ([`html`]).

pub mod html;
mod svg;
pub mod timeline;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cli::{Args, Sabotage, Scenario};
use crate::stats::Percentiles;
use timeline::Timeline;

/// Everything one execution found.
#[derive(Debug, Serialize)]
pub struct Report {
    /// This execution's namespace.
    pub namespace: String,
    /// The main options.
    pub runs: u32,
    /// Workers.
    pub workers: u32,
    /// Pool size.
    pub pool_size: u32,
    /// Jobs per run.
    pub jobs_per_run: u32,
    /// Injected failure share.
    pub failure_rate: f64,
    /// Deliberate defect, if any.
    pub sabotage: Sabotage,
    /// Worker processes of the crash scenario (`--processes`), if any.
    pub processes: Option<u32>,
    /// Namespaces of killed earlier executions removed at start.
    pub reaped_namespaces: usize,
    /// One entry per scenario run.
    pub scenarios: Vec<ScenarioReport>,
    /// Whether every invariant held.
    pub passed: bool,
}

/// One scenario's figures and checks.
#[derive(Debug, Serialize)]
pub struct ScenarioReport {
    /// Which.
    pub scenario: Scenario,
    /// Concurrent runs.
    pub runs: u32,
    /// Jobs processed (executed at least once).
    pub jobs: u64,
    /// Wall time.
    pub elapsed_s: f64,
    /// Jobs finished per second.
    pub throughput_jobs_per_s: f64,
    /// Claim statement latency.
    pub claim_latency: Percentiles,
    /// A run's enqueue → all its jobs finished.
    pub end_to_end_latency: Percentiles,
    /// Waits for a pooled connection, sampled by the runs.
    pub acquire_wait: Percentiles,
    /// Most connections of the execution (bookkeeping apart) open at once in
    /// `pg_stat_activity`.
    pub max_connections_seen: i64,
    /// Errors and events by kind.
    pub errors: BTreeMap<String, u64>,
    /// The checks.
    pub invariants: Vec<Invariant>,
    /// Throughput and latencies over time.
    pub timeline: Timeline,
}

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct Invariant {
    /// What must hold.
    pub name: String,
    /// Whether it held.
    pub ok: bool,
    /// The figures behind the verdict, and on failure what broke.
    pub detail: String,
}

impl Invariant {
    /// A check with its verdict.
    pub fn check(name: &str, ok: bool, detail: String) -> Self {
        Self {
            name: name.to_owned(),
            ok,
            detail,
        }
    }
}

impl ScenarioReport {
    /// A scenario that could not finish (setup failed, database gone...).
    pub fn aborted(scenario: Scenario, err: &anyhow::Error) -> Self {
        Self {
            scenario,
            runs: 0,
            jobs: 0,
            elapsed_s: 0.0,
            throughput_jobs_per_s: 0.0,
            claim_latency: Percentiles::default(),
            end_to_end_latency: Percentiles::default(),
            acquire_wait: Percentiles::default(),
            max_connections_seen: 0,
            errors: BTreeMap::new(),
            invariants: vec![Invariant::check(
                "scenario ran to the end",
                false,
                format!("{err:#}"),
            )],
            timeline: Timeline::default(),
        }
    }
}

impl Report {
    /// An empty report for these options.
    pub fn new(args: &Args, namespace: &str, reaped_namespaces: usize) -> Self {
        Self {
            namespace: namespace.to_owned(),
            reaped_namespaces,
            runs: args.runs,
            workers: args.workers,
            pool_size: args.pool_size,
            jobs_per_run: args.jobs_per_run,
            failure_rate: args.failure_rate,
            sabotage: args.sabotage,
            processes: args.processes,
            scenarios: Vec::new(),
            passed: false,
        }
    }

    /// Whether every invariant of every scenario held (and some scenario ran).
    pub fn passed(&self) -> bool {
        !self.scenarios.is_empty()
            && self
                .scenarios
                .iter()
                .all(|s| s.invariants.iter().all(|i| i.ok))
    }

    /// Prints the table to stdout.
    pub fn print(&mut self) {
        self.passed = self.passed();
        println!();
        println!(
            "load report — runs {}, workers {}, pool {}, jobs/run {}, failure rate {}{}{}",
            self.runs,
            self.workers,
            self.pool_size,
            self.jobs_per_run,
            self.failure_rate,
            match self.processes {
                Some(n) => format!(", {n} worker processes"),
                None => String::new(),
            },
            match self.sabotage {
                Sabotage::None => String::new(),
                other => format!(", SABOTAGE {other:?}"),
            }
        );
        println!();
        println!(
            "{:<8} {:>5} {:>7} {:>8} {:>9}  {:<22} {:<24} {:<20} {:>5}",
            "scenario",
            "runs",
            "jobs",
            "time s",
            "jobs/s",
            "claim p50/p95/p99 ms",
            "e2e p50/p95/p99 ms",
            "acquire p50/p99 ms",
            "conns"
        );
        for s in &self.scenarios {
            let c = &s.claim_latency;
            let e = &s.end_to_end_latency;
            let a = &s.acquire_wait;
            println!(
                "{:<8} {:>5} {:>7} {:>8.2} {:>9.0}  {:<22} {:<24} {:<20} {:>5}",
                name(s.scenario),
                s.runs,
                s.jobs,
                s.elapsed_s,
                s.throughput_jobs_per_s,
                format!("{:.1}/{:.1}/{:.1}", c.p50_ms, c.p95_ms, c.p99_ms),
                format!("{:.0}/{:.0}/{:.0}", e.p50_ms, e.p95_ms, e.p99_ms),
                format!("{:.1}/{:.1}", a.p50_ms, a.p99_ms),
                s.max_connections_seen,
            );
        }
        println!();
        println!("invariants");
        for s in &self.scenarios {
            for i in &s.invariants {
                println!(
                    "  {} {:<7} {} — {}",
                    if i.ok { "✓" } else { "✗" },
                    name(s.scenario),
                    i.name,
                    i.detail
                );
            }
        }
        println!();
        println!("errors and events by kind");
        for s in &self.scenarios {
            let list: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "  {:<7} {}",
                name(s.scenario),
                if list.is_empty() {
                    "none".to_owned()
                } else {
                    list.join(", ")
                }
            );
        }
        println!();
        let failed: usize = self
            .scenarios
            .iter()
            .map(|s| s.invariants.iter().filter(|i| !i.ok).count())
            .sum();
        if self.passed {
            println!("RESULT: PASS — every invariant held");
        } else {
            println!("RESULT: FAIL — {failed} invariant(s) broken");
        }
    }
}

/// The scenario's name as on the command line.
pub fn name(s: Scenario) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
