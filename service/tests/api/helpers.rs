//! `spawn_app()`: the real service on port 0 with its own queue id, Qdrant collection (on an
//! embedded Qdrant started for this test process, or the one at `QDRANT_URL`), project name and
//! scratch folder; real PostgreSQL (`DATABASE_URL` or the local default) and the real model.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use qdrant_embedded::{Config, ServerHandle};
use serde_json::{json, Value};
use service::api::AppState;
use service::configuration::Settings;
use service::queue::{JobStatus, Queue};
use service::startup::{Application, StartupError};
use service::worker::{ShutdownReport, WorkerConfig, WorkerPool};
use sqlx::{Connection, PgPool};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Result of a test.
pub type TestResult = anyhow::Result<()>;

/// The admin token every test app is configured with.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// How long tests wait for a condition before failing.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A running service and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The app's pool (at most 5 connections).
    pub pool: PgPool,
    /// The app's queue (its own `queue_id`).
    pub queue: Queue,
    /// The app's state (for building extra worker pools).
    pub state: AppState,
    /// A project name no other test uses.
    pub project: String,
    /// Parent folder of the app's repository checkouts.
    pub scratch: TempDir,
    /// The settings the app was built with (reused by [`TestApp::restart`]).
    pub settings: Settings,
    shutdown: CancellationToken,
    server: Option<JoinHandle<Result<ShutdownReport, StartupError>>>,
    qdrant: Option<Arc<ServerHandle>>,
}

/// A test app with the default settings.
pub async fn spawn_app() -> anyhow::Result<TestApp> {
    spawn_app_with(|_| {}).await
}

/// A test app with settings adjusted by `configure`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> anyhow::Result<TestApp> {
    init_tracing();
    let (qdrant_url, qdrant) = match std::env::var("QDRANT_URL") {
        Ok(url) if !url.trim().is_empty() => (url, None),
        _ => {
            let server = qdrant_embedded::start(Config::default()).await?;
            (server.url(), Some(Arc::new(server)))
        }
    };
    let unique = Uuid::new_v4().simple().to_string();
    let scratch = tempfile::tempdir()?;
    let mut settings = Settings::default();
    settings.server.port = 0;
    settings.server.shutdown_timeout_secs = 10;
    settings.database.max_connections = 5;
    settings.queue.queue_id = format!("t_api_{unique}");
    settings.queue.poll_interval_ms = 200;
    settings.queue.retry_base_ms = 50;
    settings.qdrant.url = Some(qdrant_url);
    settings.qdrant.collection = format!("t_api_{unique}");
    settings.worker.scratch_dir = Some(scratch.path().to_path_buf());
    settings.admin_token = Some(ADMIN_TOKEN.into());
    configure(&mut settings);
    let project = format!("p-{}", &unique[..12]);
    let running = launch(&settings).await?;
    Ok(TestApp {
        address: running.address,
        client: reqwest::Client::new(),
        pool: running.state.pool.clone(),
        queue: running.state.queue.clone(),
        state: running.state,
        project,
        scratch,
        settings,
        shutdown: running.shutdown,
        server: Some(running.server),
        qdrant,
    })
}

/// A served application.
struct Running {
    address: String,
    state: AppState,
    shutdown: CancellationToken,
    server: JoinHandle<Result<ShutdownReport, StartupError>>,
}

/// Builds the application from `settings` and serves it in the background.
async fn launch(settings: &Settings) -> anyhow::Result<Running> {
    let application = Application::build(settings.clone()).await?;
    Ok(Running {
        address: format!("http://127.0.0.1:{}", application.port()),
        state: application.state().clone(),
        shutdown: application.shutdown_token(),
        server: tokio::spawn(application.run_until_stopped()),
    })
}

impl TestApp {
    /// Stops the app as SIGTERM would and returns what shutdown did with rows in flight.
    pub async fn stop(&mut self) -> anyhow::Result<ShutdownReport> {
        self.shutdown.cancel();
        let server = self.server.take().context("the app is not running")?;
        Ok(server.await??)
    }

    /// Starts the app again on the same queue, collection and database, with `configure`
    /// applied to its settings.
    pub async fn restart(&mut self, configure: impl FnOnce(&mut Settings)) -> TestResult {
        if self.server.is_some() {
            self.stop().await?;
        }
        configure(&mut self.settings);
        let running = launch(&self.settings).await?;
        self.address = running.address;
        self.pool = running.state.pool.clone();
        self.queue = running.state.queue.clone();
        self.state = running.state;
        self.shutdown = running.shutdown;
        self.server = Some(running.server);
        Ok(())
    }

