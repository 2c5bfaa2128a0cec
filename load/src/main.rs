//! `load`: drives many concurrent runs against a PostgreSQL queue (local or staging) and checks
//! that it holds: exactly-once claiming, connection-pool limits, dead-letter behaviour, crash
//! recovery and multi-step flows. Prints a report and exits non-zero when an invariant breaks.

mod cli;
mod context;
mod db;
mod ops;
mod report;
mod scenarios;
mod stats;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Args, Scenario};
use crate::context::Context;
use crate::report::Report;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOAD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Some(queue) = &args.worker_of {
        return match scenarios::worker_process(&args, queue).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("load worker: {err:#}");
                ExitCode::from(2)
            }
        };
    }
    match run(args).await {
        Ok(report) if report.passed() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(err) => {
            eprintln!("load: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<Report> {
    let scenarios = args.scenario.expand();
    if args.processes.is_some() && !scenarios.contains(&Scenario::Crash) {
        anyhow::bail!("--processes applies to the crash scenario (--scenario crash or all)");
    }
    let ctx = Context::start(&args).await?;
    let mut report = Report::new(&args, ctx.namespace(), ctx.reaped);
    for scenario in scenarios {
        let result = scenarios::run(&ctx, scenario).await;
        match result {
            Ok(scenario_report) => report.scenarios.push(scenario_report),
            Err(err) => report
                .scenarios
                .push(report::ScenarioReport::aborted(scenario, &err)),
        }
    }
    ctx.finish().await?;
    report.print();
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, report::html::render(&report))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(report)
}

impl Scenario {
    /// The scenarios one `--scenario` value stands for.
    fn expand(self) -> Vec<Scenario> {
        match self {
            Scenario::All => vec![
                Scenario::Claim,
                Scenario::Pool,
                Scenario::Dlq,
                Scenario::Crash,
                Scenario::Mixed,
            ],
            one => vec![one],
        }
    }
}
