//! What the environments of one test process share, per pair of servers: one PostgreSQL session
//! that holds every environment's namespace lock and runs the provisioning statements, one Qdrant
//! client and one LISTEN connection.
//!
//! Opening connections is most of what a new environment used to cost (a PostgreSQL connection
//! takes milliseconds, more with TLS). Sharing them needs care: a connection belongs to the
//! runtime that opened it, and every `#[tokio::test]` has its own runtime, gone when its test
//! ends. So the shared parts live on a runtime thread of the harness's own for the whole process
//! ([`crate::runtime`]), and environments hand work to it.
//!
//! The session's connection holds the locks that tell reapers these environments are alive. If
//! it drops (a PostgreSQL restart, an idle timeout, a terminated backend), the locks go with it:
//! a watcher notices within a second, reconnects and takes every lock back. A namespace that
//! another process took or reaped meanwhile is marked lost, and its test fails with
//! [`HarnessError::NamespaceLost`] instead of running on without its data.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use qdrant_client::Qdrant;
use queue::namespace::{self, DataKey};
use queue::{QueueId, QueueWaker};
use serde_json::Value;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::error::{boxed, HarnessError};
use crate::naming::PREFIX;
use crate::runtime::on_runtime;

/// The harness's own tables (the registry of collections it created).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How often the watcher checks the session's connection.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// The shared parts for one pair of servers. Only used on the harness's runtime.
pub(crate) struct Session {
    conn: tokio::sync::Mutex<PgConnection>,
    options: PgConnectOptions,
    /// Namespaces whose lock `conn` holds, with the owner token registered in their resources
    /// (the reaper must skip them: locks are re-entrant).
    held: Mutex<HashMap<String, String>>,
    /// Runs whose group lock `conn` holds shared.
    groups: Mutex<HashSet<String>>,
    /// Namespaces lost while the connection was down, with what happened.
    lost: Mutex<HashMap<String, String>>,
    qdrant: Arc<Qdrant>,
    database_url: String,
    waker: tokio::sync::OnceCell<Arc<QueueWaker>>,
    /// Whether this process already swept the collections of finished runs.
    swept: std::sync::atomic::AtomicBool,
    /// Migrations of the team's own this session applied or found applied (by address).
    migrated: Mutex<HashSet<usize>>,
    /// Tables of the team's own this session registered.
    registered: Mutex<HashSet<(String, String, String)>>,
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
            let mut sessions = lock(SESSIONS.get_or_init(Default::default));
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
                queue::db::ensure_database(&database_url)
                    .await
                    .map_err(|e| HarnessError::pg("creating the database")(boxed(e)))?;
                PgConnection::connect_with(&options)
                    .await
                    .map_err(|e| HarnessError::pg("connecting")(boxed(e)))?
            }
            Err(err) => return Err(HarnessError::pg("connecting")(boxed(err))),
        };
        // Migrations are applied once for all concurrent test processes (under an advisory lock);
        // the usual case is one query per owner that finds them applied.
        for migrator in [&queue::db::MIGRATOR, &MIGRATOR] {
            let migrated = queue::db::is_migrated_on(&mut conn, migrator)
                .await
                .map_err(|e| HarnessError::pg("checking migrations")(boxed(e)))?;
            if !migrated {
                queue::db::migrate_on(&mut conn, migrator)
                    .await
                    .map_err(|e| HarnessError::pg("migrating")(boxed(e)))?;
            }
        }
        watch_tables(&mut conn).await?;
        // The harness's own upkeep (emptying a reused collection) reads without a tenant: it
        // carries the key a strict-tenant embedded Qdrant exempts (set by its nextest setup).
        let key = std::env::var("QDRANT_EMBEDDED_EXEMPT_KEY")
            .or_else(|_| std::env::var("QDRANT_API_KEY"))
            .ok()
            .filter(|key| !key.is_empty());
        let qdrant = Qdrant::from_url(&qdrant_url)
            .api_key(key)
            .skip_compatibility_check()
            .build()
            .map_err(|e| HarnessError::qdrant("connecting")(boxed(e)))?;
        let session = Arc::new(Session {
            conn: tokio::sync::Mutex::new(conn),
            options,
            held: Mutex::default(),
            groups: Mutex::default(),
            lost: Mutex::default(),
            qdrant: Arc::new(qdrant),
            database_url,
            waker: tokio::sync::OnceCell::new(),
            swept: Default::default(),
            migrated: Mutex::default(),
            registered: Mutex::default(),
        });
        tokio::spawn(watch(Arc::downgrade(&session)));
        Ok(session)
    }

    /// The Qdrant client shared by this process's environments.
    pub(crate) fn qdrant(&self) -> &Arc<Qdrant> {
        &self.qdrant
    }

    /// Whether this process still has to sweep finished runs' collections (true once).
    pub(crate) fn first_sweep(&self) -> bool {
        !self.swept.swap(true, std::sync::atomic::Ordering::SeqCst)
    }

    /// Why `ns` is lost, if it is (see the module docs).
    pub(crate) fn lost(&self, ns: &str) -> Option<String> {
        lock(&self.lost).get(ns).cloned()
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
        if lock(&self.groups).contains(run) {
            return Ok(());
        }
        let mut conn = self.conn.lock().await;
        namespace::hold_group(&mut conn, run)
            .await
            .map_err(|e| HarnessError::pg("joining the run")(boxed(e)))?;
        lock(&self.groups).insert(run.to_owned());
        Ok(())
    }

    /// Takes `ns` with its queue (emptied), or `false` while another live owner holds it.
    /// `resources` gets an owner token, by which a reconnected session knows its registration.
    pub(crate) async fn take(
        &self,
        ns: &str,
        resources: &Value,
        queue: &QueueId,
    ) -> Result<bool, HarnessError> {
        let mut conn = self.conn.lock().await;
        // Advisory locks are re-entrant: the server would hand this session a name it holds.
        if lock(&self.held).contains_key(ns) {
            return Ok(false);
        }
        let token = Uuid::new_v4().to_string();
        let mut resources = resources.clone();
        resources["owner"] = Value::from(token.clone());
        resources["owner_process"] = crate::liveness::owner();
        let taken = namespace::take(&mut conn, ns, &resources, &[queue])
            .await
            .map_err(|e| HarnessError::pg("taking the namespace")(boxed(e)))?;
        if taken {
            lock(&self.held).insert(ns.to_owned(), token);
            lock(&self.lost).remove(ns);
        }
        Ok(taken)
    }

    /// Applies a team's own migrations once per database (one query when they are applied, an
    /// advisory lock otherwise), then watches the tables they registered.
    pub(crate) async fn ensure_migrated(
        &self,
        migrator: &'static Migrator,
    ) -> Result<(), HarnessError> {
        let key = migrator as *const Migrator as usize;
        if lock(&self.migrated).contains(&key) {
            return Ok(());
        }
        let mut conn = self.conn.lock().await;
        let applied = queue::db::is_migrated_on(&mut conn, migrator)
            .await
            .map_err(|e| HarnessError::pg("checking your migrations")(boxed(e)))?;
        if !applied {
            queue::db::migrate_on(&mut conn, migrator)
                .await
                .map_err(|e| HarnessError::pg("applying your migrations")(boxed(e)))?;
        }
        watch_tables(&mut conn).await?;
        lock(&self.migrated).insert(key);
        Ok(())
    }

    /// Registers a table of the team's own for cleanup with each environment (and for the
    /// foreign-write check).
    pub(crate) async fn register_table(
        &self,
        table: &str,
        key_column: &str,
        key: &DataKey,
    ) -> Result<(), HarnessError> {
        let entry = (table.to_owned(), key_column.to_owned(), format!("{key:?}"));
        if lock(&self.registered).contains(&entry) {
            return Ok(());
        }
        let mut conn = self.conn.lock().await;
        namespace::register_table(&mut *conn, table, key_column, key, "harness-user")
            .await
            .map_err(|e| HarnessError::pg("registering your table")(boxed(e)))?;
        watch_tables(&mut conn).await?;
        lock(&self.registered).insert(entry);
        Ok(())
    }

    /// What connections of namespace `ns` (named `app_name`) did outside it: rows they wrote to
    /// queues other than `own`, and claims, completions, deletes and writes on rows of other
    /// queues or projects (queue rows and registered tables), one line each.
    pub(crate) async fn breaches(
        &self,
        ns: &str,
        app_name: &str,
        own: &QueueId,
    ) -> Result<Vec<String>, HarnessError> {
        let mut conn = self.conn.lock().await;
        breaches_on(&mut conn, ns, app_name, own).await
    }

    /// Records a per-slot collection this database's environments created, so only this
    /// database's sweeps may delete it.
    pub(crate) async fn register_collection(
        &self,
        collection: &str,
        run: &str,
    ) -> Result<(), HarnessError> {
        let mut conn = self.conn.lock().await;
        sqlx::query(
            "INSERT INTO harness_collections (collection, run) VALUES ($1, $2)
             ON CONFLICT (collection) DO NOTHING",
        )
        .bind(collection)
        .bind(run)
        .execute(&mut *conn)
        .await
        .map_err(|e| HarnessError::pg("registering the collection")(boxed(e)))?;
        Ok(())
    }

    /// Deletes `ns`'s data and registration and gives its lock up; first returns the queues
    /// that clients named `app_name` wrote to other than `own` (the isolation check of `Drop`).
    /// Fails with [`HarnessError::NamespaceLost`] when the namespace was lost.
    pub(crate) async fn release(
        &self,
        ns: &str,
        foreign_check: Option<(&str, &QueueId)>,
    ) -> Result<Vec<String>, HarnessError> {
        let mut conn = self.conn.lock().await;
        if conn.ping().await.is_err() {
            self.reconnect(&mut conn).await;
        }
        if let Some(reason) = self.lost(ns) {
            return Err(HarnessError::NamespaceLost {
                namespace: ns.to_owned(),
                reason,
            });
        }
        let foreign = match foreign_check {
            Some((app_name, own)) => breaches_on(&mut conn, ns, app_name, own).await?,
            None => Vec::new(),
        };
        namespace::release(&mut conn, ns)
            .await
            .map_err(|e| HarnessError::pg("releasing the namespace")(boxed(e)))?;
        lock(&self.held).remove(ns);
        Ok(foreign)
    }

    /// Forgets a namespace whose environment is gone without releasing it (it was lost).
    pub(crate) fn forget(&self, ns: &str) {
        lock(&self.held).remove(ns);
        lock(&self.lost).remove(ns);
    }

    /// Removes namespaces whose owner died (their lock is free), returning what they held.
    pub(crate) async fn reap_abandoned(
        &self,
    ) -> Result<Vec<namespace::AbandonedNamespace>, HarnessError> {
        let mut conn = self.conn.lock().await;
        let held: Vec<String> = lock(&self.held).keys().cloned().collect();
        namespace::reap_abandoned_unless(&mut conn, PREFIX, &held, |dead| {
            crate::liveness::owner_alive(&dead.resources)
        })
        .await
        .map_err(|e| HarnessError::pg("reaping abandoned namespaces")(boxed(e)))
    }

    /// This database's per-slot collections with their runs, except the runs this process is in.
    pub(crate) async fn collections_of_other_runs(
        &self,
    ) -> Result<Vec<(String, String)>, HarnessError> {
        let mine: Vec<String> = lock(&self.groups).iter().cloned().collect();
        let mut conn = self.conn.lock().await;
        sqlx::query_as("SELECT collection, run FROM harness_collections WHERE run <> ALL($1)")
            .bind(&mine)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| HarnessError::pg("listing collections")(boxed(e)))
    }

    /// Runs `remove` while holding `run`'s lock exclusively, if no member of the run is alive;
    /// then forgets `collection`. Returns whether it ran.
    pub(crate) async fn with_finished_run<F, Fut>(
        &self,
        run: &str,
        collection: &str,
        remove: F,
    ) -> Result<bool, HarnessError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        if lock(&self.groups).contains(run) {
            return Ok(false);
        }
        let mut conn = self.conn.lock().await;
        let free = namespace::try_lock_group(&mut conn, run)
            .await
            .map_err(|e| HarnessError::pg("locking a finished run")(boxed(e)))?;
        if !free {
            return Ok(false);
        }
        let removed = remove().await;
        let forgotten = match removed {
            true => sqlx::query("DELETE FROM harness_collections WHERE collection = $1")
                .bind(collection)
                .execute(&mut *conn)
                .await
                .map(drop),
            false => Ok(()),
        };
        namespace::unlock_group(&mut conn, run)
            .await
            .map_err(|e| HarnessError::pg("unlocking a finished run")(boxed(e)))?;
        forgotten.map_err(|e| HarnessError::pg("forgetting a collection")(boxed(e)))?;
        Ok(removed)
    }

    /// Opens a new connection after the old one dropped and takes every lock back; namespaces
    /// another process took or reaped meanwhile are marked lost.
    async fn reconnect(&self, conn: &mut PgConnection) {
        let mut fresh = match PgConnection::connect_with(&self.options).await {
            Ok(fresh) => fresh,
            Err(error) => {
                tracing::warn!(%error, "the harness session is down and cannot reconnect yet");
                return;
            }
        };
        tracing::warn!("the harness session's connection dropped; taking its locks back");
        let groups: Vec<String> = lock(&self.groups).iter().cloned().collect();
        for run in groups {
            if let Err(error) = namespace::hold_group(&mut fresh, &run).await {
                tracing::warn!(%error, %run, "could not rejoin a run");
            }
        }
        let held: Vec<(String, String)> = lock(&self.held)
            .iter()
            .map(|(ns, token)| (ns.clone(), token.clone()))
            .collect();
        for (ns, token) in held {
            if let Some(reason) = retake(&mut fresh, &ns, &token).await {
                tracing::error!(namespace = %ns, %reason, "a test environment lost its namespace");
                lock(&self.lost).insert(ns, reason);
            }
        }
        *conn = fresh;
    }
}

