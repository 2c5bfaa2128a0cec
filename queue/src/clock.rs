//! Time as a parameter: the system clock (the database's `now()`) or a clock tests move by hand.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Where the queue reads "now" from.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The database server's `now()`: one clock for every process sharing the database.
    #[default]
    System,
    /// A clock that only moves when told to, so tests see backoff and lease expiry without sleeping.
    Manual(Arc<ManualClock>),
}

impl Clock {
    /// A manual clock starting at `start`.
    pub fn manual(start: DateTime<Utc>) -> (Self, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock {
            now: Mutex::new(start),
        });
        (Clock::Manual(clock.clone()), clock)
    }

    /// The value bound to `coalesce($n, now())` in queue statements.
    pub(crate) fn now_param(&self) -> Option<DateTime<Utc>> {
        match self {
            Clock::System => None,
            Clock::Manual(clock) => Some(clock.now()),
        }
    }
}

/// A clock under a test's control.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// The current time of this clock.
    pub fn now(&self) -> DateTime<Utc> {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now = now.checked_add_signed(by).unwrap_or(*now);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: DateTime<Utc>) {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = to;
    }
}
