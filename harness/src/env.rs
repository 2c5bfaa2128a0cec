//! One test's environment: namespace, queue, collection, project and pool, cleaned up after.

use std::sync::Arc;

use qdrant_client::Qdrant;
use queue::worker::{Handler, Worker, WorkerConfig, WorkerHandle};
use queue::{JobId, ManualClock, NewJob, Queue, QueueId, QueueWaker};
use serde_json::Value;
use sqlx::PgPool;

use crate::app::TestApp;
use crate::collection::{remove_points, CollectionMode};
use crate::error::{boxed, HarnessError};
use crate::isolation::{IsolationViolation, ScopedQdrant};
use crate::naming::{self, Namespace};
use crate::runtime::{block_on_runtime, on_runtime};
use crate::session::Session;

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
    clock: Option<Arc<ManualClock>>,
    recorder: Option<crate::proxy::TenantRecorder>,
    /// Whether the namespace is still held (cleanup not done yet).
    held: bool,
    reaped: usize,
}

/// What [`crate::TestEnvBuilder::build`] provisioned.
pub(crate) struct Parts {
    pub(crate) namespace: Namespace,
    pub(crate) queue: Queue,
    pub(crate) pool: PgPool,
    pub(crate) app_name: String,
    pub(crate) database_url: String,
    pub(crate) qdrant_url: String,
    pub(crate) session: Arc<Session>,
    pub(crate) collection: String,
    pub(crate) mode: CollectionMode,
    pub(crate) scoped: ScopedQdrant,
    pub(crate) clock: Option<Arc<ManualClock>>,
    pub(crate) recorder: Option<crate::proxy::TenantRecorder>,
    pub(crate) reaped: usize,
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

impl TestEnv {
    pub(crate) fn from_parts(parts: Parts) -> Self {
        Self {
            namespace: parts.namespace,
            queue: parts.queue,
            pool: parts.pool,
            app_name: parts.app_name,
            database_url: parts.database_url,
            qdrant_url: parts.qdrant_url,
            session: parts.session,
            collection: parts.collection,
            mode: parts.mode,
            scoped: parts.scoped,
            clock: parts.clock,
            recorder: parts.recorder,
            held: true,
            reaped: parts.reaped,
        }
    }

