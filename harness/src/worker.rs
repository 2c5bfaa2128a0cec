//! Workers bound to one environment's queue, running the test's own handler.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use service::queue::{ClaimedJob, JobFailure, Queue, QueueWaker};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What a worker runs for each claimed job: `Ok` completes it, `Err` fails it (transient errors
/// are retried with backoff, permanent ones go to the dead-letter queue).
pub trait JobHandler: Send + Sync + 'static {
    /// Runs one job.
    fn handle(
        &self,
        job: ClaimedJob,
    ) -> Pin<Box<dyn Future<Output = Result<(), JobFailure>> + Send>>;
}

impl<F, Fut> JobHandler for F
where
    F: Fn(ClaimedJob) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobFailure>> + Send + 'static,
{
    fn handle(
        &self,
        job: ClaimedJob,
    ) -> Pin<Box<dyn Future<Output = Result<(), JobFailure>> + Send>> {
        Box::pin(self(job))
    }
}

/// Running workers; stopped on [`WorkerHandle::stop`] or drop.
#[derive(Debug)]
pub struct WorkerHandle {
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl WorkerHandle {
    pub(crate) fn spawn(
        queue: Queue,
        waker: Arc<QueueWaker>,
        handler: Arc<dyn JobHandler>,
        concurrency: usize,
    ) -> Self {
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for n in 0..concurrency.max(1) {
            let (queue, handler, stop) = (queue.clone(), handler.clone(), stop.clone());
            let subscription = waker.subscribe(queue.id());
            let span = tracing::info_span!("harness_worker", queue_id = %queue.id(), worker = n);
            tasks.spawn(
                work(queue, handler, stop, subscription, format!("harness-{n}")).instrument(span),
            );
        }
        Self { stop, tasks }
    }

    /// Stops claiming and waits for the jobs in hand to finish.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.stop.cancel();
        self.tasks.abort_all();
    }
}

async fn work(
    queue: Queue,
    handler: Arc<dyn JobHandler>,
    stop: CancellationToken,
    mut subscription: service::queue::Subscription,
    name: String,
) {
    while !stop.is_cancelled() {
        subscription.mark_seen();
        let jobs = match queue.claim(1, &name).await {
            Ok(jobs) => jobs,
            Err(err) => {
                tracing::warn!(error = %err, "claim failed");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let Some(job) = jobs.into_iter().next() else {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = subscription.wait(queue.config().poll_interval) => continue,
            }
        };
        let lease = job.lease();
        let span = tracing::info_span!("job", job_id = job.id, attempt = job.attempts);
        let result = handler.handle(job).instrument(span.clone()).await;
        let _entered = span.enter();
        let outcome = match &result {
            Ok(()) => queue
                .complete(&lease)
                .await
                .map(|done| format!("completed={done}")),
            Err(failure) => queue.fail(&lease, failure).await.map(|o| format!("{o:?}")),
        };
        match (result, outcome) {
            (Ok(()), Ok(outcome)) => tracing::info!(job_id = lease.id, %outcome, "job done"),
            (Err(failure), Ok(outcome)) => {
                tracing::warn!(job_id = lease.id, error = %failure.message, %outcome, "job failed")
            }
            (_, Err(err)) => {
                tracing::warn!(job_id = lease.id, error = %err, "recording the outcome failed")
            }
        }
    }
}
