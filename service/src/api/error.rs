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

/// Seconds a client is told to wait when the database is unavailable.
pub const DATABASE_RETRY_AFTER_SECS: u64 = 2;

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
    /// Missing or wrong bearer token on a data endpoint when `API_TOKEN` is set (401).
    #[error("a valid bearer token is required")]
    ApiTokenRequired,
    /// Too many request bytes in process (503 with `Retry-After`); nothing was read or written.
    #[error("the service is busy with other requests' bodies; retry after {retry_after_secs} s")]
    Overloaded {
        /// What `Retry-After` says.
        retry_after_secs: u64,
    },
    /// PostgreSQL is restarting or unreachable (503 with `Retry-After`); the detail is logged.
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
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
            ApiError::Unauthorized | ApiError::ApiTokenRequired => StatusCode::UNAUTHORIZED,
            ApiError::Overloaded { .. }
            | ApiError::DatabaseUnavailable(_)
            | ApiError::Unavailable(_)
            | ApiError::TimedOut(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::DatabaseUnavailable(detail) => {
                tracing::error!(%detail, "database unavailable");
                "the database is unavailable (restarting or unreachable); try again in a few seconds"
                    .to_owned()
            }
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
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthorized | ApiError::ApiTokenRequired => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Overloaded { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            ApiError::DatabaseUnavailable(_) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(DATABASE_RETRY_AFTER_SECS),
                );
            }
            _ => {}
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
        if queue::db::is_unavailable(&error) {
            ApiError::DatabaseUnavailable(error.to_string())
        } else {
            ApiError::Internal(format!("database: {error}"))
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
