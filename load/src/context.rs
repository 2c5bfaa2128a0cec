//! One execution's setup: pools, its own namespace (reaping what killed executions left), the
//! LISTEN connection, and a watcher of the connections the execution really holds.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use queue::namespace::{self, NamespaceGuard};
use queue::{QueueId, QueueWaker};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::cli::{Args, Sabotage, Scenario};

/// Namespaces of this tool start with this; the reaper looks only at these.
const PREFIX: &str = "load_";

/// Roles (`application_name` before the `:`) of the connections outside the `--pool-size`
/// budget: bookkeeping, not load. Every other connection of the execution counts.
const BOOKKEEPING: [&str; 3] = ["load-admin", "load-guard", "load-listener"];

/// Role of the connections of `--processes` worker processes.
pub const WORKER_ROLE: &str = "load-worker";

/// Everything a scenario needs.
pub struct Context {
    /// The options the tool was started with.
    pub args: Args,
    /// The pool every run and worker shares (`--pool-size`).
    pub pool: PgPool,
    /// Connections outside the budget: setup, verification and the connection watcher.
    pub admin: PgPool,
    /// Wake-ups for idle workers (its LISTEN connection is outside the budget too).
    pub waker: Arc<QueueWaker>,
    /// `--sabotage pool-over-budget`: the workers' second pool, outside the budget.
    pub over_budget: Option<PgPool>,
    guard: Mutex<Option<NamespaceGuard>>,
    namespace: String,
    /// Namespaces of killed earlier executions removed at start.
    pub reaped: usize,
}

impl Context {
    /// Connects, checks the schema, reaps leftovers and takes a namespace.
    pub async fn start(args: &Args) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(&args.database_url)
            .context("DATABASE_URL / --database-url is not a valid PostgreSQL URL")?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let namespace = format!("{PREFIX}{id}");
        // Every connection is named after the namespace, so the reaper of a killed execution can end
        // the sessions whose statements would otherwise commit after it deleted their rows.
        let app_name = namespace::client_name("load", &namespace);

        let admin = PgPoolOptions::new()
            .max_connections(3)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(
                options
                    .clone()
                    .application_name(&namespace::client_name("load-admin", &namespace)),
            )
            .await
            .with_context(|| format!("cannot connect to {}", redact(&args.database_url)))?;
        if !crate::db::is_migrated(&admin).await? {
            if !args.migrate {
                anyhow::bail!(
                    "the database lacks the queue's or the load suite's migrations; rerun with \
                     --migrate to apply them (or point --database-url at a migrated database)"
                );
            }
            crate::db::migrate(&admin)
                .await
                .context("applying migrations")?;
        }
        let reaped = namespace::reap_abandoned(&admin, PREFIX).await?.len();
        if reaped > 0 {
            eprintln!("load: removed {reaped} namespace(s) left by killed earlier executions");
        }
        let guard = NamespaceGuard::acquire(
            &options
                .clone()
                .application_name(&namespace::client_name("load-guard", &namespace)),
            &namespace,
            serde_json::json!({ "kind": "load" }),
        )
        .await?;

        let pool = PgPoolOptions::new()
            .max_connections(args.pool_size)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy_with(options.clone().application_name(&app_name));
        let over_budget = (args.sabotage == Sabotage::PoolOverBudget)
            .then(|| crate::ops::over_budget_pool(&options, &namespace, args.pool_size));
        let listener_pool = PgPoolOptions::new().max_connections(1).connect_lazy_with(
            options.application_name(&namespace::client_name("load-listener", &namespace)),
        );
        let waker = Arc::new(QueueWaker::start(&listener_pool).await?);

        Ok(Self {
            args: args.clone(),
            pool,
            admin,
            waker,
            over_budget,
            guard: Mutex::new(Some(guard)),
            namespace,
            reaped,
        })
    }

    /// This execution's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// A fresh queue of this execution for `scenario`, registered for cleanup.
    pub async fn queue_id(&self, scenario: Scenario) -> anyhow::Result<QueueId> {
        let name = serde_json::to_value(scenario)?;
        let id = QueueId::new(format!(
            "{}:{}",
            self.namespace,
            name.as_str().unwrap_or("scenario")
        ))?;
        if let Some(guard) = self.guard.lock().await.as_mut() {
            guard.register_queue(&id).await?;
        }
        Ok(id)
    }

    /// Watches how many connections of this execution are open, bookkeeping apart, until the
    /// token is cancelled. Counted by name in `pg_stat_activity` across every pool and process
    /// of the execution (`<role>:<namespace>`), so a pool that ignores the budget shows up.
    pub fn watch_connections(&self, stop: CancellationToken) -> ConnectionWatch {
        let max = Arc::new(std::sync::Mutex::new(MaxConnections::default()));
        let (admin, suffix, seen) = (
            self.admin.clone(),
            format!(":{}", self.namespace),
            max.clone(),
        );
        let task = tokio::spawn(async move {
            loop {
                let by_role: Result<Vec<(String, i64)>, _> = sqlx::query_as(
                    "SELECT split_part(application_name, ':', 1), count(*) FROM pg_stat_activity
                     WHERE right(application_name, length($1)) = $1
                       AND split_part(application_name, ':', 1) <> ALL($2)
                     GROUP BY 1",
                )
                .bind(&suffix)
                .bind(&BOOKKEEPING[..])
                .fetch_all(&admin)
                .await;
                if let Ok(by_role) = by_role {
                    let total = by_role.iter().map(|(_, n)| n).sum();
                    let mut max = seen.lock().unwrap_or_else(|p| p.into_inner());
                    if total > max.total {
                        *max = MaxConnections {
                            total,
                            by_role: by_role.into_iter().collect(),
                        };
                    }
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
        });
        ConnectionWatch { max, task }
    }

    /// The sessions of this execution's worker processes still open.
    pub async fn worker_sessions(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
            .bind(namespace::client_name(WORKER_ROLE, &self.namespace))
            .fetch_one(&self.admin)
            .await
    }

    /// Removes everything of this execution and closes the pools.
    pub async fn finish(&self) -> anyhow::Result<()> {
        if let Some(guard) = self.guard.lock().await.take() {
            guard
                .release()
                .await
                .context("cleaning up this execution's rows")?;
        }
        self.pool.close().await;
        if let Some(pool) = &self.over_budget {
            pool.close().await;
        }
        self.admin.close().await;
        Ok(())
    }
}

/// The most connections seen at once by [`Context::watch_connections`].
pub struct ConnectionWatch {
    max: Arc<std::sync::Mutex<MaxConnections>>,
    task: tokio::task::JoinHandle<()>,
}

/// The most connections of the execution seen at once, and whose they were.
#[derive(Debug, Clone, Default)]
pub struct MaxConnections {
    /// How many.
    pub total: i64,
    /// How many of each role (`load` is the budgeted pool).
    pub by_role: BTreeMap<String, i64>,
}

impl MaxConnections {
    /// `load 10, load-workers 4`.
    pub fn roles(&self) -> String {
        let roles: Vec<String> = self
            .by_role
            .iter()
            .map(|(role, n)| format!("{role} {n}"))
            .collect();
        roles.join(", ")
    }
}

impl ConnectionWatch {
    /// Stops watching (the token must be cancelled) and returns the maximum seen.
    pub async fn finish(self) -> MaxConnections {
        let _ = self.task.await;
        let max = self.max.lock().unwrap_or_else(|p| p.into_inner());
        max.clone()
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
