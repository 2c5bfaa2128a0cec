//! A PostgreSQL job queue for services that put work on PostgreSQL and run it in background
//! workers.
//!
//! - [`Queue`]: one queue of the shared `queue_jobs` table, named by a [`QueueId`]. Enqueue,
//!   claim (`FOR UPDATE SKIP LOCKED`, one short statement), complete and fail fenced by a lease
//!   token, heartbeats, retries with backoff, a dead-letter queue with redrive, a durable pause.
//!   Every statement filters on the queue id, so tenants and tests sharing one database never
//!   see each other's rows. Time is a parameter ([`Clock`]).
//! - [`worker`]: the one worker runtime: batched claims, heartbeats, panic guard, NOTIFY
//!   wake-ups, graceful shutdown. Services, test harnesses and the load suite all run it.
//! - [`maintenance`]: services on tasks of their own (rescue of expired leases, vacuum), each
//!   run by one process at a time.
//! - [`db`]: connecting, creating the database, and [`db::migrate`] for this crate's tables;
//!   [`db::migrate_owner`] applies another crate's migrations the same way.
//! - [`namespace`]: short-lived namespaces (test environments, load executions) with an owner
//!   that may die, reaped with everything registered for their queues.
//!
//! ```
//! use queue::worker::{JobOutcome, Outcome, Worker, WorkerConfig};
//! use queue::{ClaimedJob, JobFailure, NewJob, Queue, QueueId};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let url = queue::db::database_url_from_env();
//! # queue::db::ensure_database(&url).await?;
//! let pool = queue::db::connect(&url, 5, std::time::Duration::from_secs(5)).await?;
//! queue::db::migrate(&pool).await?;
//! # let emails = format!("doc-emails-{}", std::process::id());
//! # /*
//! let emails = "emails";
//! # */
//! let queue = Queue::new(pool.clone(), QueueId::new(emails)?);
//! queue.enqueue(NewJob::new(serde_json::json!({ "to": "a@example.com" }))).await?;
//!
//! let send = |job: ClaimedJob| async move {
//!     println!("sending to {}", job.payload["to"]);
//!     Ok::<(), JobFailure>(())
//! };
//! let worker = Worker::new(queue.clone(), send, WorkerConfig::default());
//! // A service runs `worker.start(waker)`; a test can take one step at a time:
//! let Outcome::Processed(jobs) = worker.run_once().await? else { panic!("no job") };
//! assert_eq!(jobs[0].outcome, JobOutcome::Completed);
//! # queue.purge().await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod claim;
mod clock;
mod complete;
mod control;
pub mod db;
mod enqueue;
mod error;
mod lease;
pub mod maintenance;
pub mod namespace;
mod notify;
mod queue;
mod retry;
mod stats;
mod types;
pub mod worker;

pub use clock::{Clock, ManualClock};
pub use complete::FailOutcome;
pub use error::QueueError;
pub use notify::{QueueWaker, Subscription, WakeReason};
pub use queue::{Queue, QueueConfig};
pub use retry::RetryPolicy;
pub use stats::QueueStats;
pub use types::{
    ClaimedJob, FailureKind, JobFailure, JobId, JobRecord, JobStatus, Lease, NewJob, QueueId,
};
