//! What a worker runs for each claimed job: a [`Handler`].

use std::future::Future;
use std::time::Duration;

use sqlx::PgConnection;

use crate::{ClaimedJob, JobFailure};

use super::JobReport;

/// Errors a [`Handler::record`] may return (its transaction is rolled back).
pub type RecordError = Box<dyn std::error::Error + Send + Sync>;

/// What [`Handler::run`] returns: whether the job succeeded, and what to hand to
/// [`Handler::record`].
#[derive(Debug)]
pub struct Ran<T = ()> {
    /// `Ok` completes the job; a transient failure retries it with backoff until its attempts
    /// are used up, a permanent one moves it to the dead-letter queue.
    pub result: Result<(), JobFailure>,
    /// Handed to [`Handler::record`] (e.g. per-file results).
    pub output: T,
}

impl From<Result<(), JobFailure>> for Ran<()> {
    fn from(result: Result<(), JobFailure>) -> Self {
        Ran { result, output: () }
    }
}

/// A job's code. Closures `Fn(ClaimedJob) -> impl Future<Output = Result<(), JobFailure>>` are
/// handlers; implement the trait to record effects in the transaction that finishes the job.
///
/// The runtime catches a panic in [`Handler::run`] (the attempt fails as transient, the worker
/// lives) and fences every completion by the job's lease, so a worker that lost its lease
/// changes nothing.
pub trait Handler: Send + Sync + 'static {
    /// What [`Handler::run`] hands to [`Handler::record`]; `()` for most handlers.
    type Output: Send + Sync + 'static;

    /// Whether [`Handler::record`] must run in the transaction that finishes each job. False
    /// (the default) lets the runtime complete many jobs in one statement without a transaction.
    const RECORDS: bool = false;

    /// Runs one claimed job.
    fn run(&self, job: ClaimedJob) -> impl Future<Output = Ran<Self::Output>> + Send;

    /// Records a finished attempt's effects in the transaction that completes or fails the job
    /// (only when [`Handler::RECORDS`] is true): an error rolls both back and fails the attempt
    /// as transient with the error (or, when PostgreSQL is unreachable, is tried again). Not called when the lease was lost (another
    /// attempt owns the job), nor for a postponed job. `output` is `None` when [`Handler::run`]
    /// panicked or timed out. It may be called again with the same output when PostgreSQL
    /// dropped the connection before the commit.
    fn record(
        &self,
        tx: &mut PgConnection,
        report: &JobReport,
        output: Option<&Self::Output>,
    ) -> impl Future<Output = Result<(), RecordError>> + Send {
        let _ = (tx, report, output);
        async { Ok(()) }
    }

    /// Whether the dependencies this handler's jobs need answer, asked while the worker has
    /// stopped claiming because a job failed with [`crate::FailureKind::Unavailable`]: `Ok`
    /// claims again, `Err(why)` waits longer. The default says yes at once (the worker then
    /// only pauses briefly).
    fn probe(&self) -> impl Future<Output = Result<(), String>> + Send {
        async { Ok(()) }
    }

    /// Called once a claim statement returned `jobs` rows after `took` (for metrics).
    fn claimed(&self, jobs: usize, took: Duration) {
        let _ = (jobs, took);
    }

    /// Called once a job's attempt is finished in the database (for metrics and logs).
    fn finished(&self, report: &JobReport) {
        let _ = report;
    }
}

impl<F, Fut> Handler for F
where
    F: Fn(ClaimedJob) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobFailure>> + Send + 'static,
{
    type Output = ();

    fn run(&self, job: ClaimedJob) -> impl Future<Output = Ran<()>> + Send {
        let run = self(job);
        async move { Ran::from(run.await) }
    }
}
