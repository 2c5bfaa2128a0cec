//! `spawn_app()`: the real service bound to a harness environment: the environment's queue id,
//! Qdrant collection and project, a scratch folder, PostgreSQL connections named after the
//! environment (so its foreign-write check and its reaper see them), and the real model. The
//! environment's cleanup removes the queue's rows, API jobs and points when the test ends.

use std::time::Duration;

use anyhow::{bail, Context};
use harness::TestEnv;
use queue::worker::{ShutdownReport, Worker, WorkerConfig};
use queue::{JobStatus, Queue};
use serde_json::{json, Value};
use service::api::AppState;
use service::configuration::Settings;
use service::startup::{Application, StartupError};
use service::worker::IndexHandler;
use sqlx::PgPool;
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
    /// The app's queue (the environment's).
    pub queue: Queue,
    /// The app's state (for building extra workers).
    pub state: AppState,
    /// The environment's project.
    pub project: String,
    /// Parent folder of the app's repository checkouts.
    pub scratch: TempDir,
    /// The settings the app was built with (reused by [`TestApp::restart`]).
    pub settings: Settings,
    shutdown: CancellationToken,
    server: Option<JoinHandle<Result<ShutdownReport, StartupError>>>,
    /// Last, so it is cleaned up after the app has been told to stop.
    pub env: TestEnv,
}

/// A test app with the default settings.
pub async fn spawn_app() -> anyhow::Result<TestApp> {
    spawn_app_with(|_| {}).await
}

/// A test app with settings adjusted by `configure`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> anyhow::Result<TestApp> {
    let env = TestEnv::new().await?;
    let scratch = tempfile::tempdir()?;
    let mut settings = Settings::default();
    settings.server.port = 0;
    settings.server.shutdown_timeout_secs = 10;
    settings.database.url = env_database_url(&env)?.into();
    settings.database.max_connections = 5;
    settings.queue.queue_id = env.queue_id().to_string();
    settings.queue.poll_interval_ms = 200;
    settings.queue.retry_base_ms = 50;
    settings.qdrant.url = Some(env.qdrant_url().to_owned());
    settings.qdrant.collection = env.collection().to_owned();
    settings.worker.scratch_dir = Some(scratch.path().to_path_buf());
    settings.admin_token = Some(ADMIN_TOKEN.into());
    configure(&mut settings);
    let running = launch(&settings).await?;
    Ok(TestApp {
        address: running.address,
        client: reqwest::Client::new(),
        pool: running.state.pool.clone(),
        queue: running.state.queue.clone(),
        state: running.state,
        project: env.project().to_owned(),
        scratch,
        settings,
        shutdown: running.shutdown,
        server: Some(running.server),
        env,
    })
}

/// The environment's database URL, with its connections named after the environment.
pub fn env_database_url(env: &TestEnv) -> anyhow::Result<String> {
    let mut url = url::Url::parse(env.database_url()).context("parsing the database URL")?;
    url.query_pairs_mut()
        .append_pair("application_name", env.application_name());
    Ok(url.to_string())
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

    /// Begins shutting down as SIGTERM would, without waiting for the app to stop.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Whether the app is still serving (or draining) rather than stopped.
    pub fn is_serving(&self) -> bool {
        self.server
            .as_ref()
            .is_some_and(|server| !server.is_finished())
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

    /// A worker over this app's queue and indexer, for tests that drive `run_once`.
    pub fn worker(&self) -> Worker<IndexHandler> {
        let handler = IndexHandler::new(
            self.state.indexer.clone(),
            &self.queue,
            self.settings.worker.index_config(&self.settings.repository),
        );
        Worker::new(self.queue.clone(), handler, WorkerConfig::default())
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

    /// `POST /index/repository` of `repository` at `git_ref` in this test's project.
    pub async fn post_repository(
        &self,
        repository: &str,
        git_ref: &str,
    ) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .client
            .post(format!("{}/index/repository", self.address))
            .json(&json!({ "project": self.project, "repository": repository, "ref": git_ref }))
            .send()
            .await?)
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
        harness::wait_for(DEADLINE, &format!("job {id} to finish"), || async move {
            let job: Value = self.get_job(&id.to_string()).await?.json().await?;
            let finished = matches!(
                job["status"].as_str(),
                Some("completed" | "partially_failed" | "failed")
            );
            Ok(finished.then_some(job))
        })
        .await
        .map_err(Into::into)
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
        // The environment (dropped after this) removes the queue's rows, API jobs and points.
        self.shutdown.cancel();
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
