//! Reads by id and by page: get, scroll and count.

use std::time::Instant;

use qdrant_client::qdrant::{
    self as grpc, CountPoints, CountResponse, GetPoints, GetResponse, ScrollPoints, ScrollResponse,
};
use qdrant_edge::{CountRequest, OrderValue, Record, ScrollRequest};
use serde_json::json;
use tonic::{Request, Response, Status};

use super::DEFAULT_LIMIT;
use crate::convert::{
    filter_from_grpc, from_rest_json, payload_to_grpc, point_id_from_grpc, point_id_to_grpc,
    point_ids_from_grpc, vectors_to_grpc, with_payload_from_grpc, with_vectors_from_grpc,
};
use crate::error::ApiError;
use crate::service::{elapsed, validate_limit, Api};

impl Api {
    pub(super) async fn get_points(
        &self,
        request: Request<GetPoints>,
    ) -> Result<Response<GetResponse>, Status> {
        let start = Instant::now();
        let request = request.into_inner();
        let ids = point_ids_from_grpc(&request.ids)?;
        let with_payload = with_payload_from_grpc(request.with_payload.as_ref())?;
        let with_vector = with_vectors_from_grpc(request.with_vectors.as_ref());
        let records = self
            .with_shard(request.collection_name, move |shard| {
                Ok(shard.retrieve(&ids, with_payload, Some(with_vector))?)
            })
            .await?;
        Ok(Response::new(GetResponse {
            result: records.into_iter().map(retrieved_point).collect(),
            time: elapsed(start),
            usage: None,
        }))
    }

    pub(super) async fn scroll_points(
        &self,
        request: Request<ScrollPoints>,
    ) -> Result<Response<ScrollResponse>, Status> {
        let start = Instant::now();
        let request = request.into_inner();
        let limit = match request.limit {
            Some(limit) => validate_limit(u64::from(limit))?,
            None => DEFAULT_LIMIT,
        };
        let order_by = request.order_by.map(order_by_json).transpose()?;
        let scroll = ScrollRequest {
            offset: request
                .offset
                .as_ref()
                .map(point_id_from_grpc)
                .transpose()?,
            limit: Some(limit),
            filter: filter_from_grpc(request.filter.as_ref())?,
            with_payload: with_payload_from_grpc(request.with_payload.as_ref())?,
            with_vector: with_vectors_from_grpc(request.with_vectors.as_ref()),
            order_by: order_by.map(from_rest_json).transpose()?,
        };
        let (records, next_offset) = self
            .with_shard(request.collection_name, move |shard| {
                Ok(shard.scroll(scroll)?)
            })
            .await?;
        Ok(Response::new(ScrollResponse {
            next_page_offset: next_offset.map(point_id_to_grpc),
            result: records.into_iter().map(retrieved_point).collect(),
            time: elapsed(start),
            usage: None,
        }))
    }

    pub(super) async fn count_points(
        &self,
        request: Request<CountPoints>,
    ) -> Result<Response<CountResponse>, Status> {
        let start = Instant::now();
        let request = request.into_inner();
        let count = CountRequest {
            filter: filter_from_grpc(request.filter.as_ref())?,
            exact: request.exact.unwrap_or(true),
        };
        let count = self
            .with_shard(
                request.collection_name,
                move |shard| Ok(shard.count(count)?),
            )
            .await?;
        Ok(Response::new(CountResponse {
            result: Some(grpc::CountResult {
                count: count as u64,
            }),
            time: elapsed(start),
            usage: None,
        }))
    }
}

fn order_by_json(order_by: grpc::OrderBy) -> Result<serde_json::Value, ApiError> {
    if order_by.start_from.is_some() {
        return Err(ApiError::Unsupported("order_by.start_from".into()));
    }
    let direction = match order_by.direction.map(grpc::Direction::try_from) {
        Some(Ok(grpc::Direction::Desc)) => "desc",
        _ => "asc",
    };
    Ok(json!({ "key": order_by.key, "direction": direction }))
}

pub(super) fn order_value(value: OrderValue) -> grpc::OrderValue {
    let variant = match value {
        OrderValue::Int(int) => grpc::order_value::Variant::Int(int),
        OrderValue::Float(float) => grpc::order_value::Variant::Float(float),
    };
    grpc::OrderValue {
        variant: Some(variant),
    }
}

fn retrieved_point(record: Record) -> grpc::RetrievedPoint {
    grpc::RetrievedPoint {
        id: Some(point_id_to_grpc(record.id)),
        payload: payload_to_grpc(record.payload),
        vectors: vectors_to_grpc(record.vector),
        shard_key: None,
        order_value: record.order_value.map(order_value),
    }
}
