//! The HTTP API: [`router`] builds every route from an [`AppState`], in one place.
//!
//! One file per resource: [`index`] (`POST /index`, `POST /index/repository`), [`jobs`]
//! (`GET /jobs/{id}`), [`search`], [`projects`], [`health`] (`/healthz`, `/readyz`), [`admin`]
//! (`/admin/queue/...`, bearer token), [`metrics`] (`/metrics`), [`openapi`] (`/openapi.json`);
//! [`error`] holds the one error type every handler returns. [`guard`] holds what the data
//! routes pass first: the optional API token, then (for intake) the in-process byte budget.

pub mod admin;
pub mod error;
pub mod guard;
pub mod health;
pub mod index;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod projects;
pub mod request_id;
pub mod search;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use queue::worker::Worker;
use queue::Queue;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;
pub use request_id::RequestId;

use crate::configuration::DEFAULT_INTAKE_MAX_BYTES;
use crate::index::Indexer;
use crate::jobs::Intake;
use crate::metrics::Metrics;
use crate::worker::{IndexHandler, RepositoryPolicy};

/// Request limits and per-row settings the handlers apply.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most files in one `POST /index`.
    pub max_files_per_request: usize,
    /// Largest request body in bytes (413 above).
    pub body_limit_bytes: usize,
    /// Most bytes of intake bodies in process at once (503 with Retry-After above).
    pub intake_max_bytes: usize,
    /// Time limit of a request (admin routes excepted).
    pub request_timeout: Duration,
    /// Attempts per queue row before it goes dead.
    pub max_attempts: i32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_files_per_request: 1000,
            body_limit_bytes: 8 * 1024 * 1024,
            intake_max_bytes: DEFAULT_INTAKE_MAX_BYTES,
            request_timeout: Duration::from_secs(30),
            max_attempts: 5,
        }
    }
}

