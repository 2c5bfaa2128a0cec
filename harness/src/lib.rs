//! Integration tests of queue-and-vector services that run in parallel against shared
//! PostgreSQL and Qdrant servers, with the real queue and real workers, and never see each other.
//!
//! One call gives a test its own environment:
//!
//! ```no_run
//! # async fn demo() -> Result<(), harness::HarnessError> {
//! let env = harness::TestEnv::new("my_test").await?;
//! // env.queue_id(), env.collection(), env.project(), env.pool(), env.qdrant()
//! # Ok(()) }
//! ```
//!
//! - [`TestEnv`]: a namespace (from the nextest run id and slot, else a UUID), its `queue_id`,
//!   a Qdrant collection, a project name containing the test's name, and a PostgreSQL pool sized
//!   from a connection budget. Cleaned up on drop (also after a panic); what a killed test left
//!   is reaped when the next environment starts.
//! - [`TestEnv::spawn_worker`]: workers bound to the environment's queue, running your handler.
//! - [`TestEnv::spawn_app`]: any axum `Router` served on an ephemeral port.
//! - [`TestEnv::spawn_service_app`] / [`TestEnv::spawn_service_worker`]: the reference service's
//!   router and worker pool bound to the environment.
//! - [`TestEnv::wait_for_job`] / [`TestEnv::wait_idle`]: waits that fail with a state dump.
//! - [`TestEnv::search`] and [`TestEnv::assert_isolated`]: project-scoped reads, and a check
//!   that fails a test which read without the project filter or wrote into another queue.
#![warn(missing_docs)]

mod app;
mod backend;
mod env;
mod error;
pub mod fixtures;
mod isolation;
mod logs;
mod naming;
mod reaper;
mod reference;
mod session;
mod wait;
mod worker;

pub use app::TestApp;
pub use backend::{PostgresBackend, QdrantBackend};
pub use env::{CollectionMode, TestEnv, TestEnvBuilder};
pub use error::HarnessError;
pub use isolation::{IsolationViolation, ScopedQdrant};
pub use naming::Namespace;
pub use wait::wait_until;
pub use worker::{JobHandler, WorkerHandle};

/// The queue core the environments are built on.
pub use service::queue;
