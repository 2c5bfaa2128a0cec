//! `GET /search?project=&q=&limit=`: the chunks of a project most similar to a query.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use super::openapi::{parameter, project_schema, BadParameter, ServerFailed};
use super::{ApiError, AppState};
use crate::index::{SearchHit, MAX_SEARCH_LIMIT, QUERY_PATTERN};

/// Results returned when `limit` is not given.
pub const DEFAULT_LIMIT: u64 = 10;

/// Query string of `GET /search`.
#[derive(Debug, Deserialize)]
pub struct SearchParams {
    /// The project to search.
    pub project: String,
    /// The natural-language query.
    pub q: String,
    /// Results wanted (1 to 1000, default 10).
    pub limit: Option<u64>,
}

impl IntoParams for SearchParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            parameter(
                "project",
                ParameterIn::Query,
                true,
                "The project to search",
                project_schema(),
            ),
            parameter(
                "q",
                ParameterIn::Query,
                true,
                "The natural-language query: at least one character that is not white space",
                query_schema(),
            ),
            parameter(
                "limit",
                ParameterIn::Query,
                false,
                "Results wanted",
                limit_schema(),
            ),
        ]
    }
}

fn query_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(QUERY_PATTERN))
        .build()
}

fn limit_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(MAX_SEARCH_LIMIT))
        .default(Some(DEFAULT_LIMIT.into()))
        .build()
}

/// Answer of `GET /search`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchResponse {
    /// The project searched.
    pub project: String,
    /// The query.
    pub query: String,
    /// Best first.
    pub hits: Vec<Hit>,
}

/// One result.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Hit {
    /// The file.
    pub path: String,
    /// The definition's qualified name, if any.
    pub symbol: Option<String>,
    /// function, method, class, ... or window.
    pub kind: String,
    /// The file's language.
    pub language: String,
    /// First line (1-based).
    pub start_line: usize,
    /// Last line (inclusive).
    pub end_line: usize,
    /// Cosine similarity.
    pub score: f32,
    /// The chunk's text.
    pub content: String,
}

impl From<SearchHit> for Hit {
    fn from(hit: SearchHit) -> Self {
        Self {
            path: hit.path,
            symbol: hit.symbol,
            kind: hit.kind.as_str().to_owned(),
            language: hit.language.as_str().to_owned(),
            start_line: hit.start_line,
            end_line: hit.end_line,
            score: hit.score,
            content: hit.content,
        }
    }
}

/// Search a project
///
/// The chunks of a project most similar to a natural-language query, best first.
#[utoipa::path(
    get,
    path = "/search",
    tag = "search",
    params(SearchParams),
    responses(
        (status = 200, description = "Hits, best first", body = SearchResponse),
        BadParameter,
        ServerFailed,
    )
)]
#[tracing::instrument(skip_all)]
pub async fn search(
    State(state): State<AppState>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let Query(params) = params?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    let hits = state
        .indexer
        .search(&params.project, &params.q, limit)
        .await?;
    Ok(Json(SearchResponse {
        project: params.project,
        query: params.q,
        hits: hits.into_iter().map(Hit::from).collect(),
    }))
}
