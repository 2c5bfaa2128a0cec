//! The values that go in and out of the queue.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::QueueError;

/// A queue row's id.
pub type JobId = i64;

/// The name of one queue; tests get one each so they never share rows.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct QueueId(String);

impl QueueId {
    /// Validates `id`: 1-200 characters of `[A-Za-z0-9_.:-]`.
    pub fn new(id: impl Into<String>) -> Result<Self, QueueError> {
        let id = id.into();
        let valid = !id.is_empty()
            && id.len() <= 200
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
        if valid {
            Ok(Self(id))
        } else {
            Err(QueueError::InvalidQueueId(id))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for QueueId {
    type Error = QueueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<QueueId> for String {
    fn from(value: QueueId) -> Self {
        value.0
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a row is in its life (the `queue_job_status` enum).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "queue_job_status", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting to be claimed once `run_at` has come.
    Pending,
    /// Claimed under a lease.
    Processing,
    /// Done.
    Completed,
    /// An attempt failed; waits for its retry at `run_at`.
    Failed,
    /// In the dead-letter queue: permanent failure or attempts used up.
    Dead,
}

impl JobStatus {
    /// Every status, in life order.
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Pending,
        JobStatus::Processing,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Dead,
    ];

    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Dead => "dead",
        }
    }
}

/// A row to enqueue.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// What the worker needs (any JSON).
    pub payload: Value,
    /// What the row belongs to, e.g. an API job id.
    pub job_ref: Option<Uuid>,
    /// Higher runs first.
    pub priority: i16,
    /// Attempts before the row goes dead (at least 1).
    pub max_attempts: i32,
    /// Not claimable before this time; `None` means now.
    pub run_at: Option<DateTime<Utc>>,
}

impl NewJob {
    /// A job with this payload, priority 0, 5 attempts, runnable now.
    pub fn new(payload: Value) -> Self {
        Self {
            payload,
            job_ref: None,
            priority: 0,
            max_attempts: 5,
            run_at: None,
        }
    }

    /// Sets the owner reference.
    pub fn job_ref(mut self, job_ref: Uuid) -> Self {
        self.job_ref = Some(job_ref);
        self
    }

    /// Sets the priority (higher first).
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the number of attempts.
    pub fn max_attempts(mut self, max_attempts: i32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Delays the first claim until `run_at`.
    pub fn run_at(mut self, run_at: DateTime<Utc>) -> Self {
        self.run_at = Some(run_at);
        self
    }
}

/// Proof of ownership of a claimed row: complete, fail and heartbeat need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The row.
    pub id: JobId,
    /// The token the claim wrote; a rescue or a new claim replaces it.
    pub token: Uuid,
    /// Which attempt this claim is (1 for the first).
    pub attempt: i32,
}

/// A row handed to a worker.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ClaimedJob {
    /// The row.
    pub id: JobId,
    /// What the row belongs to.
    pub job_ref: Option<Uuid>,
    /// What the worker needs.
    pub payload: Value,
    /// Its priority.
    pub priority: i16,
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// The lease token of this claim.
    pub lease_token: Uuid,
    /// When the lease runs out without a heartbeat.
    pub locked_until: DateTime<Utc>,
    /// When the row was enqueued.
    pub created_at: DateTime<Utc>,
}

impl ClaimedJob {
    /// The lease to complete, fail or extend this claim with.
    pub fn lease(&self) -> Lease {
        Lease {
            id: self.id,
            token: self.lease_token,
            attempt: self.attempts,
        }
    }
}

/// A whole row, as stored.
#[derive(Clone, Debug, sqlx::FromRow, Serialize)]
pub struct JobRecord {
    /// The row.
    pub id: JobId,
    /// Its queue.
    pub queue_id: String,
    /// What the row belongs to.
    pub job_ref: Option<Uuid>,
    /// The payload.
    pub payload: Value,
    /// Where it is in its life.
    pub status: JobStatus,
    /// Its priority.
    pub priority: i16,
    /// Not claimable before.
    pub run_at: DateTime<Utc>,
    /// Attempts so far.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Lease end, while processing.
    pub locked_until: Option<DateTime<Utc>>,
    /// Lease token, while processing.
    pub lease_token: Option<Uuid>,
    /// Who holds the lease.
    pub locked_by: Option<String>,
    /// The latest attempt's error.
    pub last_error: Option<String>,
    /// Every attempt's error, oldest first.
    pub errors: Value,
    /// Enqueued at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Completed or dead at.
    pub finished_at: Option<DateTime<Utc>>,
    /// The `application_name` of the client that enqueued it.
    pub created_by: Option<String>,
}

/// Whether a failure is worth another attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// May succeed later (a timeout, a flaky call): retried with backoff; the attempt counts.
    Transient,
    /// Will fail again (bad input): dead at once.
    Permanent,
    /// A dependency the job needs is down (its store, its model): not the job's fault. The
    /// worker runtime postpones the row without counting the attempt and stops claiming until
    /// its handler's probe says the dependency is back ([`crate::worker::Handler::probe`]).
    /// [`crate::Queue::fail`] treats it as transient.
    Unavailable,
}

impl FailureKind {
    /// The kind as recorded in the error history.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Transient => "transient",
            FailureKind::Permanent => "permanent",
            FailureKind::Unavailable => "unavailable",
        }
    }
}

/// A failed attempt: its kind and message.
#[derive(Clone, Debug)]
pub struct JobFailure {
    /// Retry or not.
    pub kind: FailureKind,
    /// What went wrong.
    pub message: String,
}

impl JobFailure {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Transient,
            message: message.into(),
        }
    }

    /// A failure not worth retrying.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Permanent,
            message: message.into(),
        }
    }

    /// A dependency is down: see [`FailureKind::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Unavailable,
            message: message.into(),
        }
    }
}
