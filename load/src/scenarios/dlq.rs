//! dlq: injected permanent failures all end dead with their error; injected transient failures
//! are retried to success; every count exact.

use std::time::Duration;

use queue::{JobFailure, JobRecord, JobStatus, NewJob, Queue, QueueConfig, RetryPolicy};
use serde_json::json;

use super::claim::{completed_once, no_job_lost, report};
use super::engine::{Decision, Engine};
use crate::cli::Scenario;
use crate::context::Context;
use crate::ops::to_sqlx;
use crate::report::{Invariant, ScenarioReport};

/// What job `i` of run `run` is told to do: deterministic, so the checks know what to expect.
fn mode(run: u32, i: u32, failure_rate: f64) -> (&'static str, i64) {
    let x = hash(run, i);
    if x < failure_rate / 2.0 {
        ("permanent", 0)
    } else if x < failure_rate {
        ("transient", 1 + i64::from((run ^ i) % 2))
    } else {
        ("ok", 0)
    }
}

/// A number in [0, 1) from (run, i).
fn hash(run: u32, i: u32) -> f64 {
    let mut h = u64::from(run).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(i);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

pub async fn run(ctx: &Context) -> anyhow::Result<ScenarioReport> {
    let config = QueueConfig {
        lease: Duration::from_secs(60),
        retry: RetryPolicy {
            base: Duration::from_millis(20),
            factor: 2.0,
            max: Duration::from_millis(200),
            jitter: 0.5,
        },
        poll_interval: Duration::from_millis(100),
        ..QueueConfig::default()
    };
    let engine = Engine::new(ctx, Scenario::Dlq, config, |job| async move {
        let mode = job.payload["mode"].as_str().unwrap_or("ok");
        let fail_times = job.payload["fail_times"].as_i64().unwrap_or(0);
        match mode {
            "permanent" => Decision::Fail {
                failure: JobFailure::permanent("injected permanent failure"),
                follow_up: Vec::new(),
            },
            "transient" if i64::from(job.attempts) <= fail_times => Decision::Fail {
                failure: JobFailure::transient(format!(
                    "injected transient failure, attempt {}",
                    job.attempts
                )),
                follow_up: Vec::new(),
            },
            _ => Decision::Complete {
                entries: vec!["done".to_owned()],
                follow_up: Vec::new(),
            },
        }
    })
    .await?;
    let (runs, per_run, rate) = (ctx.args.runs, ctx.args.jobs_per_run, ctx.args.failure_rate);
    let total = i64::from(runs) * i64::from(per_run);
    let expected = |wanted: &str| {
        (0..runs)
            .flat_map(|r| (0..per_run).map(move |i| mode(r, i, rate).0))
            .filter(|m| *m == wanted)
            .count() as i64
    };
    let (permanent, transient) = (expected("permanent"), expected("transient"));

    let driven = engine
        .drive(
            ctx,
            "dlq",
            runs,
            move |run, run_ref| {
                (0..per_run)
                    .map(|i| {
                        let (mode, fail_times) = mode(run, i, rate);
                        NewJob::new(json!({ "mode": mode, "fail_times": fail_times }))
                            .job_ref(run_ref)
                            .max_attempts(4)
                    })
                    .collect()
            },
            move |engine, _, _, ids| async move {
                let n = engine.queue().count_finished(&ids).await.map_err(to_sqlx)?;
                Ok(n == i64::from(per_run))
            },
        )
        .await;

    let admin_queue = Queue::new(ctx.admin.clone(), engine.queue().id().clone());
    let stats = admin_queue.stats().await?;
    let dead = admin_queue.list(JobStatus::Dead, total + 1).await?;
    let completed = admin_queue.list(JobStatus::Completed, total + 1).await?;
    let ledger = engine.ledger_counts(ctx).await?;
    let stuck = driven.log.stuck_runs();

    let bad_dead: Vec<&JobRecord> = dead
        .iter()
        .filter(|r| {
            r.payload["mode"] != "permanent"
                || r.attempts != 1
                || r.errors.as_array().map(Vec::len) != Some(1)
                || r.errors[0]["kind"] != "permanent"
                || r.last_error.as_deref() != Some("injected permanent failure")
        })
        .collect();
    let retried: Vec<&JobRecord> = completed
        .iter()
        .filter(|r| r.payload["mode"] == "transient")
        .collect();
    let bad_retried: Vec<&JobRecord> = retried
        .iter()
        .copied()
        .filter(|r| {
            let fail_times = r.payload["fail_times"].as_i64().unwrap_or(-1);
            i64::from(r.attempts) != fail_times + 1
                || r.errors.as_array().map(|e| e.len() as i64) != Some(fail_times)
        })
        .collect();
    let c = &engine.counters;
    let invariants = vec![
        Invariant::check(
            "permanent failures all dead with their error",
            dead.len() as i64 == permanent && bad_dead.is_empty(),
            format!(
                "{} dead of {permanent} injected; {} dead rows wrong{}",
                dead.len(),
                bad_dead.len(),
                bad_dead
                    .first()
                    .map(|r| format!(
                        "; first: row {} mode {} attempts {} errors {}",
                        r.id, r.payload["mode"], r.attempts, r.errors
                    ))
                    .unwrap_or_default()
            ),
        ),
        Invariant::check(
            "transient failures retried to success",
            retried.len() as i64 == transient && bad_retried.is_empty(),
            format!(
                "{} of {transient} injected completed after retries ({} retries recorded); {} with wrong attempt or error counts{}",
                retried.len(),
                c.get("retried"),
                bad_retried.len(),
                bad_retried
                    .first()
                    .map(|r| format!("; first: row {} attempts {} errors {}", r.id, r.attempts, r.errors))
                    .unwrap_or_default()
            ),
        ),
        completed_once(
            c,
            ledger.get("done").copied().unwrap_or(0),
            stats.count(JobStatus::Completed),
            total - permanent,
        ),
        no_job_lost(&stats, &stuck, permanent),
    ];
    Ok(report(
        Scenario::Dlq,
        runs,
        total,
        &driven,
        &engine,
        invariants,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injected_failures_follow_the_rate() {
        let n = 10_000u32;
        let failing = (0..n).filter(|i| mode(*i, 0, 0.2).0 != "ok").count() as f64;
        assert!((failing / f64::from(n) - 0.2).abs() < 0.02, "{failing}");
        assert!((0..n).all(|i| mode(i, 3, 0.0).0 == "ok"));
    }
}
