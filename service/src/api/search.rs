//! `GET /search?project=&q=&limit=`: the chunks of a project most similar to a query.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::index::SearchHit;

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

/// Answer of `GET /search`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SearchResponse {
    /// The project searched.
    pub project: String,
    /// The query.
    pub query: String,
    /// Best first.
    pub hits: Vec<Hit>,
}

/// One result.
#[derive(Debug, Serialize, Deserialize)]
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

/// `GET /search`.
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
