//! One test's environment: namespace, queue, collection, project and pool, cleaned up after.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, Distance, FieldType, Filter, KeywordIndexParamsBuilder,
    VectorParamsBuilder,
};
use qdrant_client::Qdrant;
use serde_json::{json, Value};
use service::namespace::NamespaceError;
use service::queue::{
    JobId, JobRecord, JobStatus, NewJob, Queue, QueueConfig, QueueId, QueueWaker,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::app::TestApp;
use crate::backend::{PostgresBackend, QdrantBackend};
use crate::error::{boxed, HarnessError};
use crate::isolation::{IsolationViolation, ScopedQdrant, PROJECT_FIELD};
use crate::naming::{self, Namespace};
use crate::session::{block_on_runtime, on_runtime, Session};
use crate::worker::{JobHandler, WorkerHandle};
use crate::{logs, reaper};

/// How an environment gets its Qdrant collection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CollectionMode {
    /// One collection per nextest slot, reused by the slot's next test (its points removed at
    /// acquire); measured faster, see `docs/harness.md`. Outside nextest this falls back to
    /// [`CollectionMode::PerTest`].
    #[default]
    PerSlot,
    /// A collection of its own, deleted at the end.
    PerTest,
}

/// Options of [`TestEnv`]; start from [`TestEnv::builder`].
#[derive(Clone, Debug)]
pub struct TestEnvBuilder {
    test_name: String,
    mode: CollectionMode,
    vector_size: u64,
    pool_size: Option<u32>,
    postgres: PostgresBackend,
    qdrant: QdrantBackend,
    queue_config: QueueConfig,
}

/// A test's own namespace on shared servers. See the crate docs.
pub struct TestEnv {
    namespace: Namespace,
    queue: Queue,
    pool: PgPool,
    app_name: String,
    database_url: String,
    qdrant_url: String,
    session: Arc<Session>,
    collection: String,
    mode: CollectionMode,
    scoped: ScopedQdrant,
    /// Whether the namespace is still held (cleanup not done yet).
    held: bool,
    reaped: usize,
}

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("namespace", &self.namespace.id)
            .field("collection", &self.collection)
            .field("project", &self.namespace.project)
            .finish_non_exhaustive()
    }
}

/// Connections per process beyond the pool: the shared session (namespace locks, provisioning)
/// and, once a worker runs, LISTEN.
const EXTRA_CONNECTIONS: u32 = 2;

impl TestEnvBuilder {
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
        // Named after the namespace so a reaper can end this test's sessions if the test is killed.
        let app_name = service::namespace::client_name("harness", &namespace.id);
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
            "mode": if mode == CollectionMode::PerTest { "per_test" } else { "per_slot" },
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
        let queue = Queue::new(pool.clone(), queue_id).with_config(self.queue_config);
        let scoped = ScopedQdrant::new(
            session.qdrant().clone(),
            collection.clone(),
            namespace.project.clone(),
        );
        tracing::info!(namespace = %namespace.id, %collection, project = %namespace.project, "test environment ready");
        Ok(TestEnv {
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
            held: true,
            reaped,
        })
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
    if let Err(err) =
        prepare_collection(session.qdrant(), &p.collection, p.vector_size, p.mode).await
    {
        let _ = session.release(&p.namespace, None).await;
        return Err(err);
    }
    Ok(reaped)
}

async fn prepare_collection(
    client: &Qdrant,
    collection: &str,
    size: u64,
    mode: CollectionMode,
) -> Result<(), HarnessError> {
    let exists = mode == CollectionMode::PerSlot
        && client
            .collection_exists(collection)
            .await
            .map_err(|e| HarnessError::qdrant("checking the collection")(boxed(e)))?;
    if exists {
        // The slot's previous test normally removed its points; a killed one did not.
        let left = client
            .count(CountPointsBuilder::new(collection).exact(true))
            .await
            .map_err(|e| HarnessError::qdrant("counting leftovers")(boxed(e)))?
            .result
            .map(|r| r.count)
            .unwrap_or(0);
        if left > 0 {
            client
                .delete_points(
                    DeletePointsBuilder::new(collection)
                        .points(Filter::default())
                        .wait(true),
                )
                .await
                .map_err(|e| HarnessError::qdrant("removing leftovers")(boxed(e)))?;
        }
        return Ok(());
    }
    client
        .create_collection(
            CreateCollectionBuilder::new(collection)
                .vectors_config(VectorParamsBuilder::new(size, Distance::Cosine)),
        )
        .await
        .map_err(|e| HarnessError::qdrant("creating the collection")(boxed(e)))?;
    client
        .create_field_index(
            CreateFieldIndexCollectionBuilder::new(collection, PROJECT_FIELD, FieldType::Keyword)
                .field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true))
                .wait(true),
        )
        .await
        .map_err(|e| HarnessError::qdrant("indexing the project field")(boxed(e)))?;
    Ok(())
}

impl TestEnv {
    /// An environment with the defaults, named after the running test.
    pub async fn new() -> Result<Self, HarnessError> {
        Self::builder(current_test_name()).build().await
    }

