//! Error types: why a server failed to start, and request failures mapped to gRPC statuses
//! with the texts a real Qdrant uses.

use std::path::PathBuf;

use qdrant_edge::OperationError;
use tonic::Status;

/// Why [`crate::start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be created or read.
    #[error("failed to prepare data directory {path}")]
    DataDir {
        /// The directory in question.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An existing collection could not be reopened.
    #[error("failed to reopen collection in {path}: {message}")]
    OpenCollection {
        /// The collection's directory.
        path: PathBuf,
        /// What the engine reported.
        message: String,
    },
    /// The listen address could not be bound.
    #[error("failed to bind {addr}")]
    Bind {
        /// The address in question.
        addr: std::net::SocketAddr,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A request failure, convertible into the status a real Qdrant would answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The named collection does not exist.
    #[error("Not found: Collection `{0}` doesn't exist!")]
    CollectionNotFound(String),
    /// A collection with that name exists already.
    #[error("Wrong input: Collection `{0}` already exists!")]
    CollectionExists(String),
    /// Request-level validation, worded like Qdrant's validator (`Validation error in body: [...]`).
    #[error("Validation error in body: [{field}: {message}]")]
    Validation {
        field: &'static str,
        message: String,
    },
    /// Input the storage layer rejects (`Wrong input: ...`).
    #[error("Wrong input: {0}")]
    BadInput(String),
    /// A malformed request that Qdrant rejects while converting it (no prefix).
    #[error("{0}")]
    BadRequest(String),
    /// A feature of a supported RPC that this server does not implement.
    #[error("{0} is not supported by the embedded Qdrant")]
    Unsupported(String),
    /// Anything unexpected inside the engine or the host.
    #[error("Service internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub(crate) fn validation(field: &'static str, message: impl Into<String>) -> Self {
        Self::Validation {
            field,
            message: message.into(),
        }
    }
}

impl From<OperationError> for ApiError {
    fn from(err: OperationError) -> Self {
        match err {
            OperationError::WrongVectorDimension { .. }
            | OperationError::VectorNameNotExists { .. }
            | OperationError::TypeError { .. }
            | OperationError::TypeInferenceError { .. }
            | OperationError::ValidationError { .. }
            | OperationError::WrongSparse
            | OperationError::WrongMulti
            | OperationError::MissingRangeIndexForOrderBy { .. }
            | OperationError::MissingMapIndexForFacet { .. }
            | OperationError::VariableTypeError { .. }
            | OperationError::NonFiniteNumber { .. } => Self::BadInput(err.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        let message = err.to_string();
        match err {
            ApiError::CollectionNotFound(_) => Status::not_found(message),
            ApiError::CollectionExists(_) => Status::already_exists(message),
            ApiError::Validation { .. } | ApiError::BadInput(_) | ApiError::BadRequest(_) => {
                Status::invalid_argument(message)
            }
            ApiError::Unsupported(_) => Status::unimplemented(message),
            ApiError::Internal(_) => {
                tracing::error!(error = %message, "request failed");
                Status::internal(message)
            }
        }
    }
}
