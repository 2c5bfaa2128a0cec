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
//! ```no_run
//! use queue::{NewJob, Queue, QueueId};
//! use queue::worker::{Worker, WorkerConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = queue::db::connect(&queue::db::database_url_from_env(), 5, std::time::Duration::from_secs(5)).await?;
//! queue::db::migrate(&pool).await?;
//! let queue = Queue::new(pool.clone(), QueueId::new("emails")?);
//! queue.enqueue(NewJob::new(serde_json::json!({ "to": "a@example.com" }))).await?;
//!
//! let waker = std::sync::Arc::new(queue::QueueWaker::start(&pool).await?);
//! let worker = Worker::new(queue, |job: queue::ClaimedJob| async move {
//!     println!("sending {}", job.payload["to"]);
//!     Ok::<(), queue::JobFailure>(())
//! }, WorkerConfig::default())
//! .start(waker);
//! worker.shutdown().await;
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
