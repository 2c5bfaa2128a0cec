//! `POST /index/repository` against hostile sources, with real git processes: loopback and
//! private addresses refused (by number and by a name resolving to one), a server that never
//! answers (git killed at the timeout; SIGTERM does not wait for git), credentials redacted in
//! the database, the queue, the API and the logs, and never sent.

use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use queue::JobStatus;
use serde_json::Value;
use service::worker::source::Scheme;

use crate::support::{
    accepted_job_id, env_database_url, spawn_app_with, RecordingServer, SilentServer, TestResult,
    DEADLINE,
};

#[tokio::test]
async fn loopback_and_private_addresses_are_refused_also_after_resolution() -> TestResult {
    // Arrange: any host and scheme, but private networks not allowed.
    let app = spawn_app_with(|settings| {
        settings.repository.allowed_hosts = vec!["*".into()];
        settings.repository.allowed_schemes = vec![Scheme::Http, Scheme::Https];
    })
    .await?;

    // Act and assert: by number, and by a name that resolves to loopback.
    for repository in [
        "http://127.0.0.1:6379/x.git",
        "http://localhost:6379/x.git",
        "https://[::1]/x.git",
        "http://10.0.0.7/x.git",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/x.git",
    ] {
        let response = app.post_repository(repository, "main").await?;
        let status = response.status();
        let body: Value = response.json().await?;
        assert_eq!(status, 400, "{repository}: {body}");
        let error = body["error"].as_str().unwrap_or("");
        assert!(
            error.starts_with("blocked_address:"),
            "{repository}: {body}"
        );
    }
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM index_jobs WHERE queue_id = $1")
        .bind(app.queue.id().as_str())
        .fetch_one(&app.pool)
        .await?;
    assert_eq!(jobs, 0, "a refused request wrote a job");
    Ok(())
}

