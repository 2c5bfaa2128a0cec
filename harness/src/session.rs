//! What the environments of one test process share, per pair of servers: one PostgreSQL session
//! that holds every environment's namespace lock and runs the provisioning statements, one Qdrant
//! client and one LISTEN connection.
//!
//! Opening connections is most of what a new environment used to cost (a PostgreSQL connection
//! takes milliseconds, more with TLS). Sharing them needs care: a connection belongs to the
//! runtime that opened it, and every `#[tokio::test]` has its own runtime, gone when its test
//! ends. So the shared parts live on a runtime thread of the harness's own for the whole process,
//! and environments hand work to it.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

use qdrant_client::Qdrant;
use serde_json::Value;
use service::namespace;
use service::queue::{QueueId, QueueWaker};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use tokio::runtime::Handle;

use crate::error::{boxed, HarnessError};
use crate::naming::PREFIX;

/// The harness's runtime: one worker thread, alive until the process exits.
fn runtime() -> Result<&'static Handle, HarnessError> {
    static HANDLE: OnceLock<Result<Handle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name("harness-session".into())
                .spawn(move || {
                    match tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(1)
                        .thread_name("harness-session")
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => {
                            let _ = tx.send(Ok(rt.handle().clone()));
                            rt.block_on(std::future::pending::<()>());
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e.to_string()));
                        }
                    }
                })
                .map_err(|e| e.to_string())?;
            rx.recv()
                .unwrap_or_else(|_| Err("the harness runtime thread died".into()))
        })
        .as_ref()
        .map_err(|e| HarnessError::Config(format!("starting the harness runtime: {e}")))
}

/// Runs `work` on the harness's runtime and waits for it from any runtime (or none).
pub(crate) async fn on_runtime<F, T>(work: F) -> Result<T, HarnessError>
where
    F: Future<Output = Result<T, HarnessError>> + Send + 'static,
    T: Send + 'static,
{
    runtime()?
        .spawn(work)
        .await
        .map_err(|e| HarnessError::Config(format!("harness task failed: {e}")))?
}

/// Runs `work` on the harness's runtime and blocks the calling thread until it is done (for
/// `Drop`, which cannot await; the work does not need the caller's runtime).
pub(crate) fn block_on_runtime<F, T>(work: F) -> Result<T, HarnessError>
where
    F: Future<Output = Result<T, HarnessError>> + Send + 'static,
    T: Send + 'static,
{
    let handle = runtime()?;
    let (tx, rx) = std::sync::mpsc::channel();
    handle.spawn(async move {
        let _ = tx.send(work.await);
    });
    rx.recv()
        .unwrap_or_else(|_| Err(HarnessError::Config("harness task failed".into())))
}

/// The shared parts for one pair of servers. Only used on the harness's runtime.
pub(crate) struct Session {
    conn: tokio::sync::Mutex<PgConnection>,
    /// Namespaces whose lock `conn` holds (the reaper must skip them: locks are re-entrant).
    held: Mutex<HashSet<String>>,
    /// Runs whose group lock `conn` holds shared.
    groups: Mutex<HashSet<String>>,
    qdrant: Arc<Qdrant>,
    database_url: String,
    waker: tokio::sync::OnceCell<Arc<QueueWaker>>,
    /// Whether this process already swept the collections of finished runs.
    swept: std::sync::atomic::AtomicBool,
}

/// Sessions by (database URL, Qdrant URL); each opened once, by whichever caller comes first.
type Sessions = Mutex<HashMap<(String, String), Arc<tokio::sync::OnceCell<Arc<Session>>>>>;

impl Session {
    /// The session for these servers, opened (and the schema migrated) on first use.
    pub(crate) async fn get(
        database_url: &str,
        qdrant_url: &str,
    ) -> Result<Arc<Session>, HarnessError> {
        static SESSIONS: OnceLock<Sessions> = OnceLock::new();
        let cell = {
            let mut sessions = SESSIONS
                .get_or_init(Default::default)
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            sessions
                .entry((database_url.to_owned(), qdrant_url.to_owned()))
                .or_default()
                .clone()
        };
        let (database_url, qdrant_url) = (database_url.to_owned(), qdrant_url.to_owned());
        on_runtime(async move {
            cell.get_or_try_init(|| Session::open(database_url, qdrant_url))
                .await
                .cloned()
        })
        .await
    }

    async fn open(database_url: String, qdrant_url: String) -> Result<Arc<Session>, HarnessError> {
        let options = PgConnectOptions::from_str(&database_url)
            .map_err(|e| HarnessError::pg("parsing DATABASE_URL")(boxed(e)))?
            .application_name(&format!("harness-session:{}", std::process::id()))
            // Small OLTP statements: JIT only adds milliseconds when a churned table's stale
            // statistics make them look expensive.
            .options([("jit", "off")]);
        let mut conn = match PgConnection::connect_with(&options).await {
            Ok(conn) => conn,
            Err(err)
                if err.as_database_error().and_then(|e| e.code()).as_deref() == Some("3D000") =>
            {
                service::db::ensure_database(&database_url)
                    .await
                    .map_err(|e| HarnessError::pg("creating the database")(boxed(e)))?;
                PgConnection::connect_with(&options)
                    .await
                    .map_err(|e| HarnessError::pg("connecting")(boxed(e)))?
            }
            Err(err) => return Err(HarnessError::pg("connecting")(boxed(err))),
        };
        // Migrations are applied once for all concurrent test processes (under an advisory lock);
        // the usual case is one query that finds them applied.
        let migrated = service::db::is_migrated_on(&mut conn)
            .await
            .map_err(|e| HarnessError::pg("checking migrations")(boxed(e)))?;
        if !migrated {
            service::db::migrate_on(&mut conn)
                .await
                .map_err(|e| HarnessError::pg("migrating")(boxed(e)))?;
        }
        let qdrant = Qdrant::from_url(&qdrant_url)
            .skip_compatibility_check()
            .build()
            .map_err(|e| HarnessError::qdrant("connecting")(boxed(e)))?;
        Ok(Arc::new(Session {
            conn: tokio::sync::Mutex::new(conn),
            held: Mutex::default(),
            groups: Mutex::default(),
            qdrant: Arc::new(qdrant),
            database_url,
            waker: tokio::sync::OnceCell::new(),
            swept: Default::default(),
        }))
    }

