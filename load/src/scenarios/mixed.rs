//! mixed: runs of multi-step jobs. Each step passes its result to the next; a run given a failing
//! step stops there (no later step runs) and its cleanup job runs exactly once.

use std::time::Duration;

use queue::{JobFailure, JobRecord, JobStatus, NewJob, Queue, QueueConfig};
use serde_json::json;

use super::claim::{completed_once, report, with_example};
use super::engine::{Decision, Engine};
use crate::cli::Scenario;
use crate::context::Context;
use crate::ops::ledger_entries;
use crate::ops::to_sqlx;
use crate::report::{Invariant, ScenarioReport};

const STEPS: i64 = 3;

/// One step's computation; the final value proves every step saw its predecessor's output.
fn step(acc: i64, step: i64) -> i64 {
    acc.wrapping_mul(31).wrapping_add(step + 7)
}

/// The step run `run` fails at, if any: deterministic so the checks know.
fn failing_step(run: u32, failure_rate: f64) -> Option<i64> {
    let x = (u64::from(run).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
    (x < failure_rate).then_some(i64::from(run % 3))
}

fn step_job(run_ref: uuid::Uuid, run: u32, n: i64, acc: i64, fail_at: Option<i64>) -> NewJob {
    NewJob::new(json!({ "kind": "step", "run": run, "step": n, "acc": acc, "fail_at": fail_at }))
        .job_ref(run_ref)
        .max_attempts(3)
}

fn handle(job: &queue::ClaimedJob) -> Decision {
    let p = &job.payload;
    if p["kind"] == "cleanup" {
        return Decision::Complete {
            entries: vec!["done".to_owned(), "cleanup".to_owned()],
            follow_up: Vec::new(),
        };
    }
    let (n, acc) = (
        p["step"].as_i64().unwrap_or(0),
        p["acc"].as_i64().unwrap_or(0),
    );
    let run = p["run"]
        .as_u64()
        .and_then(|r| u32::try_from(r).ok())
        .unwrap_or(0);
    let fail_at = p["fail_at"].as_i64();
    let Some(run_ref) = job.job_ref else {
        return Decision::Fail {
            failure: JobFailure::permanent("step without a run reference"),
            follow_up: Vec::new(),
        };
    };
    if fail_at == Some(n) {
        return Decision::Fail {
            failure: JobFailure::permanent(format!("step {n} failed (injected)")),
            follow_up: vec![NewJob::new(
                json!({ "kind": "cleanup", "run": run, "failed_step": n }),
            )
            .job_ref(run_ref)],
        };
    }
    let acc = step(acc, n);
    if n + 1 < STEPS {
        Decision::Complete {
            entries: vec!["done".to_owned()],
            follow_up: vec![step_job(run_ref, run, n + 1, acc, fail_at)],
        }
    } else {
        Decision::Complete {
            entries: vec!["done".to_owned(), format!("result={acc}")],
            follow_up: Vec::new(),
        }
    }
}

/// Checks a finished run's rows; `Err` says what is wrong.
async fn check_run(
    engine: &Engine,
    run: u32,
    rows: &[JobRecord],
    fail_at: Option<i64>,
) -> Result<(), String> {
    let steps: Vec<&JobRecord> = rows
        .iter()
        .filter(|r| r.payload["kind"] == "step")
        .collect();
    let cleanups: Vec<&JobRecord> = rows
        .iter()
        .filter(|r| r.payload["kind"] == "cleanup")
        .collect();
    let step_of = |r: &JobRecord| r.payload["step"].as_i64().unwrap_or(-1);
    match fail_at {
        None => {
            if steps.len() as i64 != STEPS || !cleanups.is_empty() {
                return Err(format!(
                    "run {run}: {} steps and {} cleanups, expected {STEPS} and 0",
                    steps.len(),
                    cleanups.len()
                ));
            }
            let last = steps
                .iter()
                .find(|r| step_of(r) == STEPS - 1)
                .ok_or(format!("run {run}: no final step"))?;
            let expected = (0..STEPS).fold(i64::from(run), step);
            let entries = ledger_entries(engine.queue().pool(), &engine.ledger, last.id)
                .await
                .map_err(|e| e.to_string())?;
            if !entries.contains(&format!("result={expected}")) {
                return Err(format!(
                    "run {run}: final result {entries:?}, expected result={expected}"
                ));
            }
        }
        Some(failed) => {
            if let Some(late) = steps.iter().find(|r| step_of(r) > failed) {
                return Err(format!(
                    "run {run}: step {} ran after step {failed} failed",
                    step_of(late)
                ));
            }
            let failed_row = steps
                .iter()
                .find(|r| step_of(r) == failed)
                .ok_or(format!("run {run}: failing step {failed} missing"))?;
            if failed_row.status != JobStatus::Dead {
                return Err(format!(
                    "run {run}: failing step is {:?}, expected dead",
                    failed_row.status
                ));
            }
            if cleanups.len() != 1 || cleanups[0].status != JobStatus::Completed {
                return Err(format!(
                    "run {run}: {} cleanup rows, expected 1 completed",
                    cleanups.len()
                ));
            }
            let entries = ledger_entries(engine.queue().pool(), &engine.ledger, cleanups[0].id)
                .await
                .map_err(|e| e.to_string())?;
            if entries.iter().filter(|e| *e == "cleanup").count() != 1 {
                return Err(format!("run {run}: cleanup ledger {entries:?}"));
            }
        }
    }
    Ok(())
}

pub async fn run(ctx: &Context) -> anyhow::Result<ScenarioReport> {
    let config = QueueConfig {
        lease: Duration::from_secs(60),
        ..QueueConfig::default()
    };
    let engine = Engine::new(
        ctx,
        Scenario::Mixed,
        config,
        |job| async move { handle(&job) },
    )
    .await?;
    // 120 runs at the default 200: mixed runs are longer chains.
    let runs = (ctx.args.runs * 3 / 5).max(1);
    let rate = ctx.args.failure_rate;
    let failing = (0..runs)
        .filter(|r| failing_step(*r, rate).is_some())
        .count() as i64;
    let steps_expected: i64 = (0..runs)
        .map(|r| failing_step(r, rate).map_or(STEPS, |s| s + 1))
        .sum();

    let driven = engine
        .drive(
            ctx,
            "mixed",
            runs,
            move |run, run_ref| {
                vec![step_job(
                    run_ref,
                    run,
                    0,
                    i64::from(run),
                    failing_step(run, rate),
                )]
            },
            move |engine, run, run_ref, _| async move {
                let rows = engine.queue().list_by_ref(run_ref).await.map_err(to_sqlx)?;
                let fail_at = failing_step(run, rate);
                let finished = match fail_at {
                    None => rows.iter().any(|r| {
                        r.payload["step"] == STEPS - 1 && r.status == JobStatus::Completed
                    }),
                    Some(_) => rows.iter().any(|r| {
                        r.payload["kind"] == "cleanup" && r.status == JobStatus::Completed
                    }),
                };
                if finished {
                    if let Err(wrong) = check_run(&engine, run, &rows, fail_at).await {
                        engine.counters.add("wrong_run", || wrong);
                    }
                }
                Ok(finished)
            },
        )
        .await;

    let stats = Queue::new(ctx.admin.clone(), engine.queue().id().clone())
        .stats()
        .await?;
    let ledger = engine.ledger_counts(ctx).await?;
    let stuck = driven.log.stuck_runs();
    let c = &engine.counters;
    let completed_expected = steps_expected - failing + failing; // steps that completed + cleanups
    let invariants = vec![
        Invariant::check(
            "every run finished with the data its steps passed forward",
            stuck.is_empty() && c.get("wrong_run") == 0,
            with_example(
                format!(
                    "{} runs ({failing} with a failing step), {} stuck, {} wrong",
                    runs,
                    stuck.len(),
                    c.get("wrong_run")
                ),
                c.example("wrong_run").or(stuck.first().cloned()),
            ),
        ),
        Invariant::check(
            "a failing step stops its job and its cleanup runs once",
            stats.count(JobStatus::Dead) == failing
                && ledger.get("cleanup").copied().unwrap_or(0) == failing,
            format!(
                "{} dead steps and {} cleanups for {failing} failing runs",
                stats.count(JobStatus::Dead),
                ledger.get("cleanup").copied().unwrap_or(0)
            ),
        ),
        completed_once(
            c,
            ledger.get("done").copied().unwrap_or(0),
            stats.count(JobStatus::Completed),
            completed_expected,
        ),
    ];
    Ok(report(
        Scenario::Mixed,
        runs,
        steps_expected + failing,
        &driven,
        &engine,
        invariants,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_without_failure_computes_its_chain() {
        assert_eq!((0..STEPS).fold(1, step), step(step(step(1, 0), 1), 2));
        assert!((0..1000).all(|r| failing_step(r, 0.0).is_none()));
        assert!((0..1000).all(|r| failing_step(r, 1.0).is_some()));
    }
}