#[tokio::test]
async fn a_server_that_never_answers_gets_git_killed_at_the_timeout() -> TestResult {
    // Arrange: a server that accepts and never answers; a 2 s checkout limit, and a low-speed
    // limit too long to fire first.
    let server = SilentServer::start().await?;
    let app = spawn_app_with(|settings| {
        let repository = &mut settings.repository;
        repository.allowed_hosts = vec!["127.0.0.1".into()];
        repository.allowed_schemes = vec![Scheme::Http];
        repository.allow_private_networks = true;
        repository.git_timeout_secs = 2;
        repository.low_speed_secs = 600;
    })
    .await?;

    // Act
    let url = format!("http://127.0.0.1:{}/x.git", server.port);
    let job_id = accepted_job_id(app.post_repository(&url, "main").await?).await?;
    let job = app.wait_for_job(job_id).await?;

    // Assert: the row failed at once (a timeout is not retried) with a short category...
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["issues"][0]["error"].as_str().context("an error")?;
    assert!(error.starts_with("timeout:"), "{job}");
    assert!(!error.contains("127.0.0.1"), "git's text leaked: {error}");
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM queue_jobs WHERE job_ref = $1")
        .bind(job_id)
        .fetch_one(&app.pool)
        .await?;
    assert_eq!(attempts, 1);
    // ...and git, which held the connection, is gone.
    assert!(server.accepted() >= 1);
    harness::wait_until(DEADLINE, "git's connection to be closed", || async {
        Ok(server.closed() == server.accepted())
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_transfer_under_the_low_speed_limit_is_aborted_by_git() -> TestResult {
    // Arrange: the silent server again, a 1 s low-speed window and a long wall-clock limit.
    let server = SilentServer::start().await?;
    let app = spawn_app_with(|settings| {
        let repository = &mut settings.repository;
        repository.allowed_hosts = vec!["127.0.0.1".into()];
        repository.allowed_schemes = vec![Scheme::Http];
        repository.allow_private_networks = true;
        repository.git_timeout_secs = 600;
        repository.low_speed_secs = 1;
        settings.queue.max_attempts = 2;
    })
    .await?;

    // Act
    let url = format!("http://127.0.0.1:{}/x.git", server.port);
    let job_id = accepted_job_id(app.post_repository(&url, "main").await?).await?;
    let job = app.wait_for_job(job_id).await?;

    // Assert: retried (a slow network may recover), then failed with its category.
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["issues"][0]["error"].as_str().context("an error")?;
    assert!(error.starts_with("too_slow:"), "{job}");
    assert_eq!(server.accepted(), 2);
    Ok(())
}

/// A log sink for the whole test process.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut logs) = self.0.lock() {
            logs.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    fn text(&self) -> String {
        self.0
            .lock()
            .map(|logs| String::from_utf8_lossy(&logs).into_owned())
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn credentials_in_a_repository_url_are_redacted_everywhere_and_never_sent() -> TestResult {
    // Arrange: every log line of this process captured; a server that records what it gets.
    let logs = CapturedLogs::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("debug")
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .try_init()
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let server = RecordingServer::start().await?;
    let app = spawn_app_with(|settings| {
        let repository = &mut settings.repository;
        repository.allowed_hosts = vec!["127.0.0.1".into()];
        repository.allowed_schemes = vec![Scheme::Http];
        repository.allow_private_networks = true;
    })
    .await?;
    let secrets = ["hunter2", "s3cr3t", "ghp_tok"];
    let url = format!(
        "http://alice:hunter2@127.0.0.1:{}/x.git?private_token=s3cr3t&access_token=ghp_tok",
        server.port
    );

    // Act
    let job_id = accepted_job_id(app.post_repository(&url, "main").await?).await?;
    let job = app.wait_for_job(job_id).await?;

    // Assert: the job failed on the server's 404, and no secret is anywhere.
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["issues"][0]["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("not_found:"),
        "{job}"
    );
    let stored: (Option<String>, String) = sqlx::query_as(
        "SELECT j.repository, q.payload::text FROM index_jobs j
         JOIN queue_jobs q ON q.job_ref = j.id WHERE j.id = $1",
    )
    .bind(job_id)
    .fetch_one(&app.pool)
    .await?;
    let shown = app.get_job(&job_id.to_string()).await?.text().await?;
    let requests = server.requests().join("\n");
    assert!(!requests.is_empty(), "git never reached the server");
    let logged = logs.text();
    assert!(logged.contains("checkout failed"), "nothing was logged");
    for (place, text) in [
        (
            "index_jobs.repository",
            stored.0.clone().unwrap_or_default(),
        ),
        ("queue_jobs.payload", stored.1.clone()),
        ("GET /jobs", shown.clone()),
        ("the requests git sent", requests.clone()),
        ("the logs", logged.clone()),
    ] {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} in {place}: {text}");
        }
    }
    assert_eq!(
        stored.0.as_deref(),
        Some(
            format!(
                "http://alice:***@127.0.0.1:{}/x.git?private_token=***&access_token=***",
                server.port
            )
            .as_str()
        )
    );
    assert!(
        !requests.to_ascii_lowercase().contains("authorization:"),
        "{requests}"
    );
    Ok(())
}

#[tokio::test]
async fn sigterm_ends_the_service_while_git_hangs_and_takes_git_with_it() -> TestResult {
    // Arrange: the service binary, with a checkout limit far beyond the test, working a
    // repository on a server that never answers.
    let env = harness::TestEnv::new().await?;
    let server = SilentServer::start().await?;
    let scratch = tempfile::tempdir()?;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let log_path = scratch.path().join("service.log");
    let mut service = tokio::process::Command::new(env!("CARGO_BIN_EXE_service"))
        .env("DATABASE_URL", env_database_url(&env)?)
        .env("DATABASE_MAX_CONNECTIONS", "5")
        .env("QUEUE_ID", env.queue_id().as_str())
        .env("QUEUE_POLL_INTERVAL_MS", "200")
        .env("QDRANT_URL", env.qdrant_url())
        .env("QDRANT_COLLECTION", env.collection())
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("SHUTDOWN_TIMEOUT_SECS", "1")
        .env("WORKER_SCRATCH_DIR", scratch.path().join("checkouts"))
        .env("REPOSITORY_ALLOWED_SCHEMES", "http")
        .env("REPOSITORY_ALLOWED_HOSTS", "127.0.0.1")
        .env("REPOSITORY_ALLOW_PRIVATE_NETWORKS", "true")
        .env("REPOSITORY_GIT_TIMEOUT_SECS", "3600")
        .env("REPOSITORY_LOW_SPEED_SECS", "3600")
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path)?)
        .kill_on_drop(true)
        .spawn()?;
    let address = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    harness::wait_until(DEADLINE, "the service to answer", || async {
        Ok(client
            .get(format!("{address}/healthz"))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success()))
    })
    .await?;
    let response = client
        .post(format!("{address}/index/repository"))
        .json(&serde_json::json!({
            "project": env.project(),
            "repository": format!("http://127.0.0.1:{}/x.git", server.port),
            "ref": "main",
        }))
        .send()
        .await?;
    let job_id = accepted_job_id(response).await?;
    harness::wait_until(DEADLINE, "git to connect", || async {
        Ok(server.accepted() >= 1)
    })
    .await?;

    // Act
    let pid = service.id().context("the service's pid")?;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    anyhow::ensure!(killed.success(), "kill -TERM failed");

    // Assert: the process exits cleanly, git's connection is gone, the row is pending again.
    let exited = harness::wait_for(DEADLINE, "the service to exit after SIGTERM", || {
        let status = service.try_wait();
        async move { Ok(status?) }
    })
    .await;
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let status = exited.with_context(|| format!("service log:\n{log}"))?;
    assert!(status.success(), "{status}; service log:\n{log}");
    harness::wait_until(DEADLINE, "git's connection to be closed", || async {
        Ok(server.closed() == server.accepted())
    })
    .await?;
    let row: String = sqlx::query_scalar("SELECT status::text FROM queue_jobs WHERE job_ref = $1")
        .bind(job_id)
        .fetch_one(env.pool())
        .await?;
    assert_eq!(row, JobStatus::Pending.as_str(), "{log}");
    env.finish().await?;
    Ok(())
}
