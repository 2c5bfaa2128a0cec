//! The reference queue-and-vector service.
//!
//! - [`queue`]: the PostgreSQL queue core (enqueue, claim with `FOR UPDATE SKIP LOCKED`, leases,
//!   retries, dead-letter queue, pause/resume, wake-ups). The harness and the load suite use it too.
//! - [`db`]: connecting to PostgreSQL and applying the migrations once for all processes.
//! - [`namespace`]: ownership of short-lived namespaces (test envs, load executions) that a dead
//!   owner's successor can reap.
//! - [`index`]: the indexing pipeline (tree-sitter chunks, fastembed embeddings, Qdrant storage,
//!   project-scoped search) behind the synchronous [`index::Indexer`] API.
//! - [`configuration`]: [`configuration::Settings`] from CLI flags and environment variables.
//! - [`startup`]: [`startup::Application::build`] wires everything; `run_until_stopped` serves.
//! - [`api`]: the HTTP API, [`api::router`] over an [`api::AppState`].
//! - [`worker`]: the [`worker::WorkerPool`] that indexes queued files and repositories.
//! - [`jobs`]: the API's job tables (`index_jobs`, `index_job_files`) and job progress.
//! - [`metrics`]: Prometheus counters and histograms; [`telemetry`]: tracing setup.
#![warn(missing_docs)]

pub mod api;
pub mod configuration;
pub mod db;
pub mod index;
pub mod jobs;
pub mod metrics;
pub mod namespace;
pub mod queue;
pub mod startup;
pub mod telemetry;
pub mod worker;