/// Takes `ns`'s lock back on a new connection; `Some(why)` when the namespace is no longer this
/// session's (another owner holds it, or it was reaped and perhaps taken again).
async fn retake(conn: &mut PgConnection, ns: &str, token: &str) -> Option<String> {
    let locked: Result<bool, _> =
        sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(ns)
            .fetch_one(&mut *conn)
            .await;
    match locked {
        Ok(true) => {}
        Ok(false) => {
            return Some(
                "the harness's PostgreSQL session dropped, and another process took the \
                 namespace before the session came back"
                    .into(),
            )
        }
        Err(error) => return Some(format!("its lock could not be taken back: {error}")),
    }
    let owner: Result<Option<Option<String>>, _> = sqlx::query_scalar(
        "SELECT resources ->> 'owner' FROM queue_namespaces WHERE namespace = $1",
    )
    .bind(ns)
    .fetch_optional(&mut *conn)
    .await;
    let why = match owner {
        Ok(Some(Some(owner))) if owner == token => return None,
        Ok(Some(_)) => "the harness's PostgreSQL session dropped, and another environment took \
                        the namespace over meanwhile"
            .to_owned(),
        Ok(None) => "the harness's PostgreSQL session dropped, and another process reaped the \
                     namespace (its queue rows and data were deleted) before the session came \
                     back"
            .to_owned(),
        Err(error) => format!("its registration could not be read back: {error}"),
    };
    let _ = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
        .bind(ns)
        .execute(&mut *conn)
        .await;
    Some(why)
}

