//! Request ids: every HTTP request gets one, taken from its `x-request-id` header when that is a
//! short token of safe characters, else generated (a UUID). It is echoed in the response's
//! `x-request-id`, recorded on the request's span (so every log line of the request shows it),
//! and written into the payload of the queue rows the request creates, so the worker's lines for
//! those rows show it too.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

/// The header a request id is read from and echoed in.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a client; a longer one is replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A request's id: 1 to [`MAX_REQUEST_ID_LEN`] characters from `A-Z a-z 0-9 - _ . : / + =`, so
/// it can go into log lines, headers and JSON as it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// A new random id.
    pub fn generate() -> Self {
        Self(Uuid::new_v4().to_string())
    }

    /// `value` as a request id, if it is one (see [`RequestId`]).
    pub fn parse(value: &str) -> Option<Self> {
        let safe = |byte: u8| {
            byte.is_ascii_alphanumeric()
                || matches!(byte, b'-' | b'_' | b'.' | b':' | b'/' | b'+' | b'=')
        };
        let valid =
            !value.is_empty() && value.len() <= MAX_REQUEST_ID_LEN && value.bytes().all(safe);
        valid.then(|| Self(value.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Gives the request its id (the client's if acceptable, else a new one), runs it, and echoes
/// the id in the response. Layered outside tracing, so the request's span can record it.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let given = request.headers().get(&REQUEST_ID_HEADER);
    let id = match given.map(|value| value.to_str().ok().and_then(RequestId::parse)) {
        Some(Some(id)) => id,
        Some(None) => {
            let id = RequestId::generate();
            tracing::debug!(request_id = %id, "unusable x-request-id replaced");
            id
        }
        None => RequestId::generate(),
    };
    request.extensions_mut().insert(id.clone());
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Handlers take the id [`assign`] gave the request (a fresh one if the layer is missing).
impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(RequestId::generate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_tokens_are_taken_and_anything_else_refused() {
        for good in [
            "abc",
            "7f9c-01",
            "trace:span/1+x=",
            &"a".repeat(MAX_REQUEST_ID_LEN),
        ] {
            assert_eq!(RequestId::parse(good).map(|id| id.0), Some(good.to_owned()));
        }
        for bad in [
            "",
            "a b",
            "a\"b",
            "{\"x\":1}",
            "ä",
            "line\nbreak",
            "<script>",
            &"a".repeat(MAX_REQUEST_ID_LEN + 1),
        ] {
            assert!(RequestId::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn generated_ids_are_valid_ids() {
        let id = RequestId::generate();
        assert_eq!(RequestId::parse(id.as_str()), Some(id));
    }
}
