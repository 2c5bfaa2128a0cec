//! Logs and request ids. The log tests run the real `service` binary with stdout to a pipe, as
//! `cargo run -p service > service.log` does, and read its lines.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use harness::TestEnv;
use queue::JobStatus;
use serde_json::{json, Value};
use service::api::router;
use tower::ServiceExt;
use uuid::Uuid;

use super::handlers::state;
use crate::support::{env_database_url, TestResult, DEADLINE};

/// The service binary, running until dropped, with its stdout and stderr lines collected.
struct ServiceProcess {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// The worker's checkout folder, removed with the process.
    _scratch: tempfile::TempDir,
}

fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line).into_owned();
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    });
    lines
}

impl ServiceProcess {
    /// Starts the binary on `env` (its database, queue, Qdrant and collection) with `envs` set;
    /// on a pseudo-terminal (through `script`) when `terminal`.
    fn start(env: &TestEnv, envs: &[(&str, &str)], terminal: bool) -> anyhow::Result<Self> {
        let scratch = tempfile::tempdir()?;
        let binary = env!("CARGO_BIN_EXE_service");
        let mut command = if terminal {
            let mut command = Command::new("script");
            command.args(["-qefc", binary, "/dev/null"]);
            command
        } else {
            Command::new(binary)
        };
        command
            .env("PORT", "0")
            .env("DATABASE_URL", env_database_url(env)?)
            .env("DATABASE_MAX_CONNECTIONS", "3")
            .env("QUEUE_ID", env.queue_id().as_str())
            .env("QUEUE_POLL_INTERVAL_MS", "200")
            .env("QDRANT_URL", env.qdrant_url())
            .env("QDRANT_COLLECTION", env.collection())
            .env("WORKER_SCRATCH_DIR", scratch.path())
            .env("WORKER_CONCURRENCY", "1")
            .env_remove("RUST_LOG")
            .env_remove("LOG_FORMAT")
            .env_remove("NO_COLOR")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn()?;
        let stdout = collect(
            child
                .stdout
                .take()
                .ok_or_else(|| anyhow::anyhow!("no stdout"))?,
        );
        let stderr = collect(
            child
                .stderr
                .take()
                .ok_or_else(|| anyhow::anyhow!("no stderr"))?,
        );
        Ok(Self {
            child,
            stdout,
            stderr,
            _scratch: scratch,
        })
    }