/// Checks the session's connection every [`WATCH_EVERY`] and reconnects when it dropped, for as
/// long as the session lives.
async fn watch(session: Weak<Session>) {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let Some(session) = session.upgrade() else {
            return;
        };
        let mut conn = session.conn.lock().await;
        if conn.ping().await.is_err() {
            session.reconnect(&mut conn).await;
        }
    }
}

/// See [`Session::breaches`].
async fn breaches_on(
    conn: &mut PgConnection,
    ns: &str,
    app_name: &str,
    own: &QueueId,
) -> Result<Vec<String>, HarnessError> {
    let inserted = namespace::rows_written_outside(&mut *conn, app_name, own)
        .await
        .map_err(|e| HarnessError::pg("checking foreign writes")(boxed(e)))?;
    let touched: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT table_name, operation, key, count(*) FROM harness_foreign_writes
         WHERE namespace = $1 AND NOT (table_name = 'queue_jobs' AND operation = 'insert')
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .bind(ns)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| HarnessError::pg("reading foreign writes")(boxed(e)))?;
    let inserted = inserted.into_iter().map(|(queue, n)| {
        format!(
            "{n} queue row(s) written to queue {queue:?}, not this test's {:?}",
            own.as_str()
        )
    });
    let touched = touched.into_iter().map(|(table, operation, key, n)| {
        let what = if table == "queue_jobs" {
            format!("{n} {operation}(s) of queue rows of queue {key:?} (claims and completions are updates)")
        } else {
            format!("{n} {operation}(s) of {table} rows keyed {key:?}")
        };
        format!("{what}, not this test's {:?}", own.as_str())
    });
    Ok(inserted.chain(touched).collect())
}

/// Puts the audit trigger on every watched table that lacks it.
async fn watch_tables(conn: &mut PgConnection) -> Result<(), HarnessError> {
    sqlx::query("SELECT harness_watch_tables()")
        .execute(conn)
        .await
        .map_err(|e| HarnessError::pg("watching tables for foreign writes")(boxed(e)))?;
    Ok(())
}

/// A mutex of plain data, usable after a panic elsewhere.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
