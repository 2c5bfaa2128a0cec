//! crash: workers killed at random points (mid-claim, mid-job, mid-commit) and workers that
//! stall past their lease (heartbeats too) then try to complete; short leases expire, a rescuer
//! makes the rows claimable again, and every job still completes exactly once.
//!
//! Workers are tasks of this process aborted every 40 ms, or with `--processes N` real worker
//! processes ([`processes`]) killed with SIGKILL and restarted, whose stalls hang the whole
//! process.

mod child;
mod processes;

use std::time::Duration;

use queue::{ClaimedJob, JobStatus, NewJob, Queue, QueueConfig};
use serde_json::json;

use super::claim::{completed_once, no_job_lost, report, with_example};
use super::engine::{Decision, Engine};
use crate::cli::Scenario;
use crate::context::Context;
use crate::ops::to_sqlx;
use crate::report::{Invariant, ScenarioReport};

pub use child::run as worker_process;

const LEASE: Duration = Duration::from_millis(500);

/// The crash scenario's queue timing (short leases), in this process and in worker processes.
fn config() -> QueueConfig {
    QueueConfig {
        lease: LEASE,
        ..QueueConfig::default()
    }
}

/// The crash scenario's job code, in this process and in worker processes.
async fn job(job: ClaimedJob) -> Decision {
    // One job in 25 hangs on its first attempt until well past its lease.
    if job.attempts == 1 && job.payload["stall"].as_bool() == Some(true) {
        return Decision::Stall(LEASE * 3);
    }
    let work = 5 + rand::random::<u64>() % 20;
    tokio::time::sleep(Duration::from_millis(work)).await;
    Decision::Complete {
        entries: vec!["done".to_owned()],
        follow_up: Vec::new(),
    }
}

pub async fn run(ctx: &Context) -> anyhow::Result<ScenarioReport> {
    let mut engine = Engine::new(ctx, Scenario::Crash, config(), job).await?;
    let (runs, per_run) = (ctx.args.runs, ctx.args.jobs_per_run);
    let total = i64::from(runs) * i64::from(per_run);

    let stop = engine.stop_token();
    // Chaos: worker processes killed and restarted, or worker tasks aborted every 40 ms.
    let supervisor = match ctx.args.processes {
        Some(n) => {
            engine.in_process_workers = 0;
            Some(processes::Supervisor::start(ctx, &engine, n)?)
        }
        None => None,
    };
    let chaos = supervisor.is_none().then(|| {
        let (engine, stop) = (engine.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(40)) => engine.crash_random_worker(),
                }
            }
        })
    });
    // The queue crate's rescuer, run far more often than a service would.
    let rescuer = {
        let (engine, stop) = (engine.clone(), stop.clone());
        let rescuer = queue::maintenance::Rescuer::new(engine.queue().clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                if let Ok(Some(rescued)) = rescuer.run_once().await {
                    engine.counters.add_n("rescued", rescued.len() as u64);
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        })
    };

    let driven = engine
        .drive(
            ctx,
            "crash",
            runs,
            move |run, run_ref| {
                (0..per_run)
                    .map(|i| {
                        let stall = (run * per_run + i) % 25 == 0;
                        NewJob::new(json!({ "run": run, "i": i, "stall": stall }))
                            .job_ref(run_ref)
                            .max_attempts(50)
                    })
                    .collect()
            },
            move |engine, _, _, ids| async move {
                let n = engine.queue().count_finished(&ids).await.map_err(to_sqlx)?;
                Ok(n == i64::from(per_run))
            },
        )
        .await;
    if let Some(chaos) = chaos {
        let _ = chaos.await;
    }
    let _ = rescuer.await;
    // Zombies may still be asleep: let them try, since their attempt is what is being checked.
    engine.wait_zombies().await;
    let leftovers = match supervisor {
        Some(supervisor) => Some(supervisor.finish(ctx).await),
        None => None,
    };

    let stats = Queue::new(ctx.admin.clone(), engine.queue().id().clone())
        .stats()
        .await?;
    let ledger = engine.ledger_counts(ctx).await?;
    let stuck = driven.log.stuck_runs();
    let c = &engine.counters;
    let mut invariants = vec![
        faults_injected(c, ctx.args.processes),
        Invariant::check(
            "stale owners cannot complete",
            c.get("zombie_completion_accepted") == 0,
            with_example(
                format!(
                    "{} stale completions refused, {} accepted",
                    c.get("zombie_completion_rejected"),
                    c.get("zombie_completion_accepted")
                ),
                c.example("zombie_completion_accepted"),
            ),
        ),
        completed_once(
            c,
            ledger.get("done").copied().unwrap_or(0),
            stats.count(JobStatus::Completed),
            total,
        ),
        no_job_lost(&stats, &stuck, 0),
    ];
    invariants.extend(leftovers);
    Ok(report(
        Scenario::Crash,
        runs,
        total,
        &driven,
        &engine,
        invariants,
    ))
}

fn faults_injected(c: &crate::stats::Counters, processes: Option<u32>) -> Invariant {
    match processes {
        None => Invariant::check(
            "faults were injected",
            c.get("workers_aborted") > 0 && c.get("stalled_workers") > 0,
            format!(
                "{} workers aborted, {} stalled past their lease, {} rows rescued",
                c.get("workers_aborted"),
                c.get("stalled_workers"),
                c.get("rescued")
            ),
        ),
        Some(n) => Invariant::check(
            "faults were injected",
            c.get("processes_killed") > 0 && c.get("processes_hung") > 0,
            format!(
                "{} of {} worker processes started were killed with SIGKILL, {} hung past their \
                 lease ({} jobs stalled), {} rows rescued; {n} at a time",
                c.get("processes_killed"),
                c.get("processes_started"),
                c.get("processes_hung"),
                c.get("stalled_workers"),
                c.get("rescued")
            ),
        ),
    }
}
