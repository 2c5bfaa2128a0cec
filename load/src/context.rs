//! One execution's setup: pools, its own namespace (reaping what killed executions left), the
//! LISTEN connection, and a watcher of the connections the pool really opens.

use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use queue::namespace::{self, NamespaceGuard};
use queue::{QueueId, QueueWaker};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::cli::{Args, Scenario};

/// Namespaces of this tool start with this; the reaper looks only at these.
const PREFIX: &str = "load_";

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
    /// The `application_name` of the pool's connections, to count them in `pg_stat_activity`.
    pub app_name: String,
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
        let listener_pool = PgPoolOptions::new().max_connections(1).connect_lazy_with(
            options.application_name(&namespace::client_name("load-listener", &namespace)),
        );
        let waker = Arc::new(QueueWaker::start(&listener_pool).await?);

        Ok(Self {
            args: args.clone(),
            pool,
            admin,
            waker,
            app_name,
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

    /// Watches how many connections the pool holds open until the token is cancelled.
    pub fn watch_connections(&self, stop: CancellationToken) -> ConnectionWatch {
        let max = Arc::new(AtomicI64::new(0));
        let (admin, app_name, seen) = (self.admin.clone(), self.app_name.clone(), max.clone());
        let task = tokio::spawn(async move {
            loop {
                let count: Result<i64, _> = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                )
                .bind(&app_name)
                .fetch_one(&admin)
                .await;
                if let Ok(count) = count {
                    seen.fetch_max(count, Ordering::Relaxed);
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
        });
        ConnectionWatch { max, task }
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
        self.admin.close().await;
        Ok(())
    }
}

/// The highest connection count seen by [`Context::watch_connections`].
pub struct ConnectionWatch {
    max: Arc<AtomicI64>,
    task: tokio::task::JoinHandle<()>,
}

impl ConnectionWatch {
    /// Stops watching (the token must be cancelled) and returns the maximum seen.
    pub async fn finish(self) -> i64 {
        let _ = self.task.await;
        self.max.load(Ordering::Relaxed)
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
