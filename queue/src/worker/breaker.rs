//! The worker's circuit breaker: when a job reports a dependency down
//! ([`crate::FailureKind::Unavailable`]), the worker stops claiming and probes the dependency
//! ([`super::Handler::probe`]) with growing pauses until it answers, then claims again. Rows in
//! hand that hit the outage are postponed without counting the attempt, so an outage costs no
//! attempts and sends nothing to the dead-letter queue.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// First pause between probes; it doubles up to [`MAX_PROBE_PAUSE`].
const FIRST_PROBE_PAUSE: Duration = Duration::from_millis(500);
/// Longest pause between probes.
const MAX_PROBE_PAUSE: Duration = Duration::from_secs(10);

/// Whether a worker is claiming.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerHealth {
    /// Claiming as usual.
    Working,
    /// Not claiming: a dependency its jobs need is down; it probes until it is back.
    Paused {
        /// What the last failure or probe said.
        reason: String,
        /// Since when.
        since: DateTime<Utc>,
    },
}

#[derive(Debug)]
struct Open {
    reason: String,
    since: DateTime<Utc>,
    next_probe: Instant,
    pause: Duration,
}

/// Closed (claiming) or open (probing).
#[derive(Debug, Default)]
pub(super) struct Breaker(Mutex<Option<Open>>);

impl Breaker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Open>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A job found a dependency down: stop claiming (or keep stopped, with the new reason).
    pub(super) fn trip(&self, reason: &str) {
        let mut state = self.lock();
        match state.as_mut() {
            Some(open) => open.reason = reason.to_owned(),
            None => {
                tracing::warn!(%reason, "a dependency is down; the worker stops claiming and probes it");
                *state = Some(Open {
                    reason: reason.to_owned(),
                    since: Utc::now(),
                    next_probe: Instant::now() + FIRST_PROBE_PAUSE,
                    pause: FIRST_PROBE_PAUSE,
                });
            }
        }
    }

    /// When the next probe is due, while open.
    pub(super) fn next_probe(&self) -> Option<Instant> {
        self.lock().as_ref().map(|open| open.next_probe)
    }

    /// What a probe found: closes on success, else waits longer before the next one.
    pub(super) fn probed(&self, result: Result<(), String>) {
        let mut state = self.lock();
        let Some(open) = state.as_mut() else {
            return;
        };
        match result {
            Ok(()) => {
                tracing::info!(down_for = ?(Utc::now() - open.since).to_std().unwrap_or_default(), "the dependency is back; claiming again");
                *state = None;
            }
            Err(reason) => {
                open.pause = (open.pause * 2).min(MAX_PROBE_PAUSE);
                open.next_probe = Instant::now() + open.pause;
                open.reason = reason;
            }
        }
    }

    pub(super) fn health(&self) -> WorkerHealth {
        match self.lock().as_ref() {
            None => WorkerHealth::Working,
            Some(open) => WorkerHealth::Paused {
                reason: open.reason.clone(),
                since: open.since,
            },
        }
    }
}
