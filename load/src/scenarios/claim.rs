//! claim and pool: many runs enqueue no-op jobs that workers claim and complete. `claim` judges
//! exactly-once execution through the ledger; `pool` also judges connection use on a small pool.

use std::time::Duration;

use queue::{JobStatus, NewJob, Queue, QueueConfig};
use serde_json::json;

use super::engine::{Decision, Engine};
use crate::cli::Scenario;
use crate::context::Context;
use crate::ops::to_sqlx;
use crate::report::timeline::Timeline;
use crate::report::{Invariant, ScenarioReport};

pub async fn run(ctx: &Context, scenario: Scenario) -> anyhow::Result<ScenarioReport> {
    let config = QueueConfig {
        lease: Duration::from_secs(60),
        ..QueueConfig::default()
    };
    let mut engine = Engine::new(ctx, scenario, config, |_job| async {
        Decision::Complete {
            entries: vec!["done".to_owned()],
            follow_up: Vec::new(),
        }
    })
    .await?;
    engine.ledger_exec = true;
    let (runs, per_run) = (ctx.args.runs, ctx.args.jobs_per_run);
    let total = i64::from(runs) * i64::from(per_run);
    let label = if scenario == Scenario::Pool {
        "pool"
    } else {
        "claim"
    };

    let driven = engine
        .drive(
            ctx,
            label,
            runs,
            move |run, run_ref| {
                (0..per_run)
                    .map(|i| NewJob::new(json!({ "run": run, "i": i })).job_ref(run_ref))
                    .collect()
            },
            move |engine, _, _, ids| async move {
                let n = engine.queue().count_finished(&ids).await.map_err(to_sqlx)?;
                Ok(n == i64::from(per_run))
            },
        )
        .await;

    let ledger = engine.ledger_counts(ctx).await?;
    let stats = Queue::new(ctx.admin.clone(), engine.queue().id().clone())
        .stats()
        .await?;
    let c = &engine.counters;
    let stuck = driven.log.stuck_runs();
    let executed = ledger.get("exec").copied().unwrap_or(0);
    let done = ledger.get("done").copied().unwrap_or(0);
    let completed = stats.count(JobStatus::Completed);
    let mut invariants = vec![
        Invariant::check(
            "every job executed exactly once",
            executed == total && c.get("duplicate_execution") == 0,
            with_example(
                format!(
                    "{executed}/{total} executed, {} duplicate executions",
                    c.get("duplicate_execution")
                ),
                c.example("duplicate_execution"),
            ),
        ),
        completed_once(c, done, completed, total),
        no_job_lost(&stats, &stuck, 0),
    ];
    if scenario == Scenario::Pool {
        let waits = engine.acquire_wait.percentiles();
        invariants.push(Invariant::check(
            "no pool acquire timed out",
            c.get("acquire_timeout") == 0,
            with_example(
                format!(
                    "{} timeouts; waits p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} samples",
                    c.get("acquire_timeout"),
                    waits.p50_ms,
                    waits.p99_ms,
                    waits.max_ms,
                    waits.count
                ),
                c.example("acquire_timeout"),
            ),
        ));
        let max = &driven.max_connections;
        invariants.push(Invariant::check(
            "connections never above the pool budget",
            max.total <= i64::from(ctx.args.pool_size),
            format!(
                "at most {} of this execution's connections open at once in pg_stat_activity \
                 ({}; bookkeeping apart), budget {}",
                max.total,
                if max.by_role.is_empty() {
                    "none".to_owned()
                } else {
                    max.roles()
                },
                ctx.args.pool_size
            ),
        ));
    }
    Ok(report(scenario, runs, total, &driven, &engine, invariants))
}

/// Each completion in the ledger once, matching the completed rows.
pub(super) fn completed_once(
    c: &crate::stats::Counters,
    done: i64,
    completed: i64,
    expected: i64,
) -> Invariant {
    Invariant::check(
        "every job completed exactly once",
        done == expected && completed == expected && c.get("duplicate_completion") == 0,
        with_example(
            format!(
                "{done}/{expected} completions in the ledger, {completed} rows completed, {} duplicate completions",
                c.get("duplicate_completion")
            ),
            c.example("duplicate_completion"),
        ),
    )
}

/// Nothing left unfinished, no unexpected dead rows, no stuck run.
pub(super) fn no_job_lost(
    stats: &queue::QueueStats,
    stuck: &[String],
    expected_dead: i64,
) -> Invariant {
    let dead = stats.count(JobStatus::Dead);
    Invariant::check(
        "no job lost or stuck",
        stats.depth() == 0 && dead == expected_dead && stuck.is_empty(),
        format!(
            "{} left unfinished, {dead} dead (expected {expected_dead}), {} runs stuck{}",
            stats.depth(),
            stuck.len(),
            stuck
                .first()
                .map(|s| format!("; first: {s}"))
                .unwrap_or_default()
        ),
    )
}

pub(super) fn report(
    scenario: Scenario,
    runs: u32,
    jobs: i64,
    driven: &super::engine::Driven,
    engine: &Engine,
    invariants: Vec<Invariant>,
) -> ScenarioReport {
    let secs = driven.elapsed.as_secs_f64();
    let timeline = Timeline::build(
        driven.started,
        driven.elapsed,
        &engine.finished,
        &engine.claim_latency,
        &engine.e2e_latency,
    );
    ScenarioReport {
        scenario,
        runs,
        jobs: jobs.max(0) as u64,
        elapsed_s: secs,
        throughput_jobs_per_s: jobs as f64 / secs.max(1e-9),
        claim_latency: engine.claim_latency.percentiles(),
        end_to_end_latency: engine.e2e_latency.percentiles(),
        acquire_wait: engine.acquire_wait.percentiles(),
        max_connections_seen: driven.max_connections.total,
        errors: engine.counters.snapshot(),
        invariants,
        timeline,
    }
}

pub(super) fn with_example(detail: String, example: Option<String>) -> String {
    match example {
        Some(example) => format!("{detail}; first: {example}"),
        None => detail,
    }
}
