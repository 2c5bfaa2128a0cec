//! `/healthz` (the process answers) and `/readyz` (database, Qdrant and model ready).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

/// How long one readiness check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: 200 while the process serves requests.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when PostgreSQL and Qdrant answer and the model embeds a text (in the
/// query lane, which indexing never holds), else 503 with the failing checks named.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
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
    let ready = database_ok && qdrant_ok && model_ok;
    let status = if ready {
        StatusCode::OK
    } else {
        tracing::warn!(database_ok, qdrant_ok, model_ok, "not ready");
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "not_ready" },
            "checks": {
                "database": word(database_ok),
                "qdrant": word(qdrant_ok),
                "model": word(model_ok),
            }
        })),
    )
}
