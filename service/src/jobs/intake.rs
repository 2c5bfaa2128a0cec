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
//!
//! PostgreSQL refuses a message over 1 GiB, so a batch also stops growing at
//! [`MAX_STATEMENT_BYTES`] of payloads, and queue rows are inserted in statements of at most
//! that much (a job larger than that, with a raised body limit, takes several statements of
//! its one transaction).

use std::sync::{Arc, OnceLock};

use queue::{NewJob, Queue, QueueError};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::{JobStoreError, NewIndexJob};

/// Writers running at once: one can commit while the next batch gathers.
const WRITERS: usize = 2;
/// Jobs waiting for a writer before `submit` waits for room.
const BACKLOG: usize = 1024;
/// A batch stops growing at this many jobs...
const MAX_BATCH_JOBS: usize = 256;
/// ...or queue rows, so one transaction stays short...
const MAX_BATCH_ROWS: usize = 4000;
/// ...or payload bytes (as JSON); also the most payload bytes in one insert statement, far
/// under PostgreSQL's 1 GiB message limit.
pub const MAX_STATEMENT_BYTES: usize = 64 * 1024 * 1024;

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
    /// Payload bytes per batch and per insert statement.
    max_statement_bytes: usize,
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
                max_statement_bytes: MAX_STATEMENT_BYTES,
                sender: OnceLock::new(),
            }),
        }
    }

    /// The same intake with another cap on payload bytes per batch and per statement (before
    /// first use; for tests and tuning).
    pub fn with_max_statement_bytes(self, bytes: usize) -> Self {
        let shared = Shared {
            pool: self.shared.pool.clone(),
            queue: self.shared.queue.clone(),
            max_statement_bytes: bytes.max(1),
            sender: OnceLock::new(),
        };
        Self {
            shared: Arc::new(shared),
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
                write_batch(&self.shared, &[&pending.job]).await
            }
        }
    }

    fn start(&self) -> mpsc::Sender<Pending> {
        let (sender, receiver) = mpsc::channel(BACKLOG);
        let inbox = Arc::new(Mutex::new(Inbox {
            receiver,
            held: None,
        }));
        for _ in 0..WRITERS {
            let inbox = Arc::clone(&inbox);
            // The writers hold the pool and queue, not the intake: they end with its last clone.
            let shared = Shared {
                pool: self.shared.pool.clone(),
                queue: self.shared.queue.clone(),
                max_statement_bytes: self.shared.max_statement_bytes,
                sender: OnceLock::new(),
            };
            tokio::spawn(async move {
                while let Some(batch) = next_batch(&inbox, shared.max_statement_bytes).await {
                    write_and_reply(&shared, batch).await;
                }
            });
        }
        sender
    }
}

/// What the writers take jobs from: the channel, and a job held back from the last batch.
struct Inbox {
    receiver: mpsc::Receiver<Pending>,
    held: Option<Pending>,
}

/// Waits for one job, then takes whatever else is already waiting, up to the caps. A job that
/// would take the batch over `max_bytes` is held back for the next batch.
async fn next_batch(inbox: &Mutex<Inbox>, max_bytes: usize) -> Option<Vec<Pending>> {
    let mut inbox = inbox.lock().await;
    let first = match inbox.held.take() {
        Some(held) => held,
        None => inbox.receiver.recv().await?,
    };
    let mut rows = first.job.rows.len();
    let mut bytes = job_bytes(&first.job);
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH_JOBS && rows < MAX_BATCH_ROWS {
        match inbox.receiver.try_recv() {
            Ok(next) => {
                let size = job_bytes(&next.job);
                if bytes.saturating_add(size) > max_bytes {
                    inbox.held = Some(next);
                    break;
                }
                rows += next.job.rows.len();
                bytes += size;
                batch.push(next);
            }
            Err(_) => break,
        }
    }
    Some(batch)
}

async fn write_and_reply(shared: &Shared, batch: Vec<Pending>) {
    let jobs: Vec<&NewIndexJob> = batch.iter().map(|p| &p.job).collect();
    let result = write_batch(shared, &jobs).await;
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
                let result = write_batch(shared, &[&pending.job]).await;
                let _ = pending.reply.send(result);
            }
        }
    }
}