    /// Options for an environment of test `test_name` (the name goes into the project name).
    pub fn builder(test_name: impl Into<String>) -> TestEnvBuilder {
        TestEnvBuilder {
            test_name: test_name.into(),
            mode: CollectionMode::default(),
            vector_size: 384,
            pool_size: None,
            postgres: PostgresBackend::from_env(),
            qdrant: QdrantBackend::from_env(),
            queue_config: QueueConfig::default(),
        }
    }

    /// The namespace's names.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// This environment's queue id.
    pub fn queue_id(&self) -> &QueueId {
        self.queue.id()
    }

    /// This environment's queue.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The pool (its connections carry this environment's `application_name`).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The PostgreSQL URL.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// This environment's Qdrant collection.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// How the collection was provisioned.
    pub fn collection_mode(&self) -> CollectionMode {
        self.mode
    }

    /// This environment's project name (it contains the test's name).
    pub fn project(&self) -> &str {
        &self.namespace.project
    }

    /// The Qdrant gRPC URL.
    pub fn qdrant_url(&self) -> &str {
        &self.qdrant_url
    }

    /// A Qdrant client (unchecked; prefer [`TestEnv::qdrant`] for reads).
    pub fn qdrant_client(&self) -> Arc<Qdrant> {
        self.session.qdrant().clone()
    }

    /// Project-scoped, checked access to the collection.
    pub fn qdrant(&self) -> &ScopedQdrant {
        &self.scoped
    }

    /// Namespaces of dead owners this environment removed when it started.
    pub fn reaped(&self) -> usize {
        self.reaped
    }

    /// Nearest points of this project (always filtered by project).
    pub async fn search(
        &self,
        vector: Vec<f32>,
        limit: u64,
    ) -> Result<Vec<qdrant_client::qdrant::ScoredPoint>, HarnessError> {
        self.scoped.search(vector, limit).await
    }

    /// Enqueues one job on this environment's queue.
    pub async fn enqueue(&self, payload: Value) -> Result<JobId, HarnessError> {
        self.queue
            .enqueue(NewJob::new(payload))
            .await
            .map_err(|e| HarnessError::pg("enqueueing")(boxed(e)))
    }

    /// The wake-up listener shared by the workers of this process (started on first use).
    pub async fn waker(&self) -> Result<Arc<QueueWaker>, HarnessError> {
        let session = self.session.clone();
        on_runtime(async move { session.waker().await }).await
    }

    /// One worker bound to this environment's queue, running `handler`.
    pub async fn spawn_worker(
        &self,
        handler: impl JobHandler,
    ) -> Result<WorkerHandle, HarnessError> {
        self.spawn_workers(handler, 1).await
    }

    /// `concurrency` workers bound to this environment's queue, running `handler`.
    pub async fn spawn_workers(
        &self,
        handler: impl JobHandler,
        concurrency: usize,
    ) -> Result<WorkerHandle, HarnessError> {
        let waker = self.waker().await?;
        Ok(WorkerHandle::spawn(
            self.queue.clone(),
            waker,
            Arc::new(handler),
            concurrency,
        ))
    }

    /// Serves `router` (built by the test from this environment's pool, queue and collection)
    /// on an ephemeral port.
    pub async fn spawn_app(&self, router: axum::Router) -> Result<TestApp, HarnessError> {
        TestApp::serve(router).await
    }

    /// Waits until row `id` is finished (completed or dead) and returns it; on timeout fails
    /// with a dump of the queue's state.
    pub async fn wait_for_job(
        &self,
        id: JobId,
        timeout: Duration,
    ) -> Result<JobRecord, HarnessError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let row = self
                .queue
                .get(id)
                .await
                .map_err(|e| HarnessError::pg("reading a job")(boxed(e)))?;
            match row {
                Some(row) if matches!(row.status, JobStatus::Completed | JobStatus::Dead) => {
                    return Ok(row)
                }
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(self
                        .timeout(
                            format!("job {id} of queue {} to finish", self.queue_id()),
                            timeout,
                        )
                        .await)
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Waits until nothing is pending, processing or awaiting a retry in this queue.
    pub async fn wait_idle(&self, timeout: Duration) -> Result<(), HarnessError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let stats = self
                .queue
                .stats()
                .await
                .map_err(|e| HarnessError::pg("reading queue stats")(boxed(e)))?;
            if stats.depth() == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self
                    .timeout(format!("queue {} to be idle", self.queue_id()), timeout)
                    .await);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn timeout(&self, what: String, timeout: Duration) -> HarnessError {
        HarnessError::Timeout {
            what,
            timeout,
            dump: self.state_dump().await,
        }
    }

