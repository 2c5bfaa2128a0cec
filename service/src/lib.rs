//! The reference queue-and-vector service.
//!
//! - [`queue`]: the PostgreSQL queue core (enqueue, claim with `FOR UPDATE SKIP LOCKED`, leases,
//!   retries, dead-letter queue, pause/resume, wake-ups). The harness and the load suite use it too.
//! - [`db`]: connecting to PostgreSQL and applying the migrations once for all processes.
//! - [`namespace`]: ownership of short-lived namespaces (test envs, load executions) that a dead
//!   owner's successor can reap.
#![warn(missing_docs)]

pub mod db;
pub mod namespace;
pub mod queue;
