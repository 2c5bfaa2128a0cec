//! Outages of the servers the service needs, with real processes: a Qdrant process of the
//! test's own killed with SIGKILL for 30 s under a backlog, and a PostgreSQL server of the
//! test's own stopped and started under load.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use queue::JobStatus;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{spawn_app_with, TestApp, TestResult};

/// How long Qdrant stays down: the outage of the issue this test reproduces.
const QDRANT_OUTAGE: Duration = Duration::from_secs(30);

/// Files in the backlog; at least [`MIN_BACKLOG`] are still unfinished when Qdrant dies.
const FILES: usize = 400;

/// Fewest rows the outage must find unfinished.
const MIN_BACKLOG: i64 = 200;

/// How long a backlog of [`FILES`] may take on a loaded 2-core machine.
const BACKLOG_DEADLINE: Duration = Duration::from_secs(600);

/// Environment of the re-executed test binary that serves Qdrant.
const QDRANT_DIR_VAR: &str = "QV_OUTAGE_QDRANT_DIR";
const QDRANT_PORT_VAR: &str = "QV_OUTAGE_QDRANT_PORT";

#[tokio::test(flavor = "multi_thread")]
async fn a_30_second_qdrant_outage_costs_no_attempt_and_loses_no_file() -> TestResult {
    // Arrange: the service on a Qdrant process of this test's own, with quick retries so an
    // outage that burnt attempts would send rows to the dead-letter queue within seconds.
    let data = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut qdrant = QdrantProcess::start(data.path(), port).await?;
    let app = spawn_app_with(|settings| {
        settings.qdrant.url = Some(qdrant.url());
        settings.queue.retry_base_ms = 50;
        settings.queue.max_attempts = 5;
    })
    .await?;
    let files = backlog(FILES);
    let job_id = post_files(&app, &files).await?;
    harness::wait_for(BACKLOG_DEADLINE, "the first files indexed", || async {
        Ok((app.rows_in(JobStatus::Completed).await? >= 5).then_some(()))
    })
    .await?;

    // Act: SIGKILL Qdrant for 30 s, then start it again on the same data and port.
    qdrant.kill()?;
    let down_since = Instant::now();
    let unfinished = FILES as i64 - app.rows_in(JobStatus::Completed).await?;
    let paused: Value =
        harness::wait_for(QDRANT_OUTAGE, "/readyz to report paused workers", || {
            let app = &app;
            async move {
                let response = app
                    .client
                    .get(format!("{}/readyz", app.address))
                    .send()
                    .await?;
                let status = response.status();
                let body: Value = response.json().await?;
                Ok((status == reqwest::StatusCode::SERVICE_UNAVAILABLE
                    && body["checks"]["workers"] == "paused")
                    .then_some(body))
            }
        })
        .await?;
    // Stopped claiming: the rows in hand are put back and no new ones are taken.
    harness::wait_for(QDRANT_OUTAGE, "no row in processing", || async {
        Ok((app.rows_in(JobStatus::Processing).await? == 0).then_some(()))
    })
    .await?;
    tokio::time::sleep(QDRANT_OUTAGE.saturating_sub(down_since.elapsed())).await;
    let still_pending = app.rows_in(JobStatus::Pending).await?;
    let mut qdrant = QdrantProcess::start(data.path(), port).await?;
    let job = harness::wait_for(BACKLOG_DEADLINE, "the backlog to finish", || async {
        let job: Value = app.get_job(&job_id.to_string()).await?.json().await?;
        let finished = matches!(
            job["status"].as_str(),
            Some("completed" | "partially_failed" | "failed")
        );
        Ok(finished.then_some(job))
    })
    .await?;

    // Assert
    assert!(
        unfinished >= MIN_BACKLOG,
        "only {unfinished} files were left when Qdrant died"
    );
    assert!(
        paused["reason"]
            .as_str()
            .is_some_and(|reason| !reason.is_empty()),
        "{paused}"
    );
    assert!(still_pending > 0, "the backlog waited out the outage");
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["files"]["done"], FILES, "{job}");
    let (dead, retried): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'dead'),
                count(*) FILTER (WHERE attempts > 1)
         FROM queue_jobs WHERE queue_id = $1",
    )
    .bind(app.queue.id().as_str())
    .fetch_one(&app.pool)
    .await?;
    assert_eq!(dead, 0, "rows went dead");
    assert_eq!(retried, 0, "the outage cost attempts");
    let chunks = app.state.indexer.store().count(&app.project).await?;
    assert_eq!(
        i64::try_from(chunks)?,
        job["chunks_stored"].as_i64().unwrap_or(-1),
        "every acknowledged chunk is in Qdrant"
    );
    qdrant.kill()?;
    Ok(())
}

