//! Writes: upsert, delete (by ids or filter), and payload index create/delete. Each goes
//! through the collection's operation log, so an acknowledged write survives a crash.

use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use qdrant_client::qdrant::{
    self as grpc, payload_index_params::IndexParams, points_selector::PointsSelectorOneOf,
    CreateFieldIndexCollection, DeleteFieldIndexCollection, DeletePoints, PointsOperationResponse,
    UpsertPoints,
};
use qdrant_edge::{
    CreateIndex, FieldIndexOperations, JsonPath, PayloadFieldSchema, PointInsertOperations,
    PointOperations, PointStructPersisted, UpdateOperation,
};
use serde_json::json;
use tonic::{Request, Response, Status};

use crate::convert::{
    filter_from_grpc, from_rest_json, payload_from_grpc, point_id_from_grpc, point_ids_from_grpc,
    vector_struct_from_grpc, VectorShape,
};
use crate::error::ApiError;
use crate::service::{elapsed, Api};

impl Api {
    /// Apply one write. It is applied and logged before the reply, so every write behaves as
    /// `wait=true` and survives a crash once acknowledged.
    async fn write(
        &self,
        collection: String,
        start: Instant,
        build: impl FnOnce(&qdrant_edge::EdgeShard) -> Result<UpdateOperation, ApiError>
            + Send
            + 'static,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        self.blocking(move |state| state.storage.get(&collection)?.update(build))
            .await?;
        let operation_id = self.state.next_operation_id.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(PointsOperationResponse {
            result: Some(grpc::UpdateResult {
                operation_id: Some(operation_id),
                status: grpc::UpdateStatus::Completed as i32,
            }),
            time: elapsed(start),
            usage: None,
        }))
    }

    pub(super) async fn upsert_points(
        &self,
        request: Request<UpsertPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        let start = Instant::now();
        let request = request.into_inner();
        if request.update_filter.is_some() {
            return Err(ApiError::Unsupported("Conditional upsert (update_filter)".into()).into());
        }
        let points = request.points;
        self.write(request.collection_name, start, move |shard| {
            let shape = VectorShape::of(&shard.config());
            let points = points
                .into_iter()
                .map(|point| {
                    let id = point
                        .id
                        .as_ref()
                        .ok_or_else(|| ApiError::BadRequest("Empty ID is not allowed".into()))
                        .and_then(point_id_from_grpc)?;
                    Ok(PointStructPersisted {
                        id,
                        vector: vector_struct_from_grpc(point.vectors, &shape)?,
                        payload: Some(payload_from_grpc(point.payload)),
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            Ok(UpdateOperation::PointOperation(
                PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
            ))
        })
        .await
    }

    pub(super) async fn delete_points(
        &self,
        request: Request<DeletePoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        let start = Instant::now();
        let request = request.into_inner();
        let operation = match request.points.and_then(|p| p.points_selector_one_of) {
            Some(PointsSelectorOneOf::Points(list)) => PointOperations::DeletePoints {
                ids: point_ids_from_grpc(&list.ids)?,
            },
            Some(PointsSelectorOneOf::Filter(filter)) => PointOperations::DeletePointsByFilter(
                filter_from_grpc(Some(&filter))?.unwrap_or_default(),
            ),
            None => return Err(ApiError::BadRequest("PointSelector is missing".into()).into()),
        };
        self.write(request.collection_name, start, move |_| {
            Ok(UpdateOperation::PointOperation(operation))
        })
        .await
    }

    pub(super) async fn create_payload_index(
        &self,
        request: Request<CreateFieldIndexCollection>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        let start = Instant::now();
        let request = request.into_inner();
        let field_name = payload_key(&request.field_name)?;
        let field_schema = field_schema(request.field_type, request.field_index_params)?;
        self.write(request.collection_name, start, move |_| {
            Ok(UpdateOperation::FieldIndexOperation(
                FieldIndexOperations::CreateIndex(CreateIndex {
                    field_name,
                    field_schema: Some(field_schema),
                }),
            ))
        })
        .await
    }

    pub(super) async fn delete_payload_index(
        &self,
        request: Request<DeleteFieldIndexCollection>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        let start = Instant::now();
        let request = request.into_inner();
        let field_name = payload_key(&request.field_name)?;
        self.write(request.collection_name, start, move |_| {
            Ok(UpdateOperation::FieldIndexOperation(
                FieldIndexOperations::DeleteIndex(field_name),
            ))
        })
        .await
    }
}

fn payload_key(key: &str) -> Result<JsonPath, ApiError> {
    JsonPath::from_str(key).map_err(|()| ApiError::BadInput(format!("Invalid payload key `{key}`")))
}

/// Index schema in Qdrant's REST form: keyword parameters (`is_tenant`, `on_disk`) are kept;
/// other types are indexed with their defaults.
fn field_schema(
    field_type: Option<i32>,
    params: Option<grpc::PayloadIndexParams>,
) -> Result<PayloadFieldSchema, ApiError> {
    if let Some(IndexParams::KeywordIndexParams(keyword)) = params.and_then(|p| p.index_params) {
        #[allow(deprecated)] // `on_disk` is still what clients send.
        return from_rest_json(json!({
            "type": "keyword",
            "is_tenant": keyword.is_tenant,
            "on_disk": keyword.on_disk,
        }));
    }
    let type_name = match field_type.map(grpc::FieldType::try_from) {
        Some(Ok(grpc::FieldType::Keyword)) => "keyword",
        Some(Ok(grpc::FieldType::Integer)) => "integer",
        Some(Ok(grpc::FieldType::Float)) => "float",
        Some(Ok(grpc::FieldType::Geo)) => "geo",
        Some(Ok(grpc::FieldType::Text)) => "text",
        Some(Ok(grpc::FieldType::Bool)) => "bool",
        Some(Ok(grpc::FieldType::Datetime)) => "datetime",
        Some(Ok(grpc::FieldType::Uuid)) => "uuid",
        Some(Err(_)) => return Err(ApiError::BadRequest("Unknown field type".into())),
        None => {
            return Err(ApiError::BadInput(
                "Unable to infer type for the field. Please specify `field_type`".into(),
            ))
        }
    };
    from_rest_json(json!(type_name))
}
