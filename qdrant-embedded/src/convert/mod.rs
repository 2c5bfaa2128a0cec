//! Hand-written mapping between `qdrant-client`'s gRPC types and `qdrant-edge`'s types.
//!
//! `qdrant-edge` exports no gRPC conversions. Where its types deserialize from Qdrant's REST
//! JSON (filters, selectors, index schemas), we build that JSON and let serde do the rest, so
//! only re-exported types need naming.

mod filter;
mod vectors;

use std::collections::HashMap;

use qdrant_client::qdrant::{
    self as grpc, point_id::PointIdOptions, with_payload_selector, with_vectors_selector,
};
use qdrant_edge::external::uuid::Uuid;
use qdrant_edge::{Payload, PointId, WithPayloadInterface, WithVector};
use serde_json::{json, Map, Value as Json};

use crate::error::ApiError;

pub(crate) use filter::filter_from_grpc;
pub(crate) use vectors::{vector_struct_from_grpc, vectors_to_grpc, VectorShape};

/// gRPC point id to engine id. Texts match Qdrant's own conversion errors.
pub(crate) fn point_id_from_grpc(id: &grpc::PointId) -> Result<PointId, ApiError> {
    match &id.point_id_options {
        Some(PointIdOptions::Num(num)) => Ok(PointId::NumId(*num)),
        Some(PointIdOptions::Uuid(text)) => Uuid::parse_str(text)
            .map(PointId::Uuid)
            .map_err(|_| ApiError::BadRequest(format!("Unable to parse UUID: {text}"))),
        None => Err(ApiError::BadRequest("No ID options provided".to_owned())),
    }
}

pub(crate) fn point_ids_from_grpc(ids: &[grpc::PointId]) -> Result<Vec<PointId>, ApiError> {
    ids.iter().map(point_id_from_grpc).collect()
}

/// Engine id to gRPC; UUIDs come back lower-case hyphenated, as from a real Qdrant.
pub(crate) fn point_id_to_grpc(id: PointId) -> grpc::PointId {
    let options = match id {
        PointId::NumId(num) => PointIdOptions::Num(num),
        PointId::Uuid(uuid) => PointIdOptions::Uuid(uuid.hyphenated().to_string()),
    };
    grpc::PointId {
        point_id_options: Some(options),
    }
}

/// Id in Qdrant's REST JSON form, for filters built as JSON.
pub(crate) fn point_id_json(id: &grpc::PointId) -> Result<Json, ApiError> {
    Ok(match point_id_from_grpc(id)? {
        PointId::NumId(num) => json!(num),
        PointId::Uuid(uuid) => json!(uuid.hyphenated().to_string()),
    })
}

pub(crate) fn payload_from_grpc(payload: HashMap<String, grpc::Value>) -> Payload {
    let map: Map<String, Json> = qdrant_client::Payload::from(payload).into();
    Payload(map.into_iter().collect())
}

pub(crate) fn payload_to_grpc(payload: Option<Payload>) -> HashMap<String, grpc::Value> {
    payload
        .map(|payload| {
            payload
                .0
                .into_iter()
                .map(|(key, value)| (key, grpc::Value::from(value)))
                .collect()
        })
        .unwrap_or_default()
}

/// `None` keeps the engine's default for the RPC in question.
pub(crate) fn with_payload_from_grpc(
    selector: Option<&grpc::WithPayloadSelector>,
) -> Result<Option<WithPayloadInterface>, ApiError> {
    let Some(options) = selector.and_then(|s| s.selector_options.as_ref()) else {
        return Ok(None);
    };
    let json = match options {
        with_payload_selector::SelectorOptions::Enable(enable) => json!(enable),
        with_payload_selector::SelectorOptions::Include(include) => {
            json!({ "include": include.fields })
        }
        with_payload_selector::SelectorOptions::Exclude(exclude) => {
            json!({ "exclude": exclude.fields })
        }
    };
    from_rest_json(json).map(Some)
}

pub(crate) fn with_vectors_from_grpc(selector: Option<&grpc::WithVectorsSelector>) -> WithVector {
    match selector.and_then(|s| s.selector_options.as_ref()) {
        Some(with_vectors_selector::SelectorOptions::Enable(enable)) => WithVector::Bool(*enable),
        Some(with_vectors_selector::SelectorOptions::Include(include)) => {
            WithVector::Selector(include.names.clone())
        }
        None => WithVector::Bool(false),
    }
}

/// Deserialize an engine type from Qdrant's REST JSON; failures are bad input.
pub(crate) fn from_rest_json<T: serde::de::DeserializeOwned>(json: Json) -> Result<T, ApiError> {
    serde_json::from_value(json).map_err(|err| ApiError::BadInput(err.to_string()))
}
