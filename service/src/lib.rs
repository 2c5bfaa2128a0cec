//! The reference queue-and-vector service.
//!
//! It is one user of the `queue` crate: its API enqueues on a queue, and its workers run the
//! queue's worker runtime with an [`worker::IndexHandler`].
//!
//! - [`db`]: the service's own tables, migrated after the queue's.
//! - [`index`]: the indexing pipeline (tree-sitter chunks, fastembed embeddings, Qdrant storage,
//!   project-scoped search) behind the synchronous [`index::Indexer`] API.
//! - [`configuration`]: [`configuration::Settings`] from CLI flags and environment variables.
//! - [`startup`]: [`startup::Application::build`] wires everything; `run_until_stopped` serves.
//! - [`api`]: the HTTP API, [`api::router`] over an [`api::AppState`].
//! - [`worker`]: the [`worker::IndexHandler`] that indexes queued files and repositories.
//! - [`jobs`]: the API's job tables (`index_jobs`, `index_job_files`) and job progress.
//! - [`metrics`]: Prometheus counters and histograms; [`telemetry`]: tracing setup.
//! - [`redact`]: secrets out of URLs, for everything logged, stored or answered.
#![warn(missing_docs)]

pub mod api;
pub mod configuration;
pub mod db;
pub mod index;
pub mod jobs;
pub mod metrics;
pub mod redact;
pub mod startup;
pub mod telemetry;
pub mod worker;
