//! `GET /metrics` (OpenMetrics text: queue depth by status, row counters, latencies, requests by
//! route and status) and the middleware that counts and times every request.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::openapi::ServerFailed;
use super::{ApiError, AppState};
use crate::metrics::{self, Metrics};

/// Prometheus metrics
///
/// OpenMetrics text: queue rows by status, depth, pause switch, row counters, claim and row
/// latencies, and HTTP requests by method, route and status.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "OpenMetrics text exposition", body = String,
            content_type = "application/openmetrics-text"),
        ServerFailed,
    )
)]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let stats = state.queue.stats().await?;
    let body = state.metrics.render(state.queue.id().as_str(), &stats);
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body))
}

/// Counts and times a request by method, matched route and status (layered on every route, so
/// the route template is known).
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    metrics.record_request(
        &method,
        route.as_ref().map(MatchedPath::as_str),
        response.status(),
        started.elapsed(),
    );
    response
}
