//! The OpenAPI document against the router it is served by: every documented operation is
//! routed, and every status the handlers answer (driven here into each of their error paths) is
//! documented for that operation, with a JSON error body where the document says so.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use service::api::{router, AppState, Limits};
use tower::ServiceExt;
use uuid::Uuid;

use harness::TestEnv;

use super::handlers::state;
use crate::support::TestResult;

const TOKEN: &str = "openapi-test-token";

/// One request and the status it must get.
struct Probe {
    method: Method,
    /// The documented path template.
    template: &'static str,
    /// The concrete URI.
    uri: String,
    content_type: Option<&'static str>,
    body: Option<String>,
    token: bool,
    expected: StatusCode,
}

fn probe(method: Method, template: &'static str, uri: impl Into<String>) -> Probe {
    Probe {
        method,
        template,
        uri: uri.into(),
        content_type: None,
        body: None,
        token: template.starts_with("/admin"),
        expected: StatusCode::OK,
    }
}

impl Probe {
    fn json(mut self, body: impl Into<String>) -> Self {
        self.content_type = Some("application/json");
        self.body = Some(body.into());
        self
    }

    fn raw(mut self, content_type: Option<&'static str>, body: impl Into<String>) -> Self {
        self.content_type = content_type;
        self.body = Some(body.into());
        self
    }

    fn without_token(mut self) -> Self {
        self.token = false;
        self
    }

    fn expect(mut self, status: u16) -> Self {
        self.expected = StatusCode::from_u16(status).expect("a status code");
        self
    }
}

struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    body: Vec<u8>,
}

async fn send(router: &Router, probe: &Probe) -> anyhow::Result<Answer> {
    let mut request = Request::builder()
        .method(probe.method.clone())
        .uri(&probe.uri);
    if let Some(content_type) = probe.content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    if probe.token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    }
    let body = probe.body.clone().map_or_else(Body::empty, Body::from);
    let response = router.clone().oneshot(request.body(body)?).await?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = response.into_body().collect().await?.to_bytes().to_vec();
    Ok(Answer {
        status,
        content_type,
        body,
    })
}

/// The router over `env` with the admin token and small limits, and the document it serves.
async fn router_and_document(
    env: &TestEnv,
    limits: Limits,
) -> anyhow::Result<(Router, AppState, Value)> {
    let state = state(env, Some(TOKEN)).await?.with_limits(limits);
    let router = router(state.clone());
    let answer = send(
        &router,
        &probe(Method::GET, "/openapi.json", "/openapi.json"),
    )
    .await?;
    assert_eq!(answer.status, StatusCode::OK);
    let document = serde_json::from_slice(&answer.body)?;
    Ok((router, state, document))
}

fn small_limits() -> Limits {
    Limits {
        body_limit_bytes: 4096,
        ..Limits::default()
    }
}

/// The operation `method template` of the document.
fn operation<'a>(document: &'a Value, method: &Method, template: &str) -> &'a Value {
    &document["paths"][template][method.as_str().to_lowercase()]
}

fn documented_statuses(document: &Value, method: &Method, template: &str) -> Vec<String> {
    operation(document, method, template)["responses"]
        .as_object()
        .map(|responses| responses.keys().cloned().collect())
        .unwrap_or_default()
}

