//! The queue core's errors.

/// Errors of the queue core.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// A queue id that is empty, too long or has characters outside `[A-Za-z0-9_.:-]`.
    #[error("invalid queue id {0:?}: use 1-200 characters of [A-Za-z0-9_.:-]")]
    InvalidQueueId(String),
    /// A job that cannot be stored as given.
    #[error("invalid job: {0}")]
    InvalidJob(String),
    /// The database refused or failed a statement.
    #[error("queue database error: {0}")]
    Database(#[from] sqlx::Error),
}
