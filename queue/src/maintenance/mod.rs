//! Maintenance services, one file each, each on a task of its own and never on a worker's
//! heartbeat path (a long VACUUM must not stop heartbeats and let live leases expire).
//!
//! - [`Rescuer`]: makes rows whose lease expired claimable again (or dead when their attempts
//!   are used up), per queue.
//! - [`Pruner`]: deletes finished rows (completed and dead) once the queue's [`Retention`]
//!   says so, per queue.
//! - [`Vacuumer`]: compacts `queue_jobs` when the server's autovacuum has not (off by default:
//!   only long-lived processes should run it, since a process exit cuts an index rebuild off).
//!
//! Each run takes a PostgreSQL advisory lock first and skips its turn when another process holds
//! it, so at most one process runs each service (per queue, for the rescuer) at a time. Every
//! service has a `run_once` that tests call directly.

mod pruner;
mod rescuer;
mod vacuum;

use std::time::Duration;

use sqlx::PgConnection;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use pruner::{Pruned, Pruner, Retention};
pub use rescuer::Rescuer;
pub use vacuum::{vacuum_due, vacuum_if_bloated, Vacuumer};

use crate::Queue;

/// Which services run, and how often.
#[derive(Clone, Debug)]
pub struct MaintenanceConfig {
    /// How often expired leases are rescued (also once at start); `None` rescues nothing.
    pub rescue_interval: Option<Duration>,
    /// How often `queue_jobs` is checked for bloat; `None` (the default) never vacuums.
    pub vacuum_interval: Option<Duration>,
    /// How often finished rows are pruned by [`MaintenanceConfig::retention`]; `None` keeps
    /// them forever.
    pub prune_interval: Option<Duration>,
    /// How long finished rows stay.
    pub retention: Retention,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self {
            rescue_interval: Some(Duration::from_secs(30)),
            vacuum_interval: None,
            prune_interval: Some(Duration::from_secs(60)),
            retention: Retention::default(),
        }
    }
}

/// The services for one queue, not started yet.
#[derive(Debug)]
pub struct Maintenance {
    queue: Queue,
    config: MaintenanceConfig,
}

/// Running services; [`MaintenanceHandle::stop`] ends them (a run under way finishes first).
#[derive(Debug)]
pub struct MaintenanceHandle {
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl Maintenance {
    /// The services `config` asks for, over `queue`.
    pub fn new(queue: Queue, config: MaintenanceConfig) -> Self {
        Self { queue, config }
    }

    /// Starts each service on a task of its own.
    pub fn start(self) -> MaintenanceHandle {
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        if let Some(every) = self.config.rescue_interval {
            let rescuer = Rescuer::new(self.queue.clone());
            tasks.spawn(repeat(every, stop.clone(), move || {
                let rescuer = rescuer.clone();
                async move { rescuer.run_once().await.map(|_| ()) }
            }));
        }
        if let Some(every) = self.config.prune_interval {
            let pruner = Pruner::new(self.queue.clone(), self.config.retention.clone());
            tasks.spawn(repeat(every, stop.clone(), move || {
                let pruner = pruner.clone();
                async move { pruner.run_once().await.map(|_| ()) }
            }));
        }
        if let Some(every) = self.config.vacuum_interval {
            let vacuumer = Vacuumer::new(self.queue.pool().clone());
            tasks.spawn(repeat(every, stop.clone(), move || {
                let vacuumer = vacuumer.clone();
                async move { vacuumer.run_once().await.map(|_| ()) }
            }));
        }
        MaintenanceHandle { stop, tasks }
    }
}

impl MaintenanceHandle {
    /// Stops every service and waits for runs under way.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for MaintenanceHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Runs `run` at once and then every `every` until `stop`; failures are logged, not fatal.
async fn repeat<F, Fut>(every: Duration, stop: CancellationToken, run: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::QueueError>>,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        if let Err(error) = run().await {
            tracing::warn!(%error, "maintenance run failed; trying again at the next interval");
        }
    }
}

/// Takes the session advisory lock `key` on `conn` if no other session holds it: false when
/// another process is running the same service right now.
async fn try_lock(conn: &mut PgConnection, key: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(key)
        .fetch_one(conn)
        .await
}

/// Gives back a lock taken with [`try_lock`].
async fn unlock(conn: &mut PgConnection, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
        .bind(key)
        .execute(conn)
        .await
        .map(drop)
}