    /// A worker pool over this app's queue and indexer, for tests that drive `run_once`.
    pub fn worker_pool(&self) -> WorkerPool {
        WorkerPool::new(
            self.queue.clone(),
            self.state.indexer.clone(),
            WorkerConfig::default(),
        )
    }

    /// `POST /index` with a raw JSON body.
    pub async fn post_index(&self, body: &Value) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .client
            .post(format!("{}/index", self.address))
            .json(body)
            .send()
            .await?)
    }

    /// `POST /index` of `(path, content)` files in this test's project; returns the job id.
    pub async fn index_files(&self, files: &[(&str, &str)]) -> anyhow::Result<Uuid> {
        let files: Vec<Value> = files
            .iter()
            .map(|(path, content)| json!({ "path": path, "content": content }))
            .collect();
        let response = self
            .post_index(&json!({ "project": self.project, "files": files }))
            .await?;
        accepted_job_id(response).await
    }

    /// `GET /jobs/{id}`.
    pub async fn get_job(&self, id: &str) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .client
            .get(format!("{}/jobs/{id}", self.address))
            .send()
            .await?)
    }

    /// Polls `GET /jobs/{id}` until the job is finished; returns its body.
    pub async fn wait_for_job(&self, id: Uuid) -> anyhow::Result<Value> {
        wait_until(&format!("job {id} to finish"), || async move {
            let job: Value = self.get_job(&id.to_string()).await?.json().await?;
            let finished = matches!(
                job["status"].as_str(),
                Some("completed" | "partially_failed" | "failed")
            );
            Ok(finished.then_some(job))
        })
        .await
    }

    /// `GET /search` in this test's project; returns the body.
    pub async fn search(&self, query: &str) -> anyhow::Result<Value> {
        let response = self
            .client
            .get(format!("{}/search", self.address))
            .query(&[
                ("project", self.project.as_str()),
                ("q", query),
                ("limit", "5"),
            ])
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "search answered {}: {}",
                response.status(),
                response.text().await?
            );
        }
        Ok(response.json().await?)
    }

    /// An admin request with an optional bearer token.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Ok(request.send().await?)
    }

    /// Rows of this app's queue in `status`.
    pub async fn rows_in(&self, status: JobStatus) -> anyhow::Result<i64> {
        Ok(self.queue.stats().await?.count(status))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        // Keep the embedded Qdrant until the app's task has seen the cancel.
        let _ = self.qdrant.take();
        // The shared database keeps nothing of this test: its queue rows, settings and API jobs
        // (with their per-file results). Drop may run inside the test's runtime, even while it
        // unwinds: clean up on a thread of our own with a plain connection.
        let url = self.settings.database.url.expose_secret().to_owned();
        let queue = self.queue.id().as_str().to_owned();
        let cleanup = std::thread::spawn(move || -> anyhow::Result<()> {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&url).await?;
                    service::namespace::delete_queues(&mut conn, &[&queue]).await?;
                    conn.close().await?;
                    anyhow::Ok(())
                })
        });
        if let Ok(Err(err)) = cleanup.join() {
            eprintln!("test app cleanup failed: {err:#}");
        }
    }
}

/// The job id of a `202 Accepted` answer (fails on any other status).
pub async fn accepted_job_id(response: reqwest::Response) -> anyhow::Result<Uuid> {
    let status = response.status();
    if status != reqwest::StatusCode::ACCEPTED {
        bail!("expected 202, got {status}: {}", response.text().await?);
    }
    let body: Value = response.json().await?;
    Ok(body["job_id"]
        .as_str()
        .context("no job_id in the answer")?
        .parse()?)
}

/// Polls `check` every 25 ms until it yields a value; fails after [`DEADLINE`] naming `what`.
pub async fn wait_until<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if started.elapsed() > DEADLINE {
            bail!("timed out after {DEADLINE:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Logs to the test output when `TEST_LOG` is set.
fn init_tracing() {
    if std::env::var_os("TEST_LOG").is_some() {
        service::telemetry::init("info,sqlx=warn");
    }
}