/// The Qdrant server of the outage test, as a process of its own: this test binary runs again
/// with only this test (ignored, so it never runs by itself) and the variables set.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "the outage test's Qdrant process; started by that test"]
async fn qdrant_process() -> TestResult {
    let (Some(dir), Ok(port)) = (
        std::env::var_os(QDRANT_DIR_VAR),
        std::env::var(QDRANT_PORT_VAR),
    ) else {
        return Ok(());
    };
    let config = qdrant_embedded::Config {
        listen: ([127, 0, 0, 1], port.parse()?).into(),
        data_dir: Some(dir.into()),
        ..qdrant_embedded::Config::default()
    };
    let _server = qdrant_embedded::start(config).await?;
    std::future::pending::<()>().await;
    Ok(())
}

/// A Qdrant server in a process this test kills with SIGKILL.
struct QdrantProcess {
    child: Child,
    port: u16,
}

impl QdrantProcess {
    /// Starts the server on `dir` and `port` and waits until it answers.
    async fn start(dir: &Path, port: u16) -> anyhow::Result<Self> {
        let child = Command::new(std::env::current_exe()?)
            .args([
                "--exact",
                "api::outage::qdrant_process",
                "--ignored",
                "--nocapture",
            ])
            .env_remove("NEXTEST_RUN_ID")
            .env_remove("NEXTEST_TEST_GLOBAL_SLOT")
            .env(QDRANT_DIR_VAR, dir)
            .env(QDRANT_PORT_VAR, port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the Qdrant process")?;
        let process = Self { child, port };
        let client = qdrant_client::Qdrant::from_url(&process.url())
            .skip_compatibility_check()
            .build()?;
        harness::wait_for(Duration::from_secs(60), "the Qdrant process", || async {
            Ok(client.health_check().await.ok().map(|_| ()))
        })
        .await?;
        Ok(process)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, and reaps the process.
    fn kill(&mut self) -> std::io::Result<()> {
        self.child.kill()?;
        self.child.wait().map(|_| ())
    }
}

impl Drop for QdrantProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgresql_outage_under_load_answers_503_and_loses_and_repeats_nothing() -> TestResult {
    // Arrange: the service on a PostgreSQL server of this test's own, indexing a backlog.
    let server = harness::faults::PgServer::start()?;
    let mut url = url::Url::parse(&server.url())?;
    url.set_path("/qv_outage");
    let app = spawn_app_with(|settings| {
        settings.database.url = url.to_string().into();
        settings.database.acquire_timeout_secs = 2;
    })
    .await?;
    let files = backlog(200);
    let job_id = post_files(&app, &files).await?;
    harness::wait_for(BACKLOG_DEADLINE, "the first files indexed", || async {
        Ok((app.rows_in(JobStatus::Completed).await? >= 5).then_some(()))
    })
    .await?;

    // Act: stop the server as a crash would; ask the API during the gap; start it again.
    server.stop()?;
    let during_intake = app
        .post_index(&json!({ "project": app.project, "files": [{ "path": "gap.rs", "content": "fn gap() {}" }] }))
        .await?;
    let intake_status = during_intake.status();
    let intake_body: Value = during_intake.json().await?;
    let during_read = app.get_job(&job_id.to_string()).await?;
    let read_status = during_read.status();
    let read_body: Value = during_read.json().await?;
    server.start_again()?;
    let job = harness::wait_for(BACKLOG_DEADLINE, "the backlog to finish", || async {
        let response = app.get_job(&job_id.to_string()).await?;
        if !response.status().is_success() {
            return Ok(None);
        }
        let job: Value = response.json().await?;
        let finished = matches!(
            job["status"].as_str(),
            Some("completed" | "partially_failed" | "failed")
        );
        Ok(finished.then_some(job))
    })
    .await?;

    // Assert: 503s that say what is wrong, then every file indexed once.
    assert_eq!(
        intake_status,
        reqwest::StatusCode::SERVICE_UNAVAILABLE,
        "{intake_body}"
    );
    assert_eq!(
        read_status,
        reqwest::StatusCode::SERVICE_UNAVAILABLE,
        "{read_body}"
    );
    for body in [&intake_body, &read_body] {
        let message = body["error"].as_str().unwrap_or_default();
        assert!(message.contains("database is unavailable"), "{body}");
    }
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["files"]["done"], 200, "{job}");
    let (rows, completed): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'completed')
         FROM queue_jobs WHERE queue_id = $1",
    )
    .bind(app.queue.id().as_str())
    .fetch_one(&app.pool)
    .await?;
    assert_eq!(
        (rows, completed),
        (200, 200),
        "the gap's request wrote nothing"
    );
    let chunks = app.state.indexer.store().count(&app.project).await?;
    assert_eq!(
        i64::try_from(chunks)?,
        job["chunks_stored"].as_i64().unwrap_or(-1),
        "each file stored once"
    );
    Ok(())
}

/// `count` small Rust files, one function each.
fn backlog(count: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|i| {
            (
                format!("src/outage/f{i}.rs"),
                format!("/// Returns {i} doubled.\npub fn double_{i}() -> usize {{ {i} * 2 }}\n"),
            )
        })
        .collect()
}

async fn post_files(app: &TestApp, files: &[(String, String)]) -> anyhow::Result<Uuid> {
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(path, content)| (path.as_str(), content.as_str()))
        .collect();
    app.index_files(&refs).await
}
