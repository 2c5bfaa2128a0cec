//! [`TestEnvBuilder`]: an environment's options, and provisioning it.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use queue::namespace::{DataKey, NamespaceError};
use queue::{Clock, Queue, QueueConfig, QueueId};
use serde_json::{json, Value};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::backend::{PostgresBackend, QdrantBackend};
use crate::collection::{self, CollectionMode};
use crate::env::TestEnv;
use crate::error::{boxed, HarnessError};
use crate::isolation::ScopedQdrant;
use crate::naming::{self, Namespace};
use crate::runtime::on_runtime;
use crate::session::Session;
use crate::{logs, reaper};

/// Connections per process beyond the pool: the shared session (namespace locks, provisioning)
/// and, once a worker runs, LISTEN.
const EXTRA_CONNECTIONS: u32 = 2;

/// Options of [`TestEnv`]; start from [`TestEnv::builder`].
#[derive(Clone, Debug)]
pub struct TestEnvBuilder {
    pub(crate) test_name: String,
    pub(crate) mode: CollectionMode,
    pub(crate) vector_size: u64,
    pub(crate) pool_size: Option<u32>,
    pub(crate) postgres: PostgresBackend,
    pub(crate) qdrant: QdrantBackend,
    pub(crate) queue_config: QueueConfig,
    pub(crate) manual_clock: bool,
    pub(crate) record_tenants: bool,
    pub(crate) migrations: Vec<&'static Migrator>,
    pub(crate) tables: Vec<(String, String, DataKey)>,
}

// Here rather than in env.rs, so the environment does not depend on how it is built.
impl TestEnv {
    /// Options for an environment of test `test_name` (the name goes into the project name).
    pub fn builder(test_name: impl Into<String>) -> TestEnvBuilder {
        TestEnvBuilder::new(test_name.into())
    }
}

impl TestEnvBuilder {
    /// Options for an environment of test `test_name` (the name goes into the project name).
    pub(crate) fn new(test_name: String) -> Self {
        Self {
            test_name,
            mode: CollectionMode::default(),
            vector_size: 384,
            pool_size: None,
            postgres: PostgresBackend::from_env(),
            qdrant: QdrantBackend::from_env(),
            queue_config: QueueConfig::default(),
            manual_clock: false,
            record_tenants: std::env::var_os("HARNESS_TENANT_RECORDER").is_some_and(|v| v == "1"),
            migrations: Vec::new(),
            tables: Vec::new(),
        }
    }

    /// Collection per slot (default) or per test.
    pub fn collection_mode(mut self, mode: CollectionMode) -> Self {
        self.mode = mode;
        self
    }

    /// Dimensions of the collection's vectors (default 384, all-MiniLM-L6-v2).
    pub fn vector_size(mut self, size: u64) -> Self {
        self.vector_size = size;
        self
    }

