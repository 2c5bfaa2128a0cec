//! The admin API under `/admin/queue`, behind `Authorization: Bearer <ADMIN_TOKEN>` (compared in
//! constant time; 401 without it, and always when no token is configured): stats, pause, resume,
//! drain and redrive.

use std::time::{Duration, Instant};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Json;
use queue::{JobId, JobStatus, QueueStats};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{
    Array, ArrayBuilder, KnownFormat, Object, ObjectBuilder, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::guard;
use super::openapi::{self, BadParameter, BodyRejected, ServerFailed, ADMIN_SECURITY};
use super::{ApiError, AppState};

/// Drain wait when no `timeout_ms` is given.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest drain wait accepted.
pub const MAX_DRAIN_TIMEOUT: Duration = Duration::from_secs(300);

/// How often drain looks at the queue.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// The admin routes, with the token check on every one of them (and, in the document, its 401
/// and security requirement).
pub fn routes(state: AppState) -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::new()
        .routes(routes!(queue_stats))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(drain))
        .routes(routes!(redrive))
        .route_layer(middleware::from_fn_with_state(state, require_admin));
    let document = router.get_openapi_mut();
    openapi::add_error_response(
        document,
        StatusCode::UNAUTHORIZED,
        "A valid admin bearer token is required",
    );
    for operation in openapi::operations_mut(document) {
        operation.security = Some(vec![SecurityRequirement::new(
            ADMIN_SECURITY,
            Vec::<String>::new(),
        )]);
    }
    router
}

/// Refuses a request without the admin bearer token.
async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    match guard::bearer_token(&request) {
        Some(token) if state.is_admin_token(token) => Ok(next.run(request).await),
        _ => Err(ApiError::Unauthorized),
    }
}

/// A queue's state as the admin API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueueView {
    /// The queue.
    pub queue_id: String,
    /// Whether claims are paused.
    pub paused: bool,
    /// Rows not finished yet.
    pub depth: i64,
    /// Rows being processed.
    pub in_flight: i64,
    /// Rows by status.
    pub by_status: std::collections::BTreeMap<String, i64>,
}

fn view(state: &AppState, stats: &QueueStats) -> QueueView {
    QueueView {
        queue_id: state.queue.id().to_string(),
        paused: stats.paused,
        depth: stats.depth(),
        in_flight: stats.count(JobStatus::Processing),
        by_status: stats
            .by_status
            .iter()
            .map(|(status, count)| ((*status).to_owned(), *count))
            .collect(),
    }
}

/// The queue's state
///
/// Counts by status, rows in flight and the pause switch.
#[utoipa::path(
    get,
    path = "/admin/queue",
    tag = "admin",
    responses((status = 200, description = "The queue's state", body = QueueView), ServerFailed)
)]
pub async fn queue_stats(State(state): State<AppState>) -> Result<Json<QueueView>, ApiError> {
    let stats = state.queue.stats().await?;
    Ok(Json(view(&state, &stats)))
}

/// Pause claims
///
/// No worker of any process claims a row of this queue until resume; rows in flight finish.
#[utoipa::path(
    post,
    path = "/admin/queue/pause",
    tag = "admin",
    responses((status = 200, description = "Paused; the queue's state", body = QueueView), ServerFailed)
)]
pub async fn pause(State(state): State<AppState>) -> Result<Json<QueueView>, ApiError> {
    state.queue.pause().await?;
    queue_stats(State(state)).await
}

/// Resume claims
///
/// Claims go on; idle workers are woken.
#[utoipa::path(
    post,
    path = "/admin/queue/resume",
    tag = "admin",
    responses((status = 200, description = "Resumed; the queue's state", body = QueueView), ServerFailed)
)]
pub async fn resume(State(state): State<AppState>) -> Result<Json<QueueView>, ApiError> {
    state.queue.resume().await?;
    queue_stats(State(state)).await
}

/// Query string of `POST /admin/queue/drain`.
#[derive(Debug, Deserialize)]
pub struct DrainParams {
    /// How long to wait, in milliseconds (default 30,000, at most 300,000).
    pub timeout_ms: Option<u64>,
}

impl IntoParams for DrainParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let timeout = openapi::parameter(
            "timeout_ms",
            ParameterIn::Query,
            false,
            "How long to wait, in milliseconds",
            drain_timeout_schema(),
        );
        vec![timeout]
    }
}

fn drain_timeout_schema() -> Object {
    let millis = |duration: Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(millis(MAX_DRAIN_TIMEOUT)))
        .default(Some(millis(DEFAULT_DRAIN_TIMEOUT).into()))
        .build()
}

