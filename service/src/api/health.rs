//! `/healthz` (the process answers) and `/readyz` (database, Qdrant and model ready).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use queue::worker::WorkerHealth;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;

/// How long one readiness check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Answer of `GET /healthz`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    pub status: String,
}

/// Answer of `GET /readyz`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    #[schema(pattern = "^(ready|not_ready)$")]
    pub status: String,
    /// Each check: `ok` or `unavailable`.
    pub checks: Checks,
    /// Why the workers stopped claiming, while they are paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The readiness checks.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Checks {
    /// PostgreSQL answers.
    #[schema(pattern = "^(ok|unavailable)$")]
    pub database: String,
    /// Qdrant answers.
    #[schema(pattern = "^(ok|unavailable)$")]
    pub qdrant: String,
    /// The model embeds a text.
    #[schema(pattern = "^(ok|unavailable)$")]
    pub model: String,
    /// The workers claim (`ok`), stopped claiming because a dependency their rows need is
    /// down and probe it until it is back (`paused`, with the `reason`), or this process runs
    /// none (`none`).
    #[schema(pattern = "^(ok|paused|none)$")]
    pub workers: String,
}

/// Liveness
///
/// 200 while the process serves requests.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Up", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness
///
/// 200 when PostgreSQL and Qdrant answer, the model embeds a text (in the query lane, which
/// indexing never holds) and the workers are not paused by an outage, else 503 with the
/// failing checks named and, for paused workers, the reason.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready; the failing checks are `unavailable`", body = Readiness),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let database = tokio::time::timeout(
        CHECK_TIMEOUT,
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool),
    )
    .await;
    let database_ok = matches!(database, Ok(Ok(1)));
    let qdrant =
        tokio::time::timeout(CHECK_TIMEOUT, state.indexer.store().count("readyz-probe")).await;
    let qdrant_ok = matches!(qdrant, Ok(Ok(_)));
    let model = tokio::time::timeout(
        CHECK_TIMEOUT,
        state.indexer.embedder().embed_query("readiness probe"),
    )
    .await;
    let model_ok = matches!(model, Ok(Ok(_)));
    let (workers, reason) = match state.workers.as_ref().map(|workers| workers.health()) {
        None => ("none", None),
        Some(WorkerHealth::Working) => ("ok", None),
        Some(WorkerHealth::Paused { reason, .. }) => ("paused", Some(reason)),
    };
    let ready = database_ok && qdrant_ok && model_ok && reason.is_none();
    let status = if ready {
        StatusCode::OK
    } else {
        tracing::warn!(
            database_ok,
            qdrant_ok,
            model_ok,
            workers,
            reason = reason.as_deref(),
            "not ready"
        );
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" }.to_owned();
    (
        status,
        Json(Readiness {
            status: if ready { "ready" } else { "not_ready" }.into(),
            checks: Checks {
                database: word(database_ok),
                qdrant: word(qdrant_ok),
                model: word(model_ok),
                workers: workers.to_owned(),
            },
            reason,
        }),
    )
}