/// Writes the jobs, their queue rows and their skipped files in one transaction, the rows in
/// statements of at most `max_statement_bytes` of payloads.
#[tracing::instrument(skip_all, fields(queue_id = %shared.queue.id(), jobs = jobs.len()))]
async fn write_batch(shared: &Shared, jobs: &[&NewIndexJob]) -> Result<(), IntakeError> {
    let (pool, queue) = (&shared.pool, &shared.queue);
    let mut tx = pool.begin().await?;
    super::insert_jobs(&mut *tx, queue.id(), jobs).await?;
    let rows: Vec<&NewJob> = jobs.iter().flat_map(|job| &job.rows).collect();
    for statement in split_by_bytes(&rows, shared.max_statement_bytes, |row| {
        json_bytes(&row.payload)
    }) {
        queue.enqueue_each_with(&mut *tx, statement).await?;
    }
    for job in jobs.iter().filter(|job| !job.skipped.is_empty()) {
        super::record_results(&mut tx, job.id, &job.skipped).await?;
        super::refresh_status(&mut tx, job.id).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Payload bytes of a job's queue rows, as JSON.
fn job_bytes(job: &NewIndexJob) -> usize {
    job.rows.iter().map(|row| json_bytes(&row.payload)).sum()
}

/// Consecutive runs of `items` of at most `max` bytes each (an item larger than `max` alone).
pub fn split_by_bytes<T>(items: &[T], max: usize, size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    for (i, item) in items.iter().enumerate() {
        let item_bytes = size(item);
        if i > start && bytes.saturating_add(item_bytes) > max {
            runs.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes = bytes.saturating_add(item_bytes);
    }
    if start < items.len() {
        runs.push(&items[start..]);
    }
    runs
}

/// The length of `value` serialized as JSON (numbers counted at their longest), without
/// serializing it.
pub fn json_bytes(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 24,
        Value::String(text) => escaped_len(text) + 2,
        Value::Array(items) => 2 + items.iter().map(|item| json_bytes(item) + 1).sum::<usize>(),
        Value::Object(fields) => {
            2 + fields
                .iter()
                .map(|(key, value)| escaped_len(key) + 4 + json_bytes(value))
                .sum::<usize>()
        }
    }
}

fn escaped_len(text: &str) -> usize {
    text.bytes()
        .map(|byte| match byte {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pending(content_bytes: usize) -> Pending {
        let (reply, _) = oneshot::channel();
        let job = NewIndexJob {
            id: uuid::Uuid::new_v4(),
            project: "p".into(),
            kind: super::super::JobKind::Files,
            files_total: 1,
            repository: None,
            git_ref: None,
            rows: vec![NewJob::new(json!({"content": "x".repeat(content_bytes)}))],
            skipped: Vec::new(),
        };
        Pending { job, reply }
    }

    #[tokio::test]
    async fn a_batch_stops_growing_at_the_byte_cap() {
        let (sender, receiver) = mpsc::channel(8);
        let inbox = Mutex::new(Inbox {
            receiver,
            held: None,
        });
        for bytes in [300, 300, 300, 100] {
            assert!(sender.send(pending(bytes)).await.is_ok());
        }
        let lengths = |batch: Option<Vec<Pending>>| batch.map(|batch| batch.len());
        // 300 + 300 fit in 700 bytes; the third is held back for the next batch.
        assert_eq!(lengths(next_batch(&inbox, 700).await), Some(2));
        assert_eq!(lengths(next_batch(&inbox, 700).await), Some(2));
    }

    #[test]
    fn runs_stay_under_the_byte_cap() {
        let sizes = [40, 40, 40, 100, 10, 10];
        let runs = split_by_bytes(&sizes, 90, |size| *size);
        assert_eq!(
            runs,
            vec![&[40, 40][..], &[40][..], &[100][..], &[10, 10][..]]
        );
        assert!(split_by_bytes(&[] as &[usize], 90, |size| *size).is_empty());
        // Under a large cap nothing is split.
        let whole = split_by_bytes(&sizes, 1000, |size| *size);
        assert_eq!(whole, vec![&sizes[..]]);
    }

    #[test]
    fn json_sizes_cover_the_serialized_text() {
        for value in [
            json!({"project": "p", "path": "a.rs", "content": "fn a() {}\n\t\"q\" \u{1}"}),
            json!([1, -2.5, null, true, "x", {"k": []}]),
            json!("ünïcode"),
        ] {
            let serialized = serde_json::to_string(&value).expect("serializes");
            assert!(json_bytes(&value) >= serialized.len(), "{value}");
        }
    }
}