    /// A fixed pool size instead of one derived from the connection budget.
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = Some(size.max(1));
        self
    }

    /// Where PostgreSQL comes from (default: `DATABASE_URL`).
    pub fn postgres(mut self, backend: PostgresBackend) -> Self {
        self.postgres = backend;
        self
    }

    /// Where Qdrant comes from (default: `QDRANT_URL`, else embedded per process).
    pub fn qdrant(mut self, backend: QdrantBackend) -> Self {
        self.qdrant = backend;
        self
    }

    /// Lease, retry and polling settings of the environment's queue.
    pub fn queue_config(mut self, config: QueueConfig) -> Self {
        self.queue_config = config;
        self
    }

    /// A manual clock for this environment, starting now: its queue, the workers the harness
    /// spawns and their rescuer read time from it, so backoff and lease expiry are tested by
    /// moving it ([`TestEnv::advance`]), never by sleeping.
    pub fn manual_clock(mut self) -> Self {
        self.manual_clock = true;
        self
    }

    /// Puts the tenant recorder between this environment and Qdrant: every read, count, scroll
    /// and delete by filter of the environment's collection that is not pinned to its project,
    /// by the test or by the service under test (given [`TestEnv::qdrant_url`]), fails the
    /// isolation check. For a real Qdrant at `QDRANT_URL`; the embedded Qdrant's strict-tenant
    /// mode refuses such requests outright. Also on when `HARNESS_TENANT_RECORDER=1`.
    pub fn record_tenant_reads(mut self) -> Self {
        self.record_tenants = true;
        self
    }

    /// Your own migrations (`sqlx::migrate!()`), applied once per database however many test
    /// processes start at once (the queue's are applied first). Their versions must differ from
    /// the queue's and the harness's (use timestamps of your own).
    pub fn migrations(mut self, migrator: &'static Migrator) -> Self {
        self.migrations.push(migrator);
        self
    }

    /// A table of yours whose rows belong to a test's queue or project: each environment deletes
    /// its rows at finish, on drop, and when a killed test is reaped, and the isolation check
    /// reports writes by the test's connections to other tests' rows. `key` says what
    /// `key_column` holds: [`DataKey::QueueId`], or [`DataKey::Resource`]`("project")` for the
    /// environment's project. (A migration of yours can register it instead, see
    /// [`queue::namespace::register_table`].)
    pub fn owned_table(
        mut self,
        table: impl Into<String>,
        key_column: impl Into<String>,
        key: DataKey,
    ) -> Self {
        self.tables.push((table.into(), key_column.into(), key));
        self
    }

    /// Provisions the environment.
    pub async fn build(self) -> Result<TestEnv, HarnessError> {
        logs::init();
        let namespace = Namespace::for_test(&self.test_name);
        let mode = if namespace.run.is_none() {
            CollectionMode::PerTest
        } else {
            self.mode
        };
        let database_url = self.postgres.url().await?;
        let qdrant_url = self.qdrant.url().await?;
        let session = Session::get(&database_url, &qdrant_url).await?;
        for migrator in self.migrations.iter().copied() {
            let session = session.clone();
            on_runtime(async move { session.ensure_migrated(migrator).await }).await?;
        }
        for (table, column, key) in self.tables.clone() {
            let session = session.clone();
            on_runtime(async move { session.register_table(&table, &column, &key).await }).await?;
        }
        // Named after the namespace so a reaper can end this test's sessions if the test is killed.
        let app_name = queue::namespace::client_name("harness", &namespace.id);
        let options = PgConnectOptions::from_str(&database_url)
            .map_err(|e| HarnessError::pg("parsing DATABASE_URL")(boxed(e)))?
            .application_name(&app_name)
            .options([("jit", "off")]);
        // The test's own pool, opened on first use on the test's runtime; its connections carry
        // the environment's application_name, which the foreign-write check relies on.
        let pool = PgPoolOptions::new()
            .max_connections(self.pool_size.unwrap_or_else(pool_size_from_budget))
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy_with(options);

        let collection = match mode {
            // The dimension is part of the name: the slot's next test may want another one.
            CollectionMode::PerSlot => format!("{}d{}", namespace.id, self.vector_size),
            CollectionMode::PerTest => {
                format!(
                    "{}_c{}",
                    namespace.id,
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                )
            }
        };
        let resources = json!({
            "collection": collection,
            "mode": mode.as_str(),
            "project": namespace.project,
        });
        let queue_id =
            QueueId::new(namespace.id.clone()).map_err(|e| HarnessError::Config(e.to_string()))?;
        let provisioned = on_runtime(provision(
            session.clone(),
            Provision {
                namespace: namespace.id.clone(),
                run: namespace.run.clone(),
                resources,
                queue_id: queue_id.clone(),
                collection: collection.clone(),
                vector_size: self.vector_size,
                mode,
            },
        ))
        .await;
        let reaped = match provisioned {
            Ok(reaped) => reaped,
            Err(err) => {
                naming::release_name(&namespace.id);
                return Err(err);
            }
        };
        let mut queue = Queue::new(pool.clone(), queue_id).with_config(self.queue_config);
        let clock = self.manual_clock.then(|| {
            let (clock, handle) = Clock::manual(chrono::Utc::now());
            queue = queue.clone().with_clock(clock);
            handle
        });
        let recorder = match self.record_tenants {
            true => {
                let recorder = crate::proxy::recorder_for(&qdrant_url).await?;
                recorder.scope(&collection, &namespace.project);
                Some(recorder)
            }
            false => None,
        };
        let scoped = ScopedQdrant::new(
            session.qdrant().clone(),
            collection.clone(),
            namespace.project.clone(),
        );
        tracing::info!(namespace = %namespace.id, %collection, project = %namespace.project, "test environment ready");
        Ok(TestEnv::from_parts(crate::env::Parts {
            namespace,
            queue,
            pool,
            app_name,
            database_url,
            qdrant_url,
            session,
            collection,
            mode,
            scoped,
            clock,
            recorder,
            reaped,
        }))
    }
}

/// `HARNESS_PG_BUDGET` (default 48) connections shared by `HARNESS_TEST_THREADS` (default 8)
/// test processes, less the lock and LISTEN connections each process holds; at least 2.
fn pool_size_from_budget() -> u32 {
    let read = |name: &str, default: u32| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(default)
    };
    let budget = read("HARNESS_PG_BUDGET", 48);
    let threads = read("HARNESS_TEST_THREADS", 8);
    (budget / threads).saturating_sub(EXTRA_CONNECTIONS).max(2)
}

/// What [`provision`] sets up.
struct Provision {
    namespace: String,
    run: Option<String>,
    resources: Value,
    queue_id: QueueId,
    collection: String,
    vector_size: u64,
    mode: CollectionMode,
}

/// Reaps what dead owners left, joins the run, takes the namespace (its queue emptied) and
/// readies the collection; returns how many dead namespaces were reaped. Runs on the harness's
/// runtime, in a handful of round trips on connections the process already has.
async fn provision(session: Arc<Session>, p: Provision) -> Result<usize, HarnessError> {
    let reaped = reaper::reap(&session).await?;
    if session.first_sweep() {
        // Not on the critical path: nothing of this test depends on finished runs' collections.
        let session = session.clone();
        tokio::spawn(async move {
            if let Err(err) = reaper::sweep_finished_runs(&session).await {
                tracing::debug!(error = %err, "sweeping finished runs' collections");
            }
        });
    }
    if let Some(run) = &p.run {
        session.join_run(run).await?;
    }
    // A reaper may hold the name for a moment (it found the slot's previous holder dead).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !session
        .take(&p.namespace, &p.resources, &p.queue_id)
        .await?
    {
        if tokio::time::Instant::now() >= deadline {
            return Err(HarnessError::pg("taking the namespace")(boxed(
                NamespaceError::Busy(p.namespace),
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let prepared =
        collection::prepare(session.qdrant(), &p.collection, p.vector_size, p.mode).await;
    let registered = match (prepared, &p.run) {
        (Ok(true), Some(run)) if p.mode == CollectionMode::PerSlot => {
            session.register_collection(&p.collection, run).await
        }
        (prepared, _) => prepared.map(drop),
    };
    if let Err(err) = registered {
        let _ = session.release(&p.namespace, None).await;
        return Err(err);
    }
    Ok(reaped)
}
