//! Group commit of new jobs: the requests that arrive while a write is in flight are written
//! together, in one transaction, by the next write.
//!
//! Each `POST /index` used to pay its own transaction (four round trips and a WAL flush). Under
//! load those commits queue up behind each other; written together they cost one flush and
//! two multi-row statements, so latency stays low as the request rate grows. An idle service
//! writes a lone request at once: nothing waits for a batch to fill.
//!
//! A job is answered only after its transaction committed. If a batch fails, each of its jobs
//! is written again alone, so one request's problem never fails another's.

use std::sync::{Arc, OnceLock};

use queue::{NewJob, Queue, QueueError};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::{JobStoreError, NewIndexJob};

/// Writers running at once: one can commit while the next batch gathers.
const WRITERS: usize = 2;
/// Jobs waiting for a writer before `submit` waits for room.
const BACKLOG: usize = 1024;
/// A batch stops growing at this many jobs...
const MAX_BATCH_JOBS: usize = 256;
/// ...or queue rows, so one transaction stays short.
const MAX_BATCH_ROWS: usize = 4000;

/// Errors of the intake.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// Writing the job failed.
    #[error(transparent)]
    Store(#[from] JobStoreError),
    /// Writing its queue rows failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The writers stopped (their runtime shut down) before confirming the job, which may or
    /// may not have been committed.
    #[error("job intake stopped before the job was confirmed")]
    Stopped,
}

impl From<sqlx::Error> for IntakeError {
    fn from(error: sqlx::Error) -> Self {
        IntakeError::Store(JobStoreError::Database(error))
    }
}

struct Pending {
    job: NewIndexJob,
    reply: oneshot::Sender<Result<(), IntakeError>>,
}

/// Writes new jobs and their queue rows, batching concurrent submissions; clones share it.
#[derive(Clone)]
pub struct Intake {
    shared: Arc<Shared>,
}

struct Shared {
    pool: PgPool,
    queue: Queue,
    /// Started on first use, from inside the runtime that serves requests.
    sender: OnceLock<mpsc::Sender<Pending>>,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("queue_id", self.shared.queue.id())
            .finish_non_exhaustive()
    }
}

impl Intake {
    /// An intake writing to `pool`, with queue rows on `queue`. Writers start on first use and
    /// stop when the last clone is dropped.
    pub fn new(pool: PgPool, queue: Queue) -> Self {
        Self {
            shared: Arc::new(Shared {
                pool,
                queue,
                sender: OnceLock::new(),
            }),
        }
    }

    /// Writes `job` (the job, its queue rows and its skipped files) and returns once it
    /// is committed, possibly together with other submissions.
    pub async fn submit(&self, job: NewIndexJob) -> Result<(), IntakeError> {
        let sender = self.shared.sender.get_or_init(|| self.start());
        let (reply, answer) = oneshot::channel();
        let pending = Pending { job, reply };
        match sender.send(pending).await {
            Ok(()) => match answer.await {
                Ok(result) => result,
                // Not written again: the batch may have committed, and a copy would duplicate it.
                Err(_) => Err(IntakeError::Stopped),
            },
            // Writers gone (the runtime that started them ended): write here, alone.
            Err(mpsc::error::SendError(pending)) => {
                let shared = &self.shared;
                write_batch(&shared.pool, &shared.queue, &[&pending.job]).await
            }
        }
    }

    fn start(&self) -> mpsc::Sender<Pending> {
        let (sender, receiver) = mpsc::channel(BACKLOG);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WRITERS {
            let receiver = Arc::clone(&receiver);
            let (pool, queue) = (self.shared.pool.clone(), self.shared.queue.clone());
            tokio::spawn(async move {
                while let Some(batch) = next_batch(&receiver).await {
                    write_and_reply(&pool, &queue, batch).await;
                }
            });
        }
        sender
    }
}

/// Waits for one job, then takes whatever else is already waiting, up to the caps.
async fn next_batch(receiver: &Mutex<mpsc::Receiver<Pending>>) -> Option<Vec<Pending>> {
    let mut receiver = receiver.lock().await;
    let first = receiver.recv().await?;
    let mut rows = first.job.rows.len();
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH_JOBS && rows < MAX_BATCH_ROWS {
        match receiver.try_recv() {
            Ok(next) => {
                rows += next.job.rows.len();
                batch.push(next);
            }
            Err(_) => break,
        }
    }
    Some(batch)
}

async fn write_and_reply(pool: &PgPool, queue: &Queue, batch: Vec<Pending>) {
    let jobs: Vec<&NewIndexJob> = batch.iter().map(|p| &p.job).collect();
    let result = write_batch(pool, queue, &jobs).await;
    match result {
        Ok(()) => {
            for pending in batch {
                // A client that went away no longer waits; its job is written all the same.
                let _ = pending.reply.send(Ok(()));
            }
        }
        Err(error) if batch.len() == 1 => {
            if let Some(pending) = batch.into_iter().next() {
                let _ = pending.reply.send(Err(error));
            }
        }
        Err(error) => {
            tracing::warn!(%error, jobs = batch.len(), "batched job write failed; writing each alone");
            for pending in batch {
                let result = write_batch(pool, queue, &[&pending.job]).await;
                let _ = pending.reply.send(result);
            }
        }
    }
}

/// Writes the jobs, their queue rows and their skipped files in one transaction.
#[tracing::instrument(skip_all, fields(queue_id = %queue.id(), jobs = jobs.len()))]
async fn write_batch(
    pool: &PgPool,
    queue: &Queue,
    jobs: &[&NewIndexJob],
) -> Result<(), IntakeError> {
    let mut tx = pool.begin().await?;
    super::insert_jobs(&mut *tx, queue.id(), jobs).await?;
    let rows: Vec<&NewJob> = jobs.iter().flat_map(|job| &job.rows).collect();
    queue.enqueue_each_with(&mut *tx, &rows).await?;
    for job in jobs.iter().filter(|job| !job.skipped.is_empty()) {
        super::record_results(&mut tx, job.id, &job.skipped).await?;
        super::refresh_status(&mut tx, job.id).await?;
    }
    tx.commit().await?;
    Ok(())
}
