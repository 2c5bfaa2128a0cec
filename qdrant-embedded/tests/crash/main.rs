//! Crash tests: the `qdrant-embedded` binary runs as a real process, is killed with SIGKILL
//! (or stopped with SIGTERM) and restarted on the same data directory.

mod delete;
mod durability;
mod points;
mod process;
mod quiet;
mod wal;

pub type TestResult = anyhow::Result<()>;

/// A collection name for a test.
pub fn unique_name(label: &str) -> String {
    format!("crash_{label}_{}", uuid::Uuid::new_v4().simple())
}
