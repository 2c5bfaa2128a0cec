//! The dispatcher of a started worker: claim what fits, run each job in a task of its own, and
//! complete finished jobs in batches together with the next claim.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::execute::{self, Finished};
use super::{as_limit, Handler, Worker};
use crate::{Lease, QueueWaker};

/// A successful job of a handler that records nothing, waiting for its batched completion; it
/// keeps its slot until then, so a worker never holds more rows than its concurrency.
pub(super) type Done<O> = (Finished<O>, OwnedSemaphorePermit);

/// Wait after a failed claim or completion statement (e.g. PostgreSQL restarting).
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// What the dispatcher leaves to shutdown: the job tasks still running, and the completions
/// that arrived or will arrive.
pub(super) struct Stopped<O> {
    pub(super) tasks: JoinSet<()>,
    pub(super) done_rx: mpsc::UnboundedReceiver<Done<O>>,
    pub(super) pending: Vec<Done<O>>,
}

/// Claims and runs jobs until `stop`.
pub(super) async fn dispatch<H: Handler>(
    worker: Worker<H>,
    waker: Arc<QueueWaker>,
    stop: CancellationToken,
) -> Stopped<H::Output> {
    let slots = Arc::new(Semaphore::new(worker.config.concurrency));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done<H::Output>>();
    let mut tasks = JoinSet::new();
    let mut pending: Vec<Done<H::Output>> = Vec::new();
    let mut wake = waker.subscribe(worker.queue.id());
    let poll = worker.queue.config().poll_interval;
    loop {
        while tasks.try_join_next().is_some() {}
        while let Ok(done) = done_rx.try_recv() {
            pending.push(done);
        }
        if stop.is_cancelled() {
            break;
        }
        // A dependency is down: finish what is pending, claim nothing, probe when due.
        let paused = worker.breaker.next_probe();
        if let (Some(due), true) = (paused, pending.is_empty()) {
            tokio::select! {
                () = tokio::time::sleep_until(due) => {
                    let probed = worker.handler.probe().await;
                    worker.breaker.probed(probed);
                }
                done = done_rx.recv() => pending.extend(done),
                () = stop.cancelled() => break,
            }
            continue;
        }
        let mut permits = if paused.is_some() {
            Vec::new()
        } else {
            free_slots(&slots)
        };
        if permits.is_empty() && pending.is_empty() {
            // Every slot runs a job: wait for one to finish.
            tokio::select! {
                done = done_rx.recv() => pending.extend(done),
                permit = slots.clone().acquire_owned() => permits.extend(permit.ok()),
                () = stop.cancelled() => break,
            }
            drop(permits);
            continue;
        }
        wake.mark_seen();
        // Finished jobs give their slots to the rows claimed in the same statement (none while
        // paused).
        let limit = if paused.is_some() {
            0
        } else {
            permits.len() + pending.len()
        };
        let leases: Vec<Lease> = pending.iter().map(|(ran, _)| ran.lease).collect();
        let started = std::time::Instant::now();
        let claimed = worker
            .queue
            .complete_and_claim(&leases, as_limit(limit), &worker.config.name)
            .await;
        let (completed, jobs) = match claimed {
            Ok(result) => result,
            Err(error) => {
                tracing::warn!(%error, queue_id = %worker.queue.id(), "claim failed; retrying");
                drop(permits);
                tokio::select! {
                    () = tokio::time::sleep(RETRY_AFTER) => {}
                    () = stop.cancelled() => break,
                }
                continue;
            }
        };
        worker.handler.claimed(jobs.len(), started.elapsed());
        let finished: Vec<Finished<H::Output>> = pending
            .drain(..)
            .map(|(ran, permit)| {
                permits.push(permit);
                ran
            })
            .collect();
        report_completed(&worker, &finished, &completed);
        worker.in_hand.insert_all(&jobs);
        let idle = jobs.is_empty();
        for (job, permit) in jobs.into_iter().zip(permits) {
            let (worker, done_tx) = (worker.clone(), done_tx.clone());
            tasks.spawn(run_job(worker, job, permit, done_tx));
        }
        if idle && done_rx.is_empty() && paused.is_none() {
            tokio::select! {
                _ = wake.wait(poll) => {}
                done = done_rx.recv() => pending.extend(done),
                () = stop.cancelled() => break,
            }
        }
    }
    Stopped {
        tasks,
        done_rx,
        pending,
    }
}

/// Takes every free slot without waiting.
fn free_slots(slots: &Arc<Semaphore>) -> Vec<OwnedSemaphorePermit> {
    std::iter::from_fn(|| slots.clone().try_acquire_owned().ok()).collect()
}

/// Runs one job; a success of a handler that records nothing goes to the dispatcher's next
/// statement, everything else is finished here.
async fn run_job<H: Handler>(
    worker: Worker<H>,
    job: crate::ClaimedJob,
    permit: OwnedSemaphorePermit,
    done_tx: mpsc::UnboundedSender<Done<H::Output>>,
) {
    let ran = worker.run(job).await;
    if !H::RECORDS && ran.result.is_ok() {
        if let Err(mpsc::error::SendError((ran, _permit))) = done_tx.send((ran, permit)) {
            // The dispatcher is gone (the worker was dropped without a shutdown): the lease
            // runs out and the rescuer hands the row out again.
            worker.in_hand.remove([ran.lease.id]);
        }
        return;
    }
    // A recording handler, or a failure: finished alone, its slot freed afterwards.
    let _ = worker.finish(vec![ran]).await;
    drop(permit);
}

/// Reports batched completions and lets go of their rows.
pub(super) fn report_completed<H: Handler>(
    worker: &Worker<H>,
    finished: &[Finished<H::Output>],
    completed: &[crate::JobId],
) {
    worker
        .in_hand
        .remove(finished.iter().map(|ran| ran.lease.id));
    for report in execute::reports_of_completion(finished, completed) {
        worker.handler.finished(&report);
    }
}