/// Every operation of the document, as (method, path template).
fn operations(document: &Value) -> Vec<(Method, String)> {
    let mut all = Vec::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
            all.push((method, path.clone()));
        }
    }
    all
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_no_other_method_is() -> TestResult {
    let env = TestEnv::new().await?;
    let (router, _, document) = router_and_document(&env, Limits::default()).await?;
    let operations = operations(&document);
    assert!(!operations.is_empty());

    for (method, template) in &operations {
        // Path parameters filled with values of the right type; the token on every request.
        let uri = template
            .replace("{id}", &Uuid::new_v4().to_string())
            .replace("{project}", "p");
        let mut request = probe(method.clone(), "", uri.clone());
        request.token = true;
        if method == Method::POST && !template.starts_with("/admin") {
            request = request.json("{}");
        }
        let answer = send(&router, &request).await?;
        let body = String::from_utf8_lossy(&answer.body);
        assert!(
            answer.status != StatusCode::METHOD_NOT_ALLOWED && !body.contains("no such route"),
            "{method} {template} is documented but not routed: {} {body}",
            answer.status
        );
        // A method the document does not list for this path is not routed either.
        let documented: Vec<&Method> = operations
            .iter()
            .filter(|(_, path)| path == template)
            .map(|(method, _)| method)
            .collect();
        for other in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ] {
            if !documented.contains(&&other) {
                let mut request = probe(other.clone(), "", uri.clone());
                request.token = true;
                let answer = send(&router, &request).await?;
                assert_eq!(
                    answer.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{other} {template} answers without being documented"
                );
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn every_status_the_handlers_answer_is_documented_for_their_operation() -> TestResult {
    let env = TestEnv::new().await?;
    let (router, _, document) = router_and_document(&env, small_limits()).await?;
    let big = json!({ "project": "p", "files": [{ "path": "a", "content": "x".repeat(5000) }] })
        .to_string();
    let file = |path: &str| json!({ "project": "p", "files": [{ "path": path, "content": "x" }] });

    let mut probes = vec![
        // POST /index: accepted, then each way a body is refused.
        probe(Method::POST, "/index", "/index")
            .json(file("src/a.rs").to_string())
            .expect(202),
        probe(Method::POST, "/index", "/index")
            .json("{\"project\": ")
            .expect(400),
        probe(Method::POST, "/index", "/index")
            .json(file("/etc/passwd").to_string())
            .expect(400),
        probe(Method::POST, "/index", "/index")
            .json(json!({ "project": "..", "files": [{ "path": "a", "content": "" }] }).to_string())
            .expect(400),
        probe(Method::POST, "/index", "/index")
            .json(big.clone())
            .expect(413),
        probe(Method::POST, "/index", "/index")
            .raw(Some("text/plain"), file("a").to_string())
            .expect(415),
        probe(Method::POST, "/index", "/index")
            .raw(None, file("a").to_string())
            .expect(415),
        probe(Method::POST, "/index", "/index")
            .json("{\"project\": \"p\"}")
            .expect(422),
        // POST /index/repository.
        probe(Method::POST, "/index/repository", "/index/repository")
            .json(
                json!({ "project": "p", "repository": "/no/such/dir", "ref": "main" }).to_string(),
            )
            .expect(400),
        probe(Method::POST, "/index/repository", "/index/repository")
            .json(big)
            .expect(413),
        probe(Method::POST, "/index/repository", "/index/repository")
            .raw(Some("text/plain"), "{}")
            .expect(415),
        probe(Method::POST, "/index/repository", "/index/repository")
            .json("{\"project\": \"p\"}")
            .expect(422),
        // GET /jobs/{id}.
        probe(
            Method::GET,
            "/jobs/{id}",
            format!("/jobs/{}", Uuid::new_v4()),
        )
        .expect(404),
        probe(Method::GET, "/jobs/{id}", "/jobs/not-a-uuid").expect(400),
        // GET /search (Qdrant is unreachable here: 503 once the query is valid).
        probe(Method::GET, "/search", "/search?project=p&q=parse").expect(503),
        probe(Method::GET, "/search", "/search?project=p").expect(400),
        probe(Method::GET, "/search", "/search?project=p&q=%20%20").expect(400),
        probe(Method::GET, "/search", "/search?project=p&q=x&limit=0").expect(400),
        probe(Method::GET, "/search", "/search?project=p&q=x&limit=-1").expect(400),
        probe(Method::GET, "/search", "/search?project=a%20b&q=x").expect(400),
        // DELETE /projects/{project}.
        probe(Method::DELETE, "/projects/{project}", "/projects/p").expect(503),
        probe(Method::DELETE, "/projects/{project}", "/projects/..").expect(400),
        probe(Method::DELETE, "/projects/{project}", "/projects/a%20b").expect(400),
        // Operations.
        probe(Method::GET, "/healthz", "/healthz"),
        probe(Method::GET, "/readyz", "/readyz").expect(503),
        probe(Method::GET, "/metrics", "/metrics"),
        probe(Method::GET, "/openapi.json", "/openapi.json"),
        // Admin.
        probe(Method::GET, "/admin/queue", "/admin/queue"),
        probe(Method::POST, "/admin/queue/pause", "/admin/queue/pause"),
        probe(Method::POST, "/admin/queue/resume", "/admin/queue/resume"),
        probe(
            Method::POST,
            "/admin/queue/drain",
            "/admin/queue/drain?timeout_ms=0",
        ),
        probe(
            Method::POST,
            "/admin/queue/drain",
            "/admin/queue/drain?timeout_ms=300001",
        )
        .expect(400),
        probe(
            Method::POST,
            "/admin/queue/drain",
            "/admin/queue/drain?timeout_ms=-1",
        )
        .expect(400),
        probe(Method::POST, "/admin/queue/redrive", "/admin/queue/redrive"),
        probe(Method::POST, "/admin/queue/redrive", "/admin/queue/redrive").json("null"),
        probe(Method::POST, "/admin/queue/redrive", "/admin/queue/redrive")
            .json("{\"ids\": [1, 2.0]}"),
        probe(Method::POST, "/admin/queue/redrive", "/admin/queue/redrive")
            .json("{\"ids\": ")
            .expect(400),
        probe(Method::POST, "/admin/queue/redrive", "/admin/queue/redrive")
            .json(format!("{{\"ids\": [{}]}}", "1,".repeat(3000) + "1"))
            .expect(413),
        probe(Method::POST, "/admin/queue/redrive", "/admin/queue/redrive")
            .raw(Some("text/plain"), "{}")
            .expect(415),
        probe(Method::POST, "/admin/queue/redrive", "/admin/queue/redrive")
            .json("[]")
            .expect(422),
        probe(Method::POST, "/admin/queue/redrive", "/admin/queue/redrive")
            .json("{\"ids\": [1.5]}")
            .expect(422),
    ];
    for (method, template) in [
        (Method::GET, "/admin/queue"),
        (Method::POST, "/admin/queue/pause"),
        (Method::POST, "/admin/queue/resume"),
        (Method::POST, "/admin/queue/drain"),
        (Method::POST, "/admin/queue/redrive"),
    ] {
        probes.push(
            probe(method, template, template)
                .without_token()
                .expect(401),
        );
    }

    for probe in &probes {
        let answer = send(&router, probe).await?;
        let what = format!("{} {}", probe.method, probe.uri);
        assert_eq!(
            answer.status,
            probe.expected,
            "{what}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let statuses = documented_statuses(&document, &probe.method, probe.template);
        assert!(
            statuses.contains(&answer.status.as_u16().to_string()),
            "{what} answered {} but {} {} documents only {statuses:?}",
            answer.status,
            probe.method,
            probe.template
        );
        // An error answer is the documented `{"error": "..."}`.
        if answer.status.is_client_error() || answer.status.is_server_error() {
            let media = &operation(&document, &probe.method, probe.template)["responses"]
                [answer.status.as_str()]["content"];
            if media.get("application/json").is_some() && probe.template != "/readyz" {
                assert_eq!(answer.content_type.as_deref(), Some("application/json"));
                let body: Value = serde_json::from_slice(&answer.body)?;
                assert!(body["error"].is_string(), "{what}: {body}");
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_request_over_the_time_limit_gets_the_documented_json_503() -> TestResult {
    let env = TestEnv::new().await?;
    let limits = Limits {
        request_timeout: Duration::from_nanos(1),
        ..Limits::default()
    };
    let (router, _, document) = router_and_document(&env, limits).await?;
    // A search embeds its query on the model's blocking thread: milliseconds, so far past the
    // limit whatever the timer's granularity (a sub-millisecond answer could beat a 1 ns limit
    // rounded up to the timer's next tick).
    let request = probe(Method::GET, "/search", "/search?project=p&q=parse");

    let answer = send(&router, &request).await?;

    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = serde_json::from_slice(&answer.body)?;
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|error| error.contains("took longer")),
        "{body}"
    );
    assert!(documented_statuses(&document, &Method::GET, "/search").contains(&"503".into()));
    Ok(())
}

#[tokio::test]
async fn the_document_states_the_valid_inputs_and_the_configured_limits() -> TestResult {
    let env = TestEnv::new().await?;
    let limits = Limits {
        max_files_per_request: 7,
        ..Limits::default()
    };
    let (_, _, document) = router_and_document(&env, limits).await?;
    let schemas = &document["components"]["schemas"];

    assert_eq!(
        schemas["IndexRequest"]["properties"]["files"]["maxItems"],
        7
    );
    assert_eq!(
        schemas["IndexRequest"]["properties"]["files"]["minItems"],
        1
    );
    let project = &schemas["IndexRequest"]["properties"]["project"];
    assert_eq!(project["pattern"], service::index::PROJECT_PATTERN);
    assert_eq!(project["maxLength"], 128);
    let path = &schemas["FileInput"]["properties"]["path"];
    assert_eq!(path["pattern"], service::api::index::PATH_PATTERN);
    assert_eq!(path["maxLength"], 4096);
    let search = operation(&document, &Method::GET, "/search")["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let param = |name: &str| {
        search
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(param("q")["required"], true);
    assert_eq!(
        param("q")["schema"]["pattern"],
        service::index::QUERY_PATTERN
    );
    assert_eq!(param("project")["required"], true);
    assert_eq!(param("limit")["schema"]["minimum"], 1);
    assert_eq!(param("limit")["schema"]["maximum"], 1000);
    let drain = &operation(&document, &Method::POST, "/admin/queue/drain")["parameters"][0];
    assert_eq!(drain["name"], "timeout_ms");
    assert_eq!(drain["schema"]["minimum"], 0);
    assert_eq!(drain["schema"]["maximum"], 300_000);
    // Every answer documents the request id header; admin operations the bearer token.
    for (method, template) in operations(&document) {
        let operation = operation(&document, &method, &template);
        for (status, response) in operation["responses"].as_object().into_iter().flatten() {
            assert!(
                response["headers"]["x-request-id"].is_object(),
                "{method} {template} {status}"
            );
        }
        if template.starts_with("/admin") {
            assert_eq!(operation["security"], json!([{ "admin_token": [] }]));
            assert!(operation["responses"]["401"].is_object());
        }
    }
    Ok(())
}