/// Answer of `POST /admin/queue/drain`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Drained {
    /// Whether no row is in flight any more.
    pub drained: bool,
    /// Why not, when the wait timed out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The queue's state at the end of the wait.
    pub queue: QueueView,
}

/// Wait until no row is in flight
///
/// Waits until no row of the queue is processing. Pause first to stop new claims.
#[utoipa::path(
    post,
    path = "/admin/queue/drain",
    tag = "admin",
    params(DrainParams),
    responses(
        (status = 200, description = "Drained: no row in flight", body = Drained),
        BadParameter,
        (status = 504, description = "Timed out with rows still in flight", body = Drained),
        ServerFailed,
    )
)]
pub async fn drain(
    State(state): State<AppState>,
    params: Result<Query<DrainParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params?;
    let timeout = params
        .timeout_ms
        .map_or(DEFAULT_DRAIN_TIMEOUT, Duration::from_millis);
    if timeout > MAX_DRAIN_TIMEOUT {
        return Err(ApiError::BadRequest(format!(
            "timeout_ms must be at most {}",
            MAX_DRAIN_TIMEOUT.as_millis()
        )));
    }
    let deadline = Instant::now() + timeout;
    loop {
        let stats = state.queue.stats().await?;
        if stats.count(JobStatus::Processing) == 0 {
            let body = Drained {
                drained: true,
                error: None,
                queue: view(&state, &stats),
            };
            return Ok(Json(body).into_response());
        }
        if Instant::now() >= deadline {
            let body = Drained {
                drained: false,
                error: Some(format!(
                    "drain timed out after {} ms with rows still in flight",
                    timeout.as_millis()
                )),
                queue: view(&state, &stats),
            };
            return Ok((StatusCode::GATEWAY_TIMEOUT, Json(body)).into_response());
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// Body of `POST /admin/queue/redrive` (optional: without it, every dead row is redriven).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RedriveRequest {
    /// The dead rows to redrive (queue row ids); absent or null = all.
    #[schema(schema_with = ids_schema)]
    #[serde(default, deserialize_with = "integral_ids")]
    pub ids: Option<Vec<JobId>>,
}

/// Reads row ids as JSON Schema's `integer` is defined: any integral number, `3.0` included.
fn integral_ids<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<JobId>>, D::Error> {
    let numbers: Option<Vec<serde_json::Number>> = Option::deserialize(deserializer)?;
    // Integers are read exactly; a number written with a fraction or an exponent is a float, taken
    // when integral and small enough (2^53) to be exact (-9223372036854775809 is a float too).
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let as_id = |number: &serde_json::Number| {
        let integral = |f: &f64| f.fract() == 0.0 && f.abs() <= EXACT;
        number
            .as_i64()
            .or_else(|| number.as_f64().filter(integral).map(|f| f as JobId))
            .ok_or_else(|| D::Error::custom(format!("{number} is not a row id (a 64-bit integer)")))
    };
    numbers
        .map(|numbers| numbers.iter().map(as_id).collect())
        .transpose()
}

/// Row ids as the server reads them: 64-bit integers (a larger number is not an id).
fn ids_schema() -> Array {
    let id = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(JobId::MIN))
        .maximum(Some(JobId::MAX));
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(id)
        .build()
}

/// Answer of `POST /admin/queue/redrive`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Redriven {
    /// The rows moved back to pending.
    #[schema(value_type = Vec<i64>)]
    pub redriven: Vec<JobId>,
}

/// Dead rows back to pending
///
/// All dead rows, or those of the given ids. A request without a body (and without a
/// `Content-Type`), or with the body `null`, redrives them all.
#[utoipa::path(
    post,
    path = "/admin/queue/redrive",
    tag = "admin",
    request_body(content = Option<RedriveRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "The redriven row ids", body = Redriven),
        BodyRejected,
        ServerFailed,
    )
)]
pub async fn redrive(
    State(state): State<AppState>,
    body: Result<Option<Json<serde_json::Value>>, JsonRejection>,
) -> Result<Json<Redriven>, ApiError> {
    // Read through a `Value`: serde would also take a struct from an array (`[]`), which the
    // document does not allow.
    let request = match body? {
        None | Some(Json(serde_json::Value::Null)) => RedriveRequest { ids: None },
        Some(Json(object @ serde_json::Value::Object(_))) => serde_json::from_value(object)
            .map_err(|error| ApiError::Rejected {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: format!("invalid request body: {error}"),
            })?,
        Some(Json(_)) => {
            return Err(ApiError::Rejected {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: "invalid request body: expected {\"ids\": [..]} or null".into(),
            })
        }
    };
    let redriven = match request.ids {
        Some(ids) => state.queue.redrive_ids(&ids).await?,
        None => state.queue.redrive_all().await?,
    };
    Ok(Json(Redriven { redriven }))
}
