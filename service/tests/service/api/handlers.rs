//! Handler tests through `router(state).oneshot(..)`: no socket, no workers.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use service::api::{router, AppState};
use service::configuration::Settings;
use service::index::{Embedder, Indexer};
use tower::ServiceExt;

use harness::TestEnv;

use crate::support::TestResult;

/// State over a harness environment's pool and queue; the indexer points at a Qdrant that is
/// never called.
pub(crate) async fn state(env: &TestEnv, admin_token: Option<&str>) -> anyhow::Result<AppState> {
    let settings = Settings::default();
    service::db::migrate(env.pool()).await?;
    let (pool, queue) = (env.pool().clone(), env.queue().clone());
    let embedder = Embedder::shared(&settings.embedding.embedder_config())?;
    let client = qdrant_client::Qdrant::from_url("http://127.0.0.1:9")
        .skip_compatibility_check()
        .build()?;
    let indexer = Arc::new(Indexer::new(Arc::new(client), "unused", embedder));
    Ok(AppState::new(
        pool,
        queue,
        indexer,
        admin_token.map(str::to_owned),
    ))
}

pub(crate) async fn call(
    state: AppState,
    request: Request<Body>,
) -> anyhow::Result<(StatusCode, Value)> {
    let response = router(state).oneshot(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)?
    };
    Ok((status, body))
}

#[tokio::test]
async fn healthz_answers_ok() -> TestResult {
    let env = TestEnv::new().await?;
    let (status, body) = call(
        state(&env, None).await?,
        Request::get("/healthz").body(Body::empty())?,
    )
    .await?;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    Ok(())
}

#[tokio::test]
async fn an_unknown_route_is_a_json_404() -> TestResult {
    let env = TestEnv::new().await?;
    let (status, body) = call(
        state(&env, None).await?,
        Request::get("/nope").body(Body::empty())?,
    )
    .await?;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
    Ok(())
}

#[tokio::test]
async fn the_admin_token_is_checked_before_the_handler_runs() -> TestResult {
    let env = TestEnv::new().await?;
    let state = state(&env, Some("s3cret")).await?;

    let refused = Request::get("/admin/queue")
        .header("authorization", "Bearer s3cre")
        .body(Body::empty())?;
    let (status, _) = call(state.clone(), refused).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let allowed = Request::get("/admin/queue")
        .header("authorization", "Bearer s3cret")
        .body(Body::empty())?;
    let (status, body) = call(state, allowed).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["paused"], false);
    Ok(())
}

#[tokio::test]
async fn readiness_is_503_naming_qdrant_when_it_is_unreachable() -> TestResult {
    let env = TestEnv::new().await?;
    let (status, body) = call(
        state(&env, None).await?,
        Request::get("/readyz").body(Body::empty())?,
    )
    .await?;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["checks"]["qdrant"], "unavailable");
    assert_eq!(body["checks"]["database"], "ok");
    Ok(())
}
