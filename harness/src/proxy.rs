//! The tenant recorder: a gRPC proxy in front of a real Qdrant that looks at every request the
//! test and the service under test send through it, and records reads, counts, scrolls and
//! deletes by filter of an environment's collection that are not pinned to the environment's
//! project (`qdrant_tenancy`). The isolation check reports them.
//!
//! It sees what goes through the URL the environment hands out ([`crate::TestEnv::qdrant_url`]):
//! a client built from another URL (the real Qdrant's own) goes around it. It records and lets
//! the request through (a real server has no strict-tenant mode); the embedded Qdrant's
//! strict-tenant mode refuses instead. Compressed requests are recorded as unchecked.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::error::{boxed, HarnessError};
use crate::isolation::PROJECT_FIELD;

/// Largest request the proxy reads (a real Qdrant's gRPC limit).
const MAX_REQUEST: usize = 32 * 1024 * 1024;

type Body = BoxBody<Bytes, hyper::Error>;

/// A running recorder; it serves until the process exits.
#[derive(Clone)]
pub(crate) struct TenantRecorder {
    url: String,
    state: Arc<State>,
}

struct State {
    upstream: Uri,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Collection → the project of the environment that owns it.
    scopes: Mutex<HashMap<String, String>>,
    /// Collection → what was recorded against it.
    violations: Mutex<HashMap<String, Vec<String>>>,
}

/// The process's recorder in front of `upstream`, started once on the harness's runtime.
pub(crate) async fn recorder_for(upstream: &str) -> Result<TenantRecorder, HarnessError> {
    type Recorders = Mutex<HashMap<String, Arc<tokio::sync::OnceCell<TenantRecorder>>>>;
    static RECORDERS: std::sync::OnceLock<Recorders> = std::sync::OnceLock::new();
    let cell = lock(RECORDERS.get_or_init(Default::default))
        .entry(upstream.to_owned())
        .or_default()
        .clone();
    let upstream = upstream.to_owned();
    crate::runtime::on_runtime(async move {
        cell.get_or_try_init(|| TenantRecorder::start(&upstream))
            .await
            .cloned()
    })
    .await
}

impl TenantRecorder {
    /// Starts a recorder in front of `upstream` (a Qdrant gRPC URL), on the current runtime.
    pub(crate) async fn start(upstream: &str) -> Result<Self, HarnessError> {
        let upstream: Uri = upstream
            .parse()
            .map_err(|e| HarnessError::qdrant("parsing QDRANT_URL")(boxed(e)))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(HarnessError::App)?;
        let port = listener.local_addr().map_err(HarnessError::App)?.port();
        let state = Arc::new(State {
            upstream,
            client: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build_http(),
            scopes: Mutex::default(),
            violations: Mutex::default(),
        });
        let serving = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(state.forward(request).await) }
                    });
                    let served = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    if let Err(error) = served {
                        tracing::debug!(%error, "tenant recorder connection ended");
                    }
                });
            }
        });
        Ok(Self {
            url: format!("http://127.0.0.1:{port}"),
            state,
        })
    }

    /// The URL clients use instead of the real Qdrant's.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Requests on `collection` must be pinned to `project` from now on.
    pub(crate) fn scope(&self, collection: &str, project: &str) {
        lock(&self.state.scopes).insert(collection.to_owned(), project.to_owned());
    }

    /// Forgets `collection` and returns what was recorded against it.
    pub(crate) fn unscope(&self, collection: &str) -> Vec<String> {
        lock(&self.state.scopes).remove(collection);
        lock(&self.state.violations)
            .remove(collection)
            .unwrap_or_default()
    }

    /// What was recorded against `collection` so far.
    pub(crate) fn violations(&self, collection: &str) -> Vec<String> {
        lock(&self.state.violations)
            .get(collection)
            .cloned()
            .unwrap_or_default()
    }
}

impl State {
    async fn forward(&self, request: Request<Incoming>) -> Response<Body> {
        let (mut parts, body) = request.into_parts();
        let bytes = match http_body_util::Limited::new(body, MAX_REQUEST)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(error) => return status(StatusCode::PAYLOAD_TOO_LARGE, &error.to_string()),
        };
        self.check(parts.uri.path(), &bytes);
        let mut upstream = self.upstream.clone().into_parts();
        upstream.path_and_query = parts.uri.path_and_query().cloned();
        parts.uri = match Uri::from_parts(upstream) {
            Ok(uri) => uri,
            Err(error) => return status(StatusCode::BAD_GATEWAY, &error.to_string()),
        };
        match self
            .client
            .request(Request::from_parts(parts, Full::new(bytes)))
            .await
        {
            Ok(response) => response.map(BodyExt::boxed),
            Err(error) => status(StatusCode::BAD_GATEWAY, &error.to_string()),
        }
    }

    /// Records a request of a scoped collection that does not pin its project.
    fn check(&self, path: &str, frame: &[u8]) {
        // A unary gRPC request: a compression flag, a 4-byte length, the message.
        let Some((&compressed, rest)) = frame.split_first() else {
            return;
        };
        let message = rest.get(4..).unwrap_or_default();
        if compressed != 0 {
            if path.starts_with("/qdrant.Points/") {
                self.record_unchecked(path);
            }
            return;
        }
        let Ok(Some(request)) = qdrant_tenancy::check_grpc(path, message) else {
            return;
        };
        let collection = request.collection().to_owned();
        let Some(project) = lock(&self.scopes).get(&collection).cloned() else {
            return;
        };
        let method = path.rsplit('/').next().unwrap_or(path);
        let mut found = Vec::new();
        for filter in request.filters() {
            match qdrant_tenancy::pinned_tenant(filter, PROJECT_FIELD) {
                Some(pinned) if pinned == project => {}
                Some(other) => found.push(format!(
                    "{method} on {collection:?} pinned to project {other:?}, not this test's {project:?}"
                )),
                None => found.push(format!(
                    "{method} on {collection:?} without a `must` match on {PROJECT_FIELD} = {project:?} (seen by the tenant recorder)"
                )),
            }
        }
        if !found.is_empty() {
            tracing::warn!(breaches = ?found, "isolation breach");
            lock(&self.violations)
                .entry(collection)
                .or_default()
                .extend(found);
        }
    }

    fn record_unchecked(&self, path: &str) {
        tracing::warn!(%path, "a compressed request went through the tenant recorder unchecked");
    }
}

fn status(code: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(message.to_owned()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = code;
    response
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
