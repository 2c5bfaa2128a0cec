//! The OpenAPI 3.1 document, derived from the code: each handler's `#[utoipa::path]` (its
//! parameters, body and answers), the request and answer types' `ToSchema`, and the routes
//! themselves ([`super::routes`] registers each handler and its documentation together). What
//! a layer adds to every route it wraps (the time limit's 503, the admin token's 401, the
//! `x-request-id` header) is added to the document where that layer is added.
//!
//! `GET /openapi.json` serves it, with the running configuration's limits filled in.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{HeaderBuilder, OpenApi, RefOr, Required, ResponseBuilder};
use utoipa::{IntoResponses, Modify, ToSchema};

use super::request_id::REQUEST_ID_HEADER;
use super::Limits;
use crate::index::{MAX_PROJECT_LEN, PROJECT_PATTERN};

/// The name of the admin API's security scheme.
pub const ADMIN_SECURITY: &str = "admin_token";

/// The document's fixed parts; the operations come from the router.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "queue-vector reference service",
        description = "Index source files into a vector index through a PostgreSQL queue, then \
            search them. Every error body is `{\"error\": \"...\"}`; every answer carries the \
            request's `x-request-id`.",
    ),
    modifiers(&AdminSecurity),
    tags(
        (name = "index", description = "Queue files and repositories; follow their jobs"),
        (name = "search", description = "Search and delete projects"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "admin", description = "The queue's controls, behind the admin bearer token"),
    )
)]
pub struct ApiDoc;

struct AdminSecurity;

impl Modify for AdminSecurity {
    fn modify(&self, openapi: &mut OpenApi) {
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(ADMIN_SECURITY, SecurityScheme::Http(scheme));
    }
}

/// Every error body.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong; for a client error, what to fix.
    pub error: String,
}

/// The answers of a handler that reads a JSON body, when the body is refused.
#[derive(IntoResponses)]
pub enum BodyRejected {
    /// Malformed JSON, or a value the handler refuses (the message says which).
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// The body is over `BODY_LIMIT_BYTES`.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not sent as `Content-Type: application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
    /// Well-formed JSON with missing or mistyped fields.
    #[response(status = 422)]
    Unprocessable(ErrorBody),
}

/// A parameter is missing or not valid (the message says which).
#[derive(IntoResponses)]
#[response(status = 400)]
pub struct BadParameter(pub ErrorBody);

/// No such resource.
#[derive(IntoResponses)]
#[response(status = 404)]
pub struct NotFound(pub ErrorBody);

/// The server's failures (the detail is logged, not answered).
#[derive(IntoResponses)]
pub enum ServerFailed {
    /// Internal error.
    #[response(status = 500)]
    Internal(ErrorBody),
    /// A dependency (PostgreSQL, Qdrant) is unavailable, or the request took longer than
    /// `REQUEST_TIMEOUT_SECS`; try again later.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// The schema of a project name ([`crate::index::validate_project`]).
pub fn project_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(PROJECT_PATTERN))
        .min_length(Some(1))
        .max_length(Some(MAX_PROJECT_LEN))
        .description(Some(
            "1 to 128 characters from `A-Z a-z 0-9 . _ -`, not `.` or `..`",
        ))
        .build()
}

/// A parameter whose schema is built in code (from the constants the handler checks against);
/// `#[derive(IntoParams)]` with `schema_with` would drop `required` and the description.
pub(crate) fn parameter(
    name: &str,
    location: ParameterIn,
    required: bool,
    description: &str,
    schema: impl Into<RefOr<Schema>>,
) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(location)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// Every operation of `openapi`, for changes that apply to all of them.
pub(crate) fn operations_mut(openapi: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .filter_map(Option::as_mut)
    })
}

/// Documents `status` (an [`ErrorBody`]) on every operation of `openapi` that does not list it
/// yet: for what a layer answers on every route it wraps.
pub(crate) fn add_error_response(openapi: &mut OpenApi, status: StatusCode, description: &str) {
    let body = RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody"));
    for operation in operations_mut(openapi) {
        operation
            .responses
            .responses
            .entry(status.as_u16().to_string())
            .or_insert_with(|| {
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        utoipa::openapi::ContentBuilder::new()
                            .schema(Some(body.clone()))
                            .build(),
                    )
                    .build()
                    .into()
            });
    }
}

/// Makes the document whole: the [`ErrorBody`] schema the layers' answers refer to, the
/// `x-request-id` header on every answer, and `limits` (the running configuration).
pub(crate) fn finish(mut openapi: OpenApi, limits: &Limits) -> Value {
    openapi
        .components
        .get_or_insert_with(Default::default)
        .schemas
        .insert(
            "ErrorBody".into(),
            <ErrorBody as utoipa::PartialSchema>::schema(),
        );
    let request_id = HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .build(),
        ))
        .description(Some(
            "The request's id: the client's `x-request-id` when it is 1 to 128 characters \
             from `A-Z a-z 0-9 - _ . : / + =`, else a new one",
        ))
        .build();
    for operation in operations_mut(&mut openapi) {
        for response in operation.responses.responses.values_mut() {
            if let RefOr::T(response) = response {
                response
                    .headers
                    .insert(REQUEST_ID_HEADER.to_string(), request_id.clone().into());
            }
        }
    }
    let mut document = serde_json::to_value(&openapi).unwrap_or_default();
    if let Some(max_items) =
        document.pointer_mut("/components/schemas/IndexRequest/properties/files/maxItems")
    {
        *max_items = limits.max_files_per_request.into();
    } else if let Some(Value::Object(files)) =
        document.pointer_mut("/components/schemas/IndexRequest/properties/files")
    {
        files.insert("maxItems".into(), limits.max_files_per_request.into());
    }
    document
}

/// The served document (shared by every request).
#[derive(Clone, Debug)]
pub struct Document(pub Arc<Value>);

/// This document
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object))
)]
pub async fn openapi(Extension(document): Extension<Document>) -> Response {
    Json(document.0.as_ref()).into_response()
}
