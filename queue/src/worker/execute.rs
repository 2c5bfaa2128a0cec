//! One job's way through the runtime: run the handler (panic guard, timeout), then finish the
//! row, fenced by its lease. Every path of the runtime (the dispatcher, `run_once`, a test's
//! inline drain) goes through these functions.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use tracing::Instrument;
use uuid::Uuid;

use super::{Handler, JobOutcome, JobReport, WorkerError};
use crate::{ClaimedJob, FailOutcome, FailureKind, JobFailure, JobId, Lease, Queue};

/// A job whose handler has returned, waiting to be finished in the database.
#[derive(Debug)]
pub(super) struct Finished<O> {
    pub(super) lease: Lease,
    pub(super) job_ref: Option<Uuid>,
    pub(super) result: Result<(), JobFailure>,
    /// `None` when the handler panicked or timed out.
    pub(super) output: Option<O>,
    /// How long the handler ran.
    pub(super) took: Duration,
}

/// Runs `handler` on `job` inside the job's span; a panic or a timeout fails the attempt as
/// transient instead of taking the worker down.
pub(super) async fn run<H: Handler>(
    handler: &H,
    job: ClaimedJob,
    timeout: Option<Duration>,
) -> Finished<H::Output> {
    let (lease, job_ref) = (job.lease(), job.job_ref);
    let started = std::time::Instant::now();
    let span = tracing::info_span!("job", job_id = job.id, attempt = job.attempts);
    let guarded = AssertUnwindSafe(handler.run(job)).catch_unwind();
    let ran = async {
        match timeout {
            Some(limit) => tokio::time::timeout(limit, guarded)
                .await
                .map_err(|_| format!("the job ran longer than its {limit:?} limit")),
            None => Ok(guarded.await),
        }
    }
    .instrument(span.clone())
    .await;
    let (result, output) = match ran {
        Ok(Ok(ran)) => (ran.result, Some(ran.output)),
        Ok(Err(panic)) => {
            let message = format!("the handler panicked: {}", panic_message(&*panic));
            span.in_scope(|| tracing::error!(%message, "job panicked"));
            (Err(JobFailure::transient(message)), None)
        }
        Err(message) => {
            span.in_scope(|| tracing::warn!(%message, "job timed out"));
            (Err(JobFailure::transient(message)), None)
        }
    };
    Finished {
        lease,
        job_ref,
        result,
        output,
        took: started.elapsed(),
    }
}

/// A caught panic's message (`&str` and `String` payloads), for handlers that catch panics of
/// their own as the runtime does.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_owned())
}

fn report<O>(ran: &Finished<O>, outcome: JobOutcome) -> JobReport {
    JobReport {
        id: ran.lease.id,
        job_ref: ran.job_ref,
        attempt: ran.lease.attempt,
        outcome,
        error: ran.result.as_ref().err().map(|f| f.message.clone()),
        took: ran.took,
    }
}

/// Finishes one job alone: in a transaction with [`Handler::record`] when the handler records,
/// else with a single statement. Failures always go this way (each has its own backoff); a
/// dependency outage postpones the row without counting the attempt.
pub(super) async fn finish_one<H: Handler>(
    queue: &Queue,
    handler: &H,
    ran: &Finished<H::Output>,
    postpone_for: Duration,
) -> Result<JobReport, WorkerError> {
    if let Err(failure) = &ran.result {
        if failure.kind == FailureKind::Unavailable {
            let outcome = match queue
                .postpone(&ran.lease, postpone_for, &failure.message)
                .await?
            {
                Some(run_at) => JobOutcome::Postponed { run_at },
                None => JobOutcome::LeaseLost,
            };
            return Ok(report(ran, outcome));
        }
    }
    if !H::RECORDS {
        let outcome = match &ran.result {
            Ok(()) => match queue.complete(&ran.lease).await? {
                true => JobOutcome::Completed,
                false => JobOutcome::LeaseLost,
            },
            Err(failure) => queue.fail(&ran.lease, failure).await?.into(),
        };
        return Ok(report(ran, outcome));
    }
    let mut tx = queue.pool().begin().await?;
    let outcome = match &ran.result {
        Ok(()) => {
            let done = queue
                .complete_many_with(&mut *tx, std::slice::from_ref(&ran.lease))
                .await?;
            if done.is_empty() {
                JobOutcome::LeaseLost
            } else {
                JobOutcome::Completed
            }
        }
        Err(failure) => queue.fail_with(&mut *tx, &ran.lease, failure).await?.into(),
    };
    let report = report(ran, outcome);
    if outcome == JobOutcome::LeaseLost {
        tx.rollback().await?;
        tracing::warn!(
            job_id = ran.lease.id,
            "lease lost before the result was recorded; another attempt owns the job"
        );
        return Ok(report);
    }
    if let Err(error) = handler.record(&mut tx, &report, ran.output.as_ref()).await {
        drop(tx); // rolled back: neither the effects nor the completion
        let error = WorkerError::Record(error);
        if error.is_outage() {
            return Err(error);
        }
        // A record that cannot be written (a constraint, a missing table) fails the attempt
        // where everyone sees it, instead of leaving the row to its lease.
        tracing::error!(%error, job_id = ran.lease.id, "recording the job's result failed");
        let failure = JobFailure::transient(error.to_string());
        let outcome = queue.fail(&ran.lease, &failure).await?.into();
        return Ok(JobReport {
            outcome,
            error: Some(failure.message),
            ..report
        });
    }
    tx.commit().await?;
    Ok(report)
}

/// Completes successful jobs of a handler that records nothing, in one statement.
pub(super) async fn complete_batch<O>(
    queue: &Queue,
    done: &[Finished<O>],
) -> Result<Vec<JobReport>, WorkerError> {
    let leases: Vec<Lease> = done.iter().map(|ran| ran.lease).collect();
    let completed = queue.complete_many(&leases).await?;
    Ok(reports_of_completion(done, &completed))
}

/// The reports of `done` once `completed` (the ids whose lease was still owned) were completed.
pub(super) fn reports_of_completion<O>(
    done: &[Finished<O>],
    completed: &[JobId],
) -> Vec<JobReport> {
    done.iter()
        .map(|ran| {
            let outcome = if completed.contains(&ran.lease.id) {
                JobOutcome::Completed
            } else {
                tracing::warn!(
                    job_id = ran.lease.id,
                    "completion refused: lease no longer owned"
                );
                JobOutcome::LeaseLost
            };
            report(ran, outcome)
        })
        .collect()
}

impl From<FailOutcome> for JobOutcome {
    fn from(outcome: FailOutcome) -> Self {
        match outcome {
            FailOutcome::Retrying { run_at } => JobOutcome::Retrying { run_at },
            FailOutcome::Dead => JobOutcome::Dead,
            FailOutcome::LeaseLost => JobOutcome::LeaseLost,
        }
    }
}
