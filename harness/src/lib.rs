//! Integration tests of queue-and-vector services that run in parallel against shared
//! PostgreSQL and Qdrant servers, with the real queue and real workers, and never see each other.
//!
//! One call gives a test its own environment:
//!
//! ```no_run
//! # async fn demo() -> Result<(), harness::HarnessError> {
//! let env = harness::TestEnv::builder("my_test").vector_size(8).build().await?;
//! let _worker = env
//!     .spawn_worker(|job: harness::queue::ClaimedJob| async move {
//!         println!("working on {}", job.payload);
//!         Ok::<(), harness::queue::JobFailure>(())
//!     })
//!     .await?;
//! let id = env.enqueue(serde_json::json!({ "doc": "hello" })).await?;
//! env.wait_for_job(id, std::time::Duration::from_secs(30)).await?;
//! env.finish().await?; // isolation check, then cleanup (Drop cleans up too)
//! # Ok(()) }
//! ```
//!
//! - [`TestEnv`]: a namespace (from the nextest run id and slot, else a UUID), its `queue_id`,
//!   a Qdrant collection, a project name containing the test's name, and a PostgreSQL pool sized
//!   from a connection budget. Cleaned up on drop (also after a panic); what a killed test left
//!   is reaped when the next environment starts.
//! - [`TestEnv::spawn_worker`]: the queue crate's worker runtime (the one production runs),
//!   bound to the environment's queue and running your handler.
//! - [`TestEnv::spawn_app`]: any axum `Router` served on an ephemeral port.
//! - [`TestEnv::wait_for_job`] / [`TestEnv::wait_idle`]: waits that fail with a state dump.
//! - [`TestEnv::search`] and [`TestEnv::assert_isolated`]: project-scoped reads, and a check
//!   that fails a test which read without the project filter or wrote into another queue.
//!
//! - [`faults::PgServer`]: a PostgreSQL server of the test's own, to stop and restart under
//!   the service in fault tests.
//!
//! Qdrant comes from `QDRANT_URL` (a real server, or one embedded server shared by a nextest
//! run); with the `embedded-qdrant` feature, a process without `QDRANT_URL` starts its own.
#![warn(missing_docs)]

mod app;
mod assert;
mod backend;
mod builder;
mod collection;
mod env;
mod error;
pub mod faults;
pub mod fixtures;
mod inline;
mod isolation;
mod liveness;
mod logs;
mod naming;
mod proxy;
mod reaper;
mod runtime;
mod session;
mod wait;

pub use app::TestApp;
pub use assert::Enqueued;
pub use backend::{PostgresBackend, QdrantBackend};
pub use builder::TestEnvBuilder;
pub use collection::CollectionMode;
pub use env::{current_test_name, TestEnv};
pub use error::{BoxError, HarnessError};
pub use isolation::{IsolationViolation, ScopedQdrant};
pub use naming::Namespace;
pub use queue::namespace::DataKey;
pub use queue::worker::{Handler, JobOutcome, JobReport, WorkerHandle};
pub use wait::{wait_for, wait_until};

/// The queue crate the environments are built on, re-exported so a test uses the very version
/// the harness was built with (its `ClaimedJob`, `JobFailure`, `Queue` are the harness's).
pub use queue;