    /// This environment's queue rows by status, the latest errors and recent log lines.
    pub async fn state_dump(&self) -> String {
        let mut out = format!(
            "--- state of {} (collection {}, project {})\n",
            self.queue_id(),
            self.collection,
            self.project()
        );
        match self.queue.stats().await {
            Ok(stats) => out.push_str(&format!(
                "rows by status: {:?} (paused: {})\n",
                stats.by_status, stats.paused
            )),
            Err(err) => out.push_str(&format!("rows by status: unavailable ({err})\n")),
        }
        for status in [
            JobStatus::Processing,
            JobStatus::Failed,
            JobStatus::Pending,
            JobStatus::Dead,
        ] {
            if let Ok(rows) = self.queue.list(status, 5).await {
                for row in rows {
                    out.push_str(&format!(
                        "  {} #{} attempts {}/{} locked_by {:?} last_error {:?}\n",
                        status.as_str(),
                        row.id,
                        row.attempts,
                        row.max_attempts,
                        row.locked_by,
                        row.last_error
                    ));
                }
            }
        }
        out.push_str("recent log lines:\n");
        for line in logs::recent(self.queue_id().as_str(), 30) {
            out.push_str("  ");
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// Fails when this test read its collection without the project filter (through
    /// [`TestEnv::qdrant`]) or wrote queue rows outside its own queue.
    pub async fn assert_isolated(&self) -> Result<(), HarnessError> {
        let mut breaches: Vec<String> = self
            .scoped
            .violations()
            .into_iter()
            .map(|IsolationViolation(v)| v)
            .collect();
        let foreign =
            service::namespace::rows_written_outside(&self.pool, &self.app_name, self.queue_id())
                .await
                .map_err(|e| HarnessError::pg("checking foreign writes")(boxed(e)))?;
        for (queue, n) in foreign {
            breaches.push(format!(
                "{n} queue row(s) written to queue {queue:?}, not this test's {:?}",
                self.queue_id().as_str()
            ));
        }
        if breaches.is_empty() {
            Ok(())
        } else {
            Err(HarnessError::Isolation(breaches.join("; ")))
        }
    }

    /// Checks isolation, then removes the environment's rows, points (and per-test collection).
    pub async fn finish(mut self) -> Result<(), HarnessError> {
        let isolated = self.assert_isolated().await;
        self.cleanup_now().await?;
        isolated
    }

    async fn cleanup_now(&mut self) -> Result<(), HarnessError> {
        if !std::mem::take(&mut self.held) {
            return Ok(());
        }
        on_runtime(self.cleanup(None)).await.map(|_| ())
    }

    /// Removes the points (or per-test collection), then the namespace's rows and lock, and makes
    /// the name available again; with `foreign_check`, first reports rows written to other queues.
    fn cleanup(
        &self,
        foreign_check: Option<String>,
    ) -> impl std::future::Future<Output = Result<Vec<(String, i64)>, HarnessError>> + Send + 'static
    {
        let session = self.session.clone();
        let (namespace, collection, project, mode) = (
            self.namespace.id.clone(),
            self.collection.clone(),
            self.project().to_owned(),
            self.mode,
        );
        let queue_id = self.queue_id().clone();
        async move {
            if let Err(err) = remove_points(session.qdrant(), &collection, &project, mode).await {
                tracing::warn!(%collection, error = %err, "removing the test's points failed; the next environment reaps them");
            }
            let check = foreign_check.as_deref().map(|app| (app, &queue_id));
            let foreign = session.release(&namespace, check).await?;
            naming::release_name(&namespace);
            Ok(foreign)
        }
    }
}

/// Removes what an environment put in Qdrant: its per-test collection, or its project's points in
/// the slot's collection. Also used by the reaper for dead environments.
pub(crate) async fn remove_points(
    client: &Qdrant,
    collection: &str,
    project: &str,
    mode: CollectionMode,
) -> Result<(), qdrant_client::QdrantError> {
    match mode {
        CollectionMode::PerTest => client.delete_collection(collection).await.map(|_| ()),
        CollectionMode::PerSlot => client
            .delete_points(
                DeletePointsBuilder::new(collection)
                    .points(Filter::must([Condition::matches(
                        PROJECT_FIELD,
                        project.to_owned(),
                    )]))
                    .wait(true),
            )
            .await
            .map(|_| ()),
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if !std::mem::take(&mut self.held) {
            return;
        }
        // Drop may run while the test's runtime is blocked (or unwinding): the cleanup runs on
        // the harness's own runtime, which this thread only waits for.
        let breaches = self.scoped.violations();
        let foreign = match block_on_runtime(self.cleanup(Some(self.app_name.clone()))) {
            Ok(foreign) => foreign,
            Err(err) => {
                eprintln!(
                    "harness: cleanup of {} failed ({err}); the next environment reaps it",
                    self.namespace.id
                );
                Vec::new()
            }
        };
        if !std::thread::panicking() && (!breaches.is_empty() || !foreign.is_empty()) {
            panic!(
                "test environment {} broke isolation: {:?}; queue rows written to other queues: {:?}",
                self.namespace.id, breaches, foreign
            );
        }
    }
}

/// The running test's name: nextest's `NEXTEST_TEST_NAME`, else the test thread's name.
fn current_test_name() -> String {
    std::env::var("NEXTEST_TEST_NAME")
        .ok()
        .or_else(|| std::thread::current().name().map(str::to_owned))
        .map(|name| name.rsplit("::").next().unwrap_or(&name).to_owned())
        .unwrap_or_else(|| "test".to_owned())
}