/// What every handler shares: the database, the queue, the indexer, the admin token, metrics.
#[derive(Clone)]
pub struct AppState {
    /// PostgreSQL pool (job tables, readiness).
    pub pool: PgPool,
    /// The queue requests enqueue on.
    pub queue: Queue,
    /// Writes new jobs with their queue rows, concurrent requests in one transaction.
    pub intake: Intake,
    /// Search and project deletion (workers index with their own handle to the same indexer).
    pub indexer: Arc<Indexer>,
    /// Counters shared with the worker pool.
    pub metrics: Arc<Metrics>,
    /// Request limits.
    pub limits: Limits,
    /// Which repositories `POST /index/repository` accepts.
    pub repository: Arc<RepositoryPolicy>,
    /// The worker pool, whose health `/readyz` reports; `None` when the process runs none.
    pub workers: Option<Worker<IndexHandler>>,
    /// SHA-256 of the admin token; `None` refuses every admin request.
    admin_token_hash: Option<[u8; 32]>,
    /// SHA-256 of the data endpoints' token; `None` leaves them open.
    api_token_hash: Option<[u8; 32]>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("queue_id", self.queue.id())
            .field("limits", &self.limits)
            .field("admin_token", &self.admin_token_hash.map(|_| "[redacted]"))
            .field("api_token", &self.api_token_hash.map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over the given pool, queue and indexer; `admin_token` guards `/admin` (none = 401).
    pub fn new(
        pool: PgPool,
        queue: Queue,
        indexer: Arc<Indexer>,
        admin_token: Option<String>,
    ) -> Self {
        Self {
            intake: Intake::new(pool.clone(), queue.clone()),
            pool,
            queue,
            indexer,
            metrics: Arc::default(),
            limits: Limits::default(),
            repository: Arc::default(),
            workers: None,
            admin_token_hash: token_hash(admin_token),
            api_token_hash: None,
        }
    }

    /// The same state with the data endpoints behind `token` (`None`: open).
    pub fn with_api_token(mut self, token: Option<String>) -> Self {
        self.api_token_hash = token_hash(token);
        self
    }

    /// The same state accepting the repositories `policy` allows.
    pub fn with_repository_policy(mut self, policy: RepositoryPolicy) -> Self {
        self.repository = Arc::new(policy);
        self
    }

    /// The same state counting into `metrics` (share it with the worker pool).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The same state reporting `workers`' health in `/readyz`.
    pub fn with_workers(mut self, workers: Worker<IndexHandler>) -> Self {
        self.workers = Some(workers);
        self
    }

    /// The same state with other limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether `token` is the admin token, compared in constant time (over SHA-256 digests, so
    /// the length of the configured token does not leak either).
    pub fn is_admin_token(&self, token: &str) -> bool {
        token_matches(self.admin_token_hash.as_ref(), token)
    }

    /// Whether the data endpoints need a token.
    pub fn requires_api_token(&self) -> bool {
        self.api_token_hash.is_some()
    }

    /// Whether `token` is the data endpoints' token (constant time, as for the admin token).
    pub fn is_api_token(&self, token: &str) -> bool {
        token_matches(self.api_token_hash.as_ref(), token)
    }
}

fn token_hash(token: Option<String>) -> Option<[u8; 32]> {
    token
        .filter(|token| !token.is_empty())
        .map(|token| Sha256::digest(token.as_bytes()).into())
}

fn token_matches(expected: Option<&[u8; 32]>, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    match expected {
        Some(expected) => {
            let given: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            bool::from(given.ct_eq(expected))
        }
        None => false,
    }
}

/// Every route of the service over `state`, with the document `/openapi.json` serves. Layers
/// wrap what comes before them: the request id (outermost) is known before the request's span
/// is made, and error logs land inside that span.
pub fn router(state: AppState) -> Router {
    let limits = state.limits.clone();
    let (routes, document) = routes(&state).split_for_parts();
    let document = openapi::Document(Arc::new(openapi::finish(document, &limits)));
    routes
        .fallback(not_found)
        .layer(Extension(document))
        .layer(DefaultBodyLimit::max(limits.body_limit_bytes))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let route = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or(request.uri().path(), MatchedPath::as_str);
                    let request_id = request
                        .extensions()
                        .get::<RequestId>()
                        .map_or("", RequestId::as_str);
                    tracing::info_span!(
                        "http",
                        method = %request.method(),
                        route = %route,
                        request_id = %request_id,
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(middleware::from_fn(request_id::assign))
        .with_state(state)
}

/// The routes and their documentation, registered together (a handler reaches the router only
/// with its `#[utoipa::path]`), so the document lists every route.
fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    let limits = &state.limits;
    let budget = guard::IntakeBudget::new(limits.intake_max_bytes, limits.body_limit_bytes);
    let intake = OpenApiRouter::new()
        .routes(routes!(index::index_files))
        .routes(routes!(index::index_repository))
        .route_layer(middleware::from_fn_with_state(budget, guard::limit_intake));
    // Route layers wrap what is there: the token is checked before any intake budget is taken.
    let mut data = intake
        .routes(routes!(jobs::get_job))
        .routes(routes!(search::search))
        .routes(routes!(projects::delete_project))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            guard::require_api_token,
        ));
    openapi::add_error_response(
        data.get_openapi_mut(),
        StatusCode::UNAUTHORIZED,
        "`API_TOKEN` is set and the request's bearer token is missing or wrong",
    );
    let mut public = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(data)
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi::openapi))
        .layer(middleware::from_fn_with_state(
            state.limits.request_timeout,
            time_limit,
        ));
    openapi::add_error_response(
        public.get_openapi_mut(),
        StatusCode::SERVICE_UNAVAILABLE,
        "The request took longer than `REQUEST_TIMEOUT_SECS`, or a dependency is unavailable",
    );
    public.merge(admin::routes(state.clone()))
}

/// Answers 503 when the request takes longer than `limit` (admin routes excepted: a drain
/// waits as long as it is asked to).
async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::TimedOut(limit).into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; see GET /openapi.json".into())
}