    /// An environment with the defaults, named after the running test.
    pub async fn new() -> Result<Self, HarnessError> {
        Self::builder(current_test_name()).build().await
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

    /// The `application_name` of this environment's connections (`harness:<namespace>`): give
    /// it to the pools of the service under test, so its writes count as this test's and a
    /// reaper can end its sessions if the test is killed.
    pub fn application_name(&self) -> &str {
        &self.app_name
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

    /// The Qdrant gRPC URL to give the service under test: the tenant recorder's when the
    /// environment records tenant reads ([`crate::TestEnvBuilder::record_tenant_reads`]).
    pub fn qdrant_url(&self) -> &str {
        match &self.recorder {
            Some(recorder) => recorder.url(),
            None => &self.qdrant_url,
        }
    }

    /// A Qdrant client (unchecked; prefer [`TestEnv::qdrant`] for reads).
    pub fn qdrant_client(&self) -> Arc<Qdrant> {
        self.session.qdrant().clone()
    }

    /// Project-scoped, checked access to the collection.
    pub fn qdrant(&self) -> &ScopedQdrant {
        &self.scoped
    }

    /// The environment's manual clock, if it was built with [`crate::TestEnvBuilder::manual_clock`]:
    /// the queue, the workers the harness spawns and their rescuer all read time from it.
    pub fn clock(&self) -> Option<&Arc<ManualClock>> {
        self.clock.as_ref()
    }

    /// Moves the environment's manual clock forward (retries become due, leases expire).
    pub fn advance(&self, by: std::time::Duration) -> Result<(), HarnessError> {
        match &self.clock {
            Some(clock) => {
                clock.advance(by);
                Ok(())
            }
            None => Err(HarnessError::Config(
                "this environment has no manual clock: build it with .manual_clock()".into(),
            )),
        }
    }

    /// Rescues the rows of this environment's queue whose lease expired (on the queue's clock)
    /// now, as the rescuer of a running worker would at its next round; returns their ids.
    pub async fn rescue_expired(&self) -> Result<Vec<JobId>, HarnessError> {
        self.queue
            .rescue_expired()
            .await
            .map_err(|e| HarnessError::pg("rescuing expired leases")(boxed(e)))
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

    /// One worker slot bound to this environment's queue, running `handler` on the queue
    /// crate's worker runtime (the one production runs).
    pub async fn spawn_worker(&self, handler: impl Handler) -> Result<WorkerHandle, HarnessError> {
        self.spawn_workers(handler, 1).await
    }

    /// `concurrency` worker slots bound to this environment's queue, running `handler`.
    pub async fn spawn_workers(
        &self,
        handler: impl Handler,
        concurrency: usize,
    ) -> Result<WorkerHandle, HarnessError> {
        let config = WorkerConfig {
            concurrency,
            ..self.worker_config()
        };
        self.spawn_worker_with(handler, config).await
    }

    /// A worker bound to this environment's queue with a config of the test's own (start from
    /// [`TestEnv::worker_config`]).
    pub async fn spawn_worker_with(
        &self,
        handler: impl Handler,
        config: WorkerConfig,
    ) -> Result<WorkerHandle, HarnessError> {
        let waker = self.waker().await?;
        Ok(Worker::new(self.queue.clone(), handler, config).start(waker))
    }

    /// The worker config [`TestEnv::spawn_worker`] uses: named after the namespace, heartbeats
    /// three times a lease, expired leases rescued once a lease, no vacuum (a test process's
    /// exit would cut an index rebuild off).
    pub fn worker_config(&self) -> WorkerConfig {
        let lease = self.queue.config().lease;
        WorkerConfig {
            concurrency: 1,
            heartbeat_interval: (lease / 3).max(std::time::Duration::from_millis(50)),
            name: format!("harness:{}", self.namespace.id),
            maintenance: Some(queue::maintenance::MaintenanceConfig {
                rescue_interval: Some(lease),
                vacuum_interval: None,
                // A test's rows live as long as the test; a manual clock moved days ahead must
                // not prune what the test is about to assert on.
                prune_interval: None,
                ..queue::maintenance::MaintenanceConfig::default()
            }),
            ..WorkerConfig::default()
        }
    }

    /// Serves `router` (built by the test from this environment's pool, queue and collection)
    /// on an ephemeral port.
    pub async fn spawn_app(&self, router: axum::Router) -> Result<TestApp, HarnessError> {
        TestApp::serve(router).await
    }

    /// Deletes now the per-slot collections of runs that have no live environment left, among
    /// those this database registered; returns how many. Every process does this once in the
    /// background when its first environment starts, so tests rarely need to.
    pub async fn sweep_finished_runs(&self) -> Result<usize, HarnessError> {
        let session = self.session.clone();
        on_runtime(async move { crate::reaper::sweep_finished_runs(&session).await }).await
    }

    /// Fails when this environment lost its namespace while the test ran (see
    /// [`HarnessError::NamespaceLost`]).
    pub fn check_namespace(&self) -> Result<(), HarnessError> {
        match self.session.lost(&self.namespace.id) {
            Some(reason) => Err(HarnessError::NamespaceLost {
                namespace: self.namespace.id.clone(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Fails when this test read its collection without the project filter (through
    /// [`TestEnv::qdrant`]), when its connections wrote queue rows outside its own queue or
    /// claimed, completed, changed or deleted rows of another queue or project (queue rows and
    /// registered tables), or when it lost its namespace.
    pub async fn assert_isolated(&self) -> Result<(), HarnessError> {
        self.check_namespace()?;
        let mut breaches: Vec<String> = self
            .scoped
            .violations()
            .into_iter()
            .map(|IsolationViolation(v)| v)
            .collect();
        if let Some(recorder) = &self.recorder {
            breaches.extend(recorder.violations(&self.collection));
        }
        let session = self.session.clone();
        let (ns, app, own) = (
            self.namespace.id.clone(),
            self.app_name.clone(),
            self.queue_id().clone(),
        );
        breaches.extend(on_runtime(async move { session.breaches(&ns, &app, &own).await }).await?);
        if breaches.is_empty() {
            Ok(())
        } else {
            Err(HarnessError::Isolation(breaches.join("; ")))
        }
    }

    /// Checks isolation, then removes the environment's rows, points (and per-test collection).
    pub async fn finish(mut self) -> Result<(), HarnessError> {
        let isolated = self.assert_isolated().await;
        if let Some(recorder) = &self.recorder {
            recorder.unscope(&self.collection);
        }
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
    ) -> impl std::future::Future<Output = Result<Vec<String>, HarnessError>> + Send + 'static {
        let session = self.session.clone();
        let (namespace, collection, project, mode) = (
            self.namespace.id.clone(),
            self.collection.clone(),
            self.project().to_owned(),
            self.mode,
        );
        let queue_id = self.queue_id().clone();
        async move {
            if let Some(reason) = session.lost(&namespace) {
                // Another owner may hold the name now: leave its data alone.
                session.forget(&namespace);
                naming::release_name(&namespace);
                return Err(HarnessError::NamespaceLost { namespace, reason });
            }
            if let Err(err) = remove_points(session.qdrant(), &collection, &project, mode).await {
                tracing::warn!(%collection, error = %err, "removing the test's points failed; the next environment reaps them");
            }
            let check = foreign_check.as_deref().map(|app| (app, &queue_id));
            let released = session.release(&namespace, check).await;
            if matches!(released, Err(HarnessError::NamespaceLost { .. })) {
                session.forget(&namespace);
            }
            naming::release_name(&namespace);
            released
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if !std::mem::take(&mut self.held) {
            return;
        }
        // Drop may run while the test's runtime is blocked (or unwinding): the cleanup runs on
        // the harness's own runtime, which this thread only waits for.
        let mut breaches = self.scoped.violations();
        if let Some(recorder) = &self.recorder {
            breaches.extend(
                recorder
                    .unscope(&self.collection)
                    .into_iter()
                    .map(IsolationViolation),
            );
        }
        let foreign = match block_on_runtime(self.cleanup(Some(self.app_name.clone()))) {
            Ok(foreign) => foreign,
            Err(err @ HarnessError::NamespaceLost { .. }) if !std::thread::panicking() => {
                panic!("{err}")
            }
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
                "test environment {} broke isolation: {:?}; outside its namespace: {:?}",
                self.namespace.id, breaches, foreign
            );
        }
    }
}

/// The running test's name: nextest's `NEXTEST_TEST_NAME`, else the test thread's name (what
/// [`TestEnv::new`] names its environment after; use it with [`TestEnv::builder`]).
pub fn current_test_name() -> String {
    std::env::var("NEXTEST_TEST_NAME")
        .ok()
        .or_else(|| std::thread::current().name().map(str::to_owned))
        .map(|name| name.rsplit("::").next().unwrap_or(&name).to_owned())
        .unwrap_or_else(|| "test".to_owned())
}
