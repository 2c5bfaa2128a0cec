//! The scenarios, and the engine they share: workers that claim, execute and complete jobs, runs
//! that enqueue and wait, and the checks afterwards.

mod claim;
mod crash;
mod dlq;
mod engine;
mod mixed;
mod retention;

use crate::cli::Scenario;
use crate::context::Context;
use crate::report::ScenarioReport;

pub use crash::worker_process;

/// Runs one scenario and reports on it.
pub async fn run(ctx: &Context, scenario: Scenario) -> anyhow::Result<ScenarioReport> {
    match scenario {
        Scenario::Claim => claim::run(ctx, Scenario::Claim).await,
        // The pool scenario is the claim flow judged on its connection use.
        Scenario::Pool => claim::run(ctx, Scenario::Pool).await,
        Scenario::Dlq => dlq::run(ctx).await,
        Scenario::Crash => crash::run(ctx).await,
        Scenario::Mixed => mixed::run(ctx).await,
        Scenario::Retention => retention::run(ctx).await,
        Scenario::All => anyhow::bail!("`all` is expanded before running"),
    }
}
