//! [`Queue`]: one queue's handle (pool, id, clock, timing), and [`QueueConfig`].
//!
//! Every row belongs to one `queue_id`; every statement filters on it. The life of a row:
//!
//! ```text
//! pending ──claim──▶ processing ──complete──▶ completed
//!    ▲                  │  │
//!    │   transient fail │  └─ permanent fail, or attempts used up ──▶ dead ──redrive──▶ pending
//!    │                  ▼
//!    └──── run_at ─── failed            (expired lease: rescue → pending, or dead when used up)
//! ```
//!
//! Claims are one short statement; the work happens outside any transaction, fenced by the lease
//! token that only the current owner holds.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::{Clock, QueueId, RetryPolicy};

/// Timing of leases and idle waits.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// How long a claim stays owned without a heartbeat.
    pub lease: Duration,
    /// Backoff between attempts after transient failures.
    pub retry: RetryPolicy,
    /// How long an idle claimer waits for a notification before polling anyway.
    pub poll_interval: Duration,
    /// Top-level payload keys removed when a job completes (bulky input the owner no longer
    /// needs once the job's effects are recorded); a dead row keeps its whole payload for
    /// redrive. Empty (the default) keeps every payload whole.
    pub drop_on_complete: Vec<String>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            poll_interval: Duration::from_secs(5),
            drop_on_complete: Vec::new(),
        }
    }
}

/// One queue: a pool, a `queue_id`, a clock and the timing policy. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Queue {
    pub(crate) pool: PgPool,
    pub(crate) id: QueueId,
    pub(crate) clock: Clock,
    pub(crate) config: QueueConfig,
}

impl Queue {
    /// A queue over `pool` for `id`, on the system clock with the default config.
    pub fn new(pool: PgPool, id: QueueId) -> Self {
        Self {
            pool,
            id,
            clock: Clock::System,
            config: QueueConfig::default(),
        }
    }

    /// The same queue with another clock (tests pass a [`ManualClock`]).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same queue with another timing config.
    pub fn with_config(mut self, config: QueueConfig) -> Self {
        self.config = config;
        self
    }

    /// This queue's id.
    pub fn id(&self) -> &QueueId {
        &self.id
    }

    /// The pool the queue runs its statements on.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The timing config.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// The clock the queue reads time from.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// `Some(t)` for a manual clock, `None` to let the database use `now()`.
    pub(crate) fn now(&self) -> Option<DateTime<Utc>> {
        self.clock.now_param()
    }

    pub(crate) fn lease_ms(&self) -> f64 {
        self.config.lease.as_secs_f64() * 1000.0
    }
}