    fn lines(&self) -> Vec<String> {
        self.stdout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits for the first stdout line `pick` returns something for.
    async fn wait_for_line<T>(
        &mut self,
        what: &str,
        pick: impl Fn(&str) -> Option<T>,
    ) -> anyhow::Result<T> {
        let (pick, stdout) = (&pick, &self.stdout);
        let found = harness::wait_for(DEADLINE, what, || async move {
            let lines = stdout.lock().unwrap_or_else(|p| p.into_inner());
            Ok(lines.iter().find_map(|line| pick(line)))
        })
        .await;
        found.map_err(|error| {
            let exited = self.child.try_wait().ok().flatten();
            let stderr = self.stderr.lock().map(|l| l.join("\n")).unwrap_or_default();
            anyhow::anyhow!(
                "{error} (exit: {exited:?}); stdout: {:?}; stderr: {stderr}",
                self.lines()
            )
        })
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JSON object of a line, if it is one.
fn json_line(line: &str) -> Option<Value> {
    serde_json::from_str::<Value>(line)
        .ok()
        .filter(Value::is_object)
}

/// Whether the line's spans include one named `span` with `request_id`.
fn in_span(line: &Value, span: &str, request_id: &str) -> bool {
    line["spans"].as_array().is_some_and(|spans| {
        spans
            .iter()
            .any(|s| s["name"] == span && s["request_id"] == request_id)
    })
}

/// The address in the text or JSON "service listening" line.
fn listening_address(line: &str) -> Option<String> {
    if let Some(event) = json_line(line) {
        return (event["fields"]["message"] == "service listening")
            .then(|| event["fields"]["address"].as_str().map(str::to_owned))
            .flatten();
    }
    let (_, rest) = line.split_once("service listening")?;
    let (_, address) = rest.split_once("address=")?;
    Some(address.split_whitespace().next()?.to_owned())
}

#[tokio::test]
async fn json_logs_follow_a_request_id_from_the_api_to_the_worker() -> TestResult {
    // Arrange: the binary with JSON logs on a pipe.
    let env = TestEnv::new().await?;
    let mut service = ServiceProcess::start(&env, &[("LOG_FORMAT", "json")], false)?;
    let address = service
        .wait_for_line("the service to listen", listening_address)
        .await?;
    let request_id = format!("it-{}", Uuid::new_v4().simple());

    // Act: index a file under our request id.
    let response = reqwest::Client::new()
        .post(format!("http://{address}/index"))
        .header("x-request-id", &request_id)
        .json(&json!({ "project": env.project(), "files": [{ "path": "src/traced.rs", "content": "fn traced() {}" }] }))
        .send()
        .await?;

    // Assert: echoed; the API's line and the worker's line for the file carry it; every line is
    // one JSON object.
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["x-request-id"], request_id.as_str());
    let api_line = service
        .wait_for_line("the API's line for the request", |line| {
            json_line(line).filter(|event| in_span(event, "http", &request_id))
        })
        .await?;
    assert_eq!(api_line["span"]["route"], "/index");
    let worker_line = service
        .wait_for_line("the worker's line for the file", |line| {
            json_line(line).filter(|event| in_span(event, "row", &request_id))
        })
        .await?;
    assert_eq!(worker_line["span"]["path"], "src/traced.rs");
    assert_eq!(worker_line["span"]["request_id"], request_id.as_str());
    let lines = service.lines();
    assert!(lines.len() > 3);
    for line in &lines {
        assert!(json_line(line).is_some(), "not a JSON object: {line:?}");
    }
    Ok(())
}

#[tokio::test]
async fn text_logs_on_a_pipe_have_no_colour_codes_and_show_the_request_id() -> TestResult {
    let env = TestEnv::new().await?;
    let mut service = ServiceProcess::start(&env, &[], false)?;
    service
        .wait_for_line("the service to listen", |line| {
            line.contains("service listening").then_some(())
        })
        .await?;
    for line in service.lines() {
        assert!(!line.contains('\u{1b}'), "colour codes on a pipe: {line:?}");
    }
    let address = service
        .wait_for_line("the listening address", listening_address)
        .await?;
    let request_id = format!("it-{}", Uuid::new_v4().simple());

    let response = reqwest::Client::new()
        .get(format!("http://{address}/healthz"))
        .header("x-request-id", &request_id)
        .send()
        .await?;

    assert_eq!(response.status(), 200);
    let needle = format!("request_id={request_id}");
    service
        .wait_for_line("the request's line", |line| {
            line.contains(&needle).then_some(())
        })
        .await?;
    for line in service.lines() {
        assert!(!line.contains('\u{1b}'), "colour codes on a pipe: {line:?}");
    }
    Ok(())
}

#[tokio::test]
async fn text_logs_on_a_terminal_are_coloured() -> TestResult {
    // `script` runs the binary on a pseudo-terminal: its stdout is a terminal there.
    let env = TestEnv::new().await?;
    let mut service = ServiceProcess::start(&env, &[], true)?;

    service
        .wait_for_line("a coloured line", |line| {
            line.contains('\u{1b}').then_some(())
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_request_id_is_taken_when_safe_and_generated_otherwise_and_reaches_the_queue_row(
) -> TestResult {
    let env = TestEnv::new().await?;
    let app = router(state(&env, None).await?);
    let index = |request_id: Option<&str>| {
        let mut request = Request::post("/index").header("content-type", "application/json");
        if let Some(id) = request_id {
            request = request.header("x-request-id", id);
        }
        let body = json!({ "project": "p", "files": [{ "path": format!("{}.rs", Uuid::new_v4()), "content": "x" }] });
        request.body(Body::from(body.to_string()))
    };
    let answered_id = |response: &axum::response::Response| {
        response.headers()["x-request-id"]
            .to_str()
            .map(str::to_owned)
    };

    // A safe id is echoed and written into the row's payload.
    let response = app.clone().oneshot(index(Some("client-42:a/b"))?).await?;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(answered_id(&response)?, "client-42:a/b");
    let rows = env.queue().list(JobStatus::Pending, 10).await?;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].payload["request_id"], "client-42:a/b");

    // Without one, or with a hostile one, a fresh UUID is answered (and used).
    let hostile = format!("{}\"}}, \"level\": \"ERROR", "x".repeat(10));
    for given in [
        None,
        Some(hostile.as_str()),
        Some(&*"a".repeat(129)),
        Some("a b"),
    ] {
        let response = app.clone().oneshot(index(given)?).await?;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let id = answered_id(&response)?;
        assert!(Uuid::parse_str(&id).is_ok(), "{given:?} gave {id:?}");
    }
    // Errors, 404s and 405s carry one too.
    for request in [
        Request::get("/nope").body(Body::empty())?,
        Request::put("/index").body(Body::empty())?,
        Request::post("/index").body(Body::from("{"))?,
    ] {
        let response = app.clone().oneshot(request).await?;
        assert!(response.headers().contains_key("x-request-id"));
    }
    Ok(())
}
