//! The API's one error type: each variant knows its status, and every body is `{"error": "..."}`.
//!
//! Client errors say what to fix. Server errors answer a generic message and log their detail
//! once, inside the request's span.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use queue::QueueError;

use super::openapi::ErrorBody;

use crate::index::{IndexError, StoreError};
use crate::jobs::{IntakeError, JobStoreError};

/// Everything a handler can answer instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is not acceptable as sent (400).
    #[error("{0}")]
    BadRequest(String),
    /// An extractor refused the request (its own status: 400, 413, 415, 422).
    #[error("{message}")]
    Rejected {
        /// The extractor's status.
        status: StatusCode,
        /// What was wrong.
        message: String,
    },
    /// No such resource (404).
    #[error("{0}")]
    NotFound(String),
    /// Missing or wrong bearer token (401).
    #[error("a valid admin bearer token is required")]
    Unauthorized,
    /// A dependency is down (503); the detail is logged.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The request took longer than the limit (503).
    #[error("the request took longer than {} s; try again later", .0.as_secs_f64())]
    TimedOut(std::time::Duration),
    /// Anything else (500); the detail is logged.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Rejected { status, .. } => *status,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Unavailable(_) | ApiError::TimedOut(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Unavailable(detail) => {
                tracing::error!(%detail, "dependency unavailable");
                "a dependency of the service is unavailable; try again later".to_owned()
            }
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "internal server error".to_owned()
            }
            ApiError::TimedOut(limit) => {
                tracing::warn!(limit_ms = limit.as_millis(), "request timed out");
                self.to_string()
            }
            other => other.to_string(),
        };
        let mut response = (status, Json(ErrorBody { error: message })).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let message = match &rejection {
            JsonRejection::JsonSyntaxError(_) => {
                format!("malformed JSON: {}", rejection.body_text())
            }
            JsonRejection::JsonDataError(_) => {
                format!("invalid request body: {}", rejection.body_text())
            }
            JsonRejection::MissingJsonContentType(_) => {
                "expected a body with `Content-Type: application/json`".to_owned()
            }
            _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                "request body is over the size limit".to_owned()
            }
            _ => rejection.body_text(),
        };
        ApiError::Rejected {
            status: rejection.status(),
            message,
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::Rejected {
            status: StatusCode::BAD_REQUEST,
            message: rejection.body_text(),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::Rejected {
            status: StatusCode::BAD_REQUEST,
            message: rejection.body_text(),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                ApiError::Unavailable(format!("database: {error}"))
            }
            other => ApiError::Internal(format!("database: {other}")),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> Self {
        match error {
            QueueError::Database(error) => error.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<JobStoreError> for ApiError {
    fn from(error: JobStoreError) -> Self {
        match error {
            JobStoreError::Database(error) => error.into(),
        }
    }
}

impl From<IntakeError> for ApiError {
    fn from(error: IntakeError) -> Self {
        match error {
            IntakeError::Store(error) => error.into(),
            IntakeError::Queue(error) => error.into(),
            IntakeError::Stopped => ApiError::Unavailable(error.to_string()),
        }
    }
}

impl From<IndexError> for ApiError {
    fn from(error: IndexError) -> Self {
        match error {
            IndexError::InvalidProject(_)
            | IndexError::InvalidPath(_)
            | IndexError::InvalidLimit(_)
            | IndexError::EmptyQuery => ApiError::BadRequest(error.to_string()),
            IndexError::Store(StoreError::Qdrant { .. }) => {
                ApiError::Unavailable(error.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}
