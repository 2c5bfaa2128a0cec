//! A started worker: its dispatcher, its heartbeat, its maintenance, and the graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::dispatch::{self, Stopped};
use super::{execute, Handler, Worker};
use crate::maintenance::{Maintenance, MaintenanceHandle};
use crate::{Lease, QueueWaker};

/// What shutdown did with the rows in hand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Rows in hand at the stop that finished within the timeout.
    pub finished: usize,
    /// Rows whose leases were released unfinished (pending again at once, the attempt not
    /// counted).
    pub released: usize,
}

/// A running worker, returned by [`Worker::start`]. Dropping it stops claiming and aborts the
/// jobs in hand (their leases run out); [`WorkerHandle::shutdown`] is the graceful way.
pub struct WorkerHandle {
    stop: CancellationToken,
    breaker: Arc<super::breaker::Breaker>,
    shutdown: Option<Box<dyn FnOnce(Duration) -> ShutdownFuture + Send>>,
    timeout: Duration,
    abort: Vec<tokio::task::AbortHandle>,
}

type ShutdownFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ShutdownReport> + Send>>;

impl std::fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerHandle")
            .field("stopped", &self.stop.is_cancelled())
            .finish_non_exhaustive()
    }
}

pub(super) fn start<H: Handler>(worker: Worker<H>, waker: Arc<QueueWaker>) -> WorkerHandle {
    let stop = CancellationToken::new();
    let stop_heartbeat = CancellationToken::new();
    let dispatcher = tokio::spawn(dispatch::dispatch(worker.clone(), waker, stop.clone()));
    let heartbeat = tokio::spawn(heartbeat(worker.clone(), stop_heartbeat.clone()));
    let maintenance = worker
        .config
        .maintenance
        .clone()
        .map(|config| Maintenance::new(worker.queue.clone(), config).start());
    tracing::info!(queue_id = %worker.queue.id(), concurrency = worker.config.concurrency, "worker started");
    let abort = vec![dispatcher.abort_handle(), heartbeat.abort_handle()];
    let breaker = worker.breaker.clone();
    let timeout = worker.config.shutdown_timeout;
    let shutdown = move |timeout: Duration| -> ShutdownFuture {
        Box::pin(shut_down(
            worker,
            dispatcher,
            heartbeat,
            stop_heartbeat,
            maintenance,
            timeout,
        ))
    };
    WorkerHandle {
        stop,
        breaker,
        shutdown: Some(Box::new(shutdown)),
        timeout,
        abort,
    }
}

impl WorkerHandle {
    /// Stops claiming (jobs in hand go on); [`WorkerHandle::shutdown`] does this too.
    pub fn stop_claiming(&self) {
        self.stop.cancel();
    }

    /// Whether the worker is claiming, or paused by a dependency outage.
    pub fn health(&self) -> super::WorkerHealth {
        self.breaker.health()
    }

    /// A token whose cancellation stops claiming, for code that learns of a shutdown elsewhere
    /// (e.g. an HTTP server's graceful shutdown, while this handle waits to be shut down).
    pub fn claim_switch(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stops claiming, waits up to the config's `shutdown_timeout` for the jobs in hand, then
    /// aborts the rest and releases their leases so another worker can take them at once.
    pub async fn shutdown(self) -> ShutdownReport {
        let timeout = self.timeout;
        self.shutdown_within(timeout).await
    }

    /// [`WorkerHandle::shutdown`] with another timeout.
    pub async fn shutdown_within(mut self, timeout: Duration) -> ShutdownReport {
        self.stop.cancel();
        match self.shutdown.take() {
            Some(shutdown) => shutdown(timeout).await,
            None => ShutdownReport::default(),
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        if self.shutdown.is_some() {
            self.stop.cancel();
            for task in &self.abort {
                task.abort();
            }
        }
    }
}

async fn shut_down<H: Handler>(
    worker: Worker<H>,
    dispatcher: JoinHandle<Stopped<H::Output>>,
    heartbeat: JoinHandle<()>,
    stop_heartbeat: CancellationToken,
    maintenance: Option<MaintenanceHandle>,
    timeout: Duration,
) -> ShutdownReport {
    let Stopped {
        mut tasks,
        mut done_rx,
        mut pending,
    } = match dispatcher.await {
        Ok(stopped) => stopped,
        Err(error) => {
            tracing::error!(%error, "worker dispatcher ended abnormally");
            stop_heartbeat.cancel();
            let _ = heartbeat.await;
            return release_all(&worker).await;
        }
    };
    let in_hand = worker.in_hand();
    let drained = tokio::time::timeout(timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_ok();
    if !drained {
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    // Jobs that succeeded are completed before anything is released.
    while let Ok(done) = done_rx.try_recv() {
        pending.push(done);
    }
    if !pending.is_empty() {
        let finished: Vec<_> = pending.into_iter().map(|(ran, _permit)| ran).collect();
        match execute::complete_batch(&worker.queue, &finished).await {
            Ok(reports) => {
                worker
                    .in_hand
                    .remove(reports.iter().map(|report| report.id));
                for report in &reports {
                    worker.handler.finished(report);
                }
            }
            Err(error) => {
                tracing::error!(%error, "completing finished jobs at shutdown failed; releasing them")
            }
        }
    }
    // Heartbeats stop only now, so jobs finishing above kept their leases.
    stop_heartbeat.cancel();
    let _ = heartbeat.await;
    if let Some(maintenance) = maintenance {
        maintenance.stop().await;
    }
    let mut report = release_all(&worker).await;
    report.finished = in_hand.saturating_sub(report.released);
    tracing::info!(
        queue_id = %worker.queue.id(),
        finished = report.finished,
        released = report.released,
        "worker stopped"
    );
    report
}

/// Releases every lease still in hand.
async fn release_all<H: Handler>(worker: &Worker<H>) -> ShutdownReport {
    let leases: Vec<Lease> = worker.in_hand.drain();
    let mut released = 0;
    for lease in &leases {
        match worker.queue.release(lease).await {
            Ok(true) => released += 1,
            Ok(false) => {}
            Err(error) => {
                tracing::error!(%error, job_id = lease.id, "release failed; the lease will run out")
            }
        }
    }
    ShutdownReport {
        finished: 0,
        released,
    }
}

/// Extends the leases of every row in hand, every `heartbeat_interval`, until stopped.
async fn heartbeat<H: Handler>(worker: Worker<H>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(worker.config.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let leases = worker.in_hand.leases();
        if leases.is_empty() {
            continue;
        }
        match worker.queue.heartbeat_many(&leases).await {
            Ok(owned) if owned.len() < leases.len() => {
                tracing::warn!(queue_id = %worker.queue.id(), lost = leases.len() - owned.len(), "some leases were lost")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, queue_id = %worker.queue.id(), "heartbeat failed"),
        }
    }
}
