//! What a data request passes before its handler: the optional bearer token of the data
//! endpoints ([`require_api_token`]), and for intake (`POST /index`, `POST /index/repository`)
//! the in-process byte budget ([`limit_intake`]).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::{ApiError, AppState};

/// Seconds a client refused for lack of intake budget is told to wait.
pub const INTAKE_RETRY_AFTER_SECS: u64 = 1;

/// The budget is counted in KiB, so a `u32` of permits covers any sensible setting.
const UNIT: usize = 1024;

/// Refuses a data request without the API token, when one is configured.
pub async fn require_api_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !state.requires_api_token() {
        return Ok(next.run(request).await);
    }
    match bearer_token(&request) {
        Some(token) if state.is_api_token(token) => Ok(next.run(request).await),
        _ => Err(ApiError::ApiTokenRequired),
    }
}

/// The token of the request's `Authorization: Bearer …` header, if it has one.
pub(super) fn bearer_token(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Bytes of intake bodies in process at once: a request takes its share before its body is
/// read and gives it back once it is answered.
#[derive(Clone, Debug)]
pub struct IntakeBudget {
    permits: Arc<Semaphore>,
    total: u32,
    body_limit: usize,
}

impl IntakeBudget {
    /// A budget of `max_bytes`, for bodies of at most `body_limit` bytes.
    pub fn new(max_bytes: usize, body_limit: usize) -> Self {
        let total = u32::try_from(max_bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, Semaphore::MAX_PERMITS as u32);
        Self {
            permits: Arc::new(Semaphore::new(total as usize)),
            total,
            body_limit,
        }
    }

    /// What a request costs: its declared length, or the body limit when it declares none
    /// (chunked) or more (it will get 413); never more than the whole budget, so a lone
    /// request always fits.
    fn cost(&self, request: &Request) -> u32 {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok())
            .unwrap_or(self.body_limit)
            .min(self.body_limit);
        u32::try_from(declared.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total)
    }
}

/// Answers 503 with `Retry-After` when the request's body does not fit in the budget now; it
/// is refused before its body is read, so nothing of it is written.
pub async fn limit_intake(
    State(budget): State<IntakeBudget>,
    request: Request,
    next: Next,
) -> Response {
    let cost = budget.cost(&request);
    match budget.permits.clone().try_acquire_many_owned(cost) {
        Ok(permit) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        Err(_) => {
            tracing::warn!(kib = cost, "intake budget exhausted; request refused");
            ApiError::Overloaded {
                retry_after_secs: INTAKE_RETRY_AFTER_SECS,
            }
            .into_response()
        }
    }
}