    /// The Qdrant client shared by this process's environments.
    pub(crate) fn qdrant(&self) -> &Arc<Qdrant> {
        &self.qdrant
    }

    /// Whether this process still has to sweep finished runs' collections (true once).
    pub(crate) fn first_sweep(&self) -> bool {
        !self.swept.swap(true, std::sync::atomic::Ordering::SeqCst)
    }

    /// The wake-up listener shared by every worker of this process (one LISTEN connection).
    pub(crate) async fn waker(&self) -> Result<Arc<QueueWaker>, HarnessError> {
        self.waker
            .get_or_try_init(|| async {
                let options = PgConnectOptions::from_str(&self.database_url)
                    .map_err(|e| HarnessError::pg("parsing DATABASE_URL")(boxed(e)))?
                    .application_name(&format!("harness-listen:{}", std::process::id()));
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_lazy_with(options);
                QueueWaker::start(&pool)
                    .await
                    .map(Arc::new)
                    .map_err(|e| HarnessError::pg("listening for wake-ups")(boxed(e)))
            })
            .await
            .cloned()
    }

    /// Joins `run` (shared lock, once per process), so its collections outlive this test.
    pub(crate) async fn join_run(&self, run: &str) -> Result<(), HarnessError> {
        if names(&self.groups).contains(run) {
            return Ok(());
        }
        let mut conn = self.conn.lock().await;
        namespace::hold_group(&mut conn, run)
            .await
            .map_err(|e| HarnessError::pg("joining the run")(boxed(e)))?;
        names(&self.groups).insert(run.to_owned());
        Ok(())
    }

    /// Takes `ns` with its queue (emptied), or `false` while another live owner holds it.
    pub(crate) async fn take(
        &self,
        ns: &str,
        resources: &Value,
        queue: &QueueId,
    ) -> Result<bool, HarnessError> {
        let mut conn = self.conn.lock().await;
        // Advisory locks are re-entrant: the server would hand this session a name it holds.
        if names(&self.held).contains(ns) {
            return Ok(false);
        }
        let taken = namespace::take(&mut conn, ns, resources, &[queue])
            .await
            .map_err(|e| HarnessError::pg("taking the namespace")(boxed(e)))?;
        if taken {
            names(&self.held).insert(ns.to_owned());
        }
        Ok(taken)
    }

    /// Deletes `ns`'s rows and registration and gives its lock up; first returns the queues
    /// that clients named `app_name` wrote to other than `own` (the isolation check of `Drop`).
    pub(crate) async fn release(
        &self,
        ns: &str,
        foreign_check: Option<(&str, &QueueId)>,
    ) -> Result<Vec<(String, i64)>, HarnessError> {
        let mut conn = self.conn.lock().await;
        let foreign = match foreign_check {
            Some((app_name, own)) => namespace::rows_written_outside(&mut *conn, app_name, own)
                .await
                .map_err(|e| HarnessError::pg("checking foreign writes")(boxed(e)))?,
            None => Vec::new(),
        };
        namespace::release(&mut conn, ns)
            .await
            .map_err(|e| HarnessError::pg("releasing the namespace")(boxed(e)))?;
        names(&self.held).remove(ns);
        Ok(foreign)
    }

    /// Removes namespaces whose owner died (their lock is free), returning what they held.
    pub(crate) async fn reap_abandoned(
        &self,
    ) -> Result<Vec<namespace::AbandonedNamespace>, HarnessError> {
        let mut conn = self.conn.lock().await;
        let held: Vec<String> = names(&self.held).iter().cloned().collect();
        namespace::reap_abandoned_on(&mut conn, PREFIX, &held)
            .await
            .map_err(|e| HarnessError::pg("reaping abandoned namespaces")(boxed(e)))
    }

    /// Runs `remove` while holding `run`'s lock exclusively, if no member of the run is alive.
    pub(crate) async fn with_finished_run<F, Fut>(
        &self,
        run: &str,
        remove: F,
    ) -> Result<(), HarnessError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ()>,
    {
        if names(&self.groups).contains(run) {
            return Ok(());
        }
        let mut conn = self.conn.lock().await;
        let free = namespace::try_lock_group(&mut conn, run)
            .await
            .map_err(|e| HarnessError::pg("locking a finished run")(boxed(e)))?;
        if free {
            remove().await;
            namespace::unlock_group(&mut conn, run)
                .await
                .map_err(|e| HarnessError::pg("unlocking a finished run")(boxed(e)))?;
        }
        Ok(())
    }
}

/// A set of lock names, usable after a panic elsewhere (it holds plain data).
fn names(set: &Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    set.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
