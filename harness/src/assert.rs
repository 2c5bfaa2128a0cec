//! Assertions on what a test's code enqueued (River's `RequireInserted`, Oban's
//! `assert_enqueued` and `refute_enqueued`).

use std::fmt::Write as _;

use chrono::{DateTime, SubsecRound, Utc};
use queue::{JobRecord, JobStatus};
use serde_json::Value;

use crate::env::TestEnv;
use crate::error::{boxed, HarnessError};

/// Rows an assertion reads at most.
const MAX_ROWS: i64 = 10_000;

/// What an enqueued job must look like: a payload that contains `payload` (a JSON subset), and
/// optionally a priority, a schedule and a status. Start from [`Enqueued::payload`] or
/// [`Enqueued::any`].
#[derive(Clone, Debug, Default)]
pub struct Enqueued {
    payload: Option<Value>,
    priority: Option<i16>,
    scheduled: Option<(DateTime<Utc>, DateTime<Utc>)>,
    status: Option<JobStatus>,
}

impl Enqueued {
    /// Any job.
    pub fn any() -> Self {
        Self::default()
    }

    /// A job whose payload contains `subset`: every field of an object in `subset` is in the
    /// payload with a matching value (recursively); arrays and scalars must be equal.
    pub fn payload(subset: Value) -> Self {
        Self {
            payload: Some(subset),
            ..Self::default()
        }
    }

    /// ...with this priority.
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = Some(priority);
        self
    }

    /// ...scheduled (its `run_at`) exactly at `at`, to the microsecond PostgreSQL keeps.
    pub fn scheduled_at(mut self, at: DateTime<Utc>) -> Self {
        let at = at.trunc_subsecs(6);
        self.scheduled = Some((at, at));
        self
    }

    /// ...scheduled (its `run_at`) between `from` and `to`, both included.
    pub fn scheduled_between(mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        self.scheduled = Some((from.trunc_subsecs(6), to));
        self
    }

    /// ...in this status (any status otherwise: a job a worker already ran was still enqueued).
    pub fn status(mut self, status: JobStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Whether `job` matches.
    pub fn matches(&self, job: &JobRecord) -> bool {
        self.payload
            .as_ref()
            .is_none_or(|subset| contains(&job.payload, subset))
            && self.priority.is_none_or(|p| job.priority == p)
            && self
                .scheduled
                .is_none_or(|(from, to)| job.run_at >= from && job.run_at <= to)
            && self.status.is_none_or(|s| job.status == s)
    }
}

impl std::fmt::Display for Enqueued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(payload) = &self.payload {
            parts.push(format!("payload containing {payload}"));
        }
        if let Some(priority) = self.priority {
            parts.push(format!("priority {priority}"));
        }
        if let Some((from, to)) = self.scheduled {
            parts.push(if from == to {
                format!("scheduled at {from}")
            } else {
                format!("scheduled between {from} and {to}")
            });
        }
        if let Some(status) = self.status {
            parts.push(format!("status {}", status.as_str()));
        }
        if parts.is_empty() {
            f.write_str("any job")
        } else {
            write!(f, "a job with {}", parts.join(", "))
        }
    }
}

/// Whether `value` contains `subset` (see [`Enqueued::payload`]).
fn contains(value: &Value, subset: &Value) -> bool {
    match (value, subset) {
        (Value::Object(value), Value::Object(subset)) => subset
            .iter()
            .all(|(key, want)| value.get(key).is_some_and(|have| contains(have, want))),
        (value, subset) => value == subset,
    }
}

impl TestEnv {
    /// Every job of this environment's queue, in any status, oldest first.
    pub async fn jobs(&self) -> Result<Vec<JobRecord>, HarnessError> {
        self.queue()
            .list_all(MAX_ROWS)
            .await
            .map_err(|e| HarnessError::pg("listing the queue's jobs")(boxed(e)))
    }

    /// The jobs of this environment's queue that match `expected`, oldest first.
    pub async fn enqueued(&self, expected: &Enqueued) -> Result<Vec<JobRecord>, HarnessError> {
        let jobs = self.jobs().await?;
        Ok(jobs
            .into_iter()
            .filter(|job| expected.matches(job))
            .collect())
    }

    /// Fails unless at least one job of this environment's queue matches `expected`; returns
    /// the matches. The error lists what was enqueued.
    pub async fn assert_enqueued(
        &self,
        expected: Enqueued,
    ) -> Result<Vec<JobRecord>, HarnessError> {
        let jobs = self.jobs().await?;
        let matching: Vec<JobRecord> = jobs
            .iter()
            .filter(|j| expected.matches(j))
            .cloned()
            .collect();
        if matching.is_empty() {
            return Err(HarnessError::Assertion(format!(
                "expected {expected} in queue {}, but {}",
                self.queue_id(),
                listing(&jobs)
            )));
        }
        Ok(matching)
    }

    /// Fails if any job of this environment's queue matches `expected`. The error lists the
    /// matching jobs.
    pub async fn refute_enqueued(&self, expected: Enqueued) -> Result<(), HarnessError> {
        let matching = self.enqueued(&expected).await?;
        if matching.is_empty() {
            return Ok(());
        }
        Err(HarnessError::Assertion(format!(
            "expected no {expected} in queue {}, but {}",
            self.queue_id(),
            listing(&matching)
        )))
    }
}

/// "nothing was enqueued", or the jobs one per line.
fn listing(jobs: &[JobRecord]) -> String {
    if jobs.is_empty() {
        return "nothing was enqueued".into();
    }
    let mut out = format!("these {} job(s) were:", jobs.len());
    for job in jobs.iter().take(50) {
        let mut payload = job.payload.to_string();
        if payload.len() > 200 {
            let cut = (0..=200)
                .rev()
                .find(|i| payload.is_char_boundary(*i))
                .unwrap_or(0);
            payload.truncate(cut);
            payload.push('…');
        }
        let _ = write!(
            out,
            "\n  #{} {} priority {} run_at {} payload {payload}",
            job.id,
            job.status.as_str(),
            job.priority,
            job.run_at
        );
    }
    if jobs.len() > 50 {
        let _ = write!(out, "\n  … and {} more", jobs.len() - 50);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_payload_subset_matches_nested_fields_and_nothing_else() {
        let payload = json!({ "to": "a@b.c", "meta": { "lang": "en", "n": 1 }, "tags": [1, 2] });
        assert!(contains(&payload, &json!({ "to": "a@b.c" })));
        assert!(contains(&payload, &json!({ "meta": { "lang": "en" } })));
        assert!(contains(&payload, &json!({ "tags": [1, 2] })));
        assert!(!contains(&payload, &json!({ "tags": [1] })));
        assert!(!contains(&payload, &json!({ "meta": { "lang": "fr" } })));
        assert!(!contains(&payload, &json!({ "missing": null })));
        assert!(contains(&payload, &json!({})));
    }
}
