//! Wake-ups: one LISTEN connection per process fans `queue_jobs` notifications out to the idle
//! claimers of each queue; a polling interval covers anything a notification cannot (rows whose
//! `run_at` comes later, a dropped connection).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{QueueError, QueueId};

/// The channel every queue notifies on; the payload is the `queue_id`.
pub(crate) const CHANNEL: &str = "queue_jobs";

type Senders = Arc<Mutex<HashMap<String, watch::Sender<u64>>>>;

/// Listens for queue notifications in the background and wakes subscribers of each queue.
#[derive(Debug)]
pub struct QueueWaker {
    senders: Senders,
    task: JoinHandle<()>,
}

/// Why [`Subscription::wait`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WakeReason {
    /// A notification for this queue arrived (or the listener reconnected and may have missed one).
    Notified,
    /// The polling interval passed without one.
    Poll,
}

/// One claimer's view of its queue's notifications.
#[derive(Debug)]
pub struct Subscription {
    rx: watch::Receiver<u64>,
}

impl QueueWaker {
    /// Starts listening on a dedicated connection of `pool`'s database.
    pub async fn start(pool: &PgPool) -> Result<Self, QueueError> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        let senders: Senders = Arc::default();
        let task = tokio::spawn(listen(listener, senders.clone()));
        Ok(Self { senders, task })
    }

    /// A subscription to `queue`'s wake-ups.
    pub fn subscribe(&self, queue: &QueueId) -> Subscription {
        let mut senders = lock(&self.senders);
        let sender = senders
            .entry(queue.as_str().to_owned())
            .or_insert_with(|| watch::channel(0).0);
        Subscription {
            rx: sender.subscribe(),
        }
    }
}

impl Drop for QueueWaker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Subscription {
    /// Forgets notifications seen so far. Call it before looking for work, so a notification
    /// that arrives between an empty claim and [`Subscription::wait`] is not lost.
    pub fn mark_seen(&mut self) {
        self.rx.borrow_and_update();
    }

    /// Waits for a notification newer than the last [`Subscription::mark_seen`], or `poll`.
    pub async fn wait(&mut self, poll: Duration) -> WakeReason {
        match tokio::time::timeout(poll, self.rx.changed()).await {
            Ok(Ok(())) => WakeReason::Notified,
            // The waker is gone: behave like a plain poller rather than spinning.
            Ok(Err(_)) => {
                tokio::time::sleep(poll).await;
                WakeReason::Poll
            }
            Err(_) => WakeReason::Poll,
        }
    }
}

fn lock(senders: &Senders) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<u64>>> {
    senders
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn listen(mut listener: PgListener, senders: Senders) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                let mut senders = lock(&senders);
                let queue = notification.payload();
                let gone = match senders.get(queue) {
                    Some(sender) => {
                        sender.receiver_count() == 0 || {
                            sender.send_modify(|v| *v = v.wrapping_add(1));
                            false
                        }
                    }
                    None => false,
                };
                if gone {
                    senders.remove(queue);
                }
            }
            // The connection dropped and sqlx reconnects; anything sent meanwhile is lost, so
            // wake everyone to look.
            Ok(None) => {
                tracing::warn!("queue listener reconnecting; waking every subscriber");
                for sender in lock(&senders).values() {
                    sender.send_modify(|v| *v = v.wrapping_add(1));
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "queue listener failed; retrying in 1s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
