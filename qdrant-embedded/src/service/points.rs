//! The `Points` service: upsert, get, delete (ids or filter), search, query, scroll, count,
//! and payload index create/delete.

use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use qdrant_client::qdrant::{
    self as grpc, payload_index_params::IndexParams, points_selector::PointsSelectorOneOf,
    points_server::Points, query, vector_input, ClearPayloadPoints, CountPoints, CountResponse,
    CreateFieldIndexCollection, CreateVectorNameRequest, DeleteFieldIndexCollection,
    DeletePayloadPoints, DeletePointVectors, DeletePoints, DeleteVectorNameRequest,
    DiscoverBatchPoints, DiscoverBatchResponse, DiscoverPoints, DiscoverResponse, FacetCounts,
    FacetResponse, GetPoints, GetResponse, PointsOperationResponse, QueryBatchPoints,
    QueryBatchResponse, QueryGroupsResponse, QueryPointGroups, QueryPoints, QueryResponse,
    RecommendBatchPoints, RecommendBatchResponse, RecommendGroupsResponse, RecommendPointGroups,
    RecommendPoints, RecommendResponse, ScrollPoints, ScrollResponse, SearchBatchPoints,
    SearchBatchResponse, SearchGroupsResponse, SearchMatrixOffsetsResponse,
    SearchMatrixPairsResponse, SearchMatrixPoints, SearchPointGroups, SearchPoints, SearchResponse,
    SetPayloadPoints, UpdateBatchPoints, UpdateBatchResponse, UpdatePointVectors, UpsertPoints,
};
use qdrant_edge::external::ordered_float::OrderedFloat;
use qdrant_edge::{
    CountRequest, CreateIndex, FieldIndexOperations, Fusion, JsonPath, NamedQuery, OrderValue,
    PayloadFieldSchema, PointInsertOperations, PointOperations, PointStructPersisted, Prefetch,
    QueryEnum, QueryRequest, Record, ScoredPoint, ScoringQuery, ScrollRequest, SearchRequest,
    UpdateOperation, VectorInternal, WithPayloadInterface,
};
use serde_json::json;
use tonic::{Request, Response, Status};

use super::{elapsed, unimplemented, validate_limit, Api};
use crate::convert::{
    filter_from_grpc, from_rest_json, payload_from_grpc, payload_to_grpc, point_id_from_grpc,
    point_id_to_grpc, point_ids_from_grpc, vector_struct_from_grpc, vectors_to_grpc,
    with_payload_from_grpc, with_vectors_from_grpc, VectorShape,
};
use crate::error::ApiError;

/// Default page size of scroll and query, as in Qdrant.
const DEFAULT_LIMIT: usize = 10;
/// Qdrant's default `k` for reciprocal rank fusion.
const DEFAULT_RRF_K: usize = 2;

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
}

#[tonic::async_trait]
impl Points for Api {
    async fn upsert(
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

    async fn delete(
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

    async fn get(&self, request: Request<GetPoints>) -> Result<Response<GetResponse>, Status> {
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

    async fn update_vectors(
        &self,
        _request: Request<UpdatePointVectors>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("Points/UpdateVectors"))
    }

    async fn delete_vectors(
        &self,
        _request: Request<DeletePointVectors>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("Points/DeleteVectors"))
    }

    async fn set_payload(
        &self,
        _request: Request<SetPayloadPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("Points/SetPayload"))
    }

    async fn overwrite_payload(
        &self,
        _request: Request<SetPayloadPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("Points/OverwritePayload"))
    }

    async fn delete_payload(
        &self,
        _request: Request<DeletePayloadPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("Points/DeletePayload"))
    }

    async fn clear_payload(
        &self,
        _request: Request<ClearPayloadPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("Points/ClearPayload"))
    }

    async fn create_field_index(
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

    async fn delete_field_index(
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

    async fn create_vector_name(
        &self,
        _request: Request<CreateVectorNameRequest>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("Points/CreateVectorName"))
    }

    async fn delete_vector_name(
        &self,
        _request: Request<DeleteVectorNameRequest>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("Points/DeleteVectorName"))
    }

    async fn search(
        &self,
        request: Request<SearchPoints>,
    ) -> Result<Response<SearchResponse>, Status> {
        let start = Instant::now();
        let request = request.into_inner();
        let limit = validate_limit(request.limit)?;
        if request.sparse_indices.is_some() {
            return Err(ApiError::Unsupported("Sparse vectors".into()).into());
        }
        let search = SearchRequest {
            query: QueryEnum::Nearest(NamedQuery {
                query: VectorInternal::Dense(request.vector),
                using: request.vector_name.filter(|name| !name.is_empty()),
            }),
            filter: filter_from_grpc(request.filter.as_ref())?,
            params: None,
            limit,
            offset: request.offset.unwrap_or(0) as usize,
            with_payload: with_payload_from_grpc(request.with_payload.as_ref())?,
            with_vector: Some(with_vectors_from_grpc(request.with_vectors.as_ref())),
            score_threshold: request.score_threshold,
        };
        let points = self
            .with_shard(request.collection_name, move |shard| {
                check_query_vector(shard, &search.query)?;
                Ok(shard.search(search)?)
            })
            .await?;
        Ok(Response::new(SearchResponse {
            result: points.into_iter().map(scored_point).collect(),
            time: elapsed(start),
            usage: None,
        }))
    }

    async fn search_batch(
        &self,
        _request: Request<SearchBatchPoints>,
    ) -> Result<Response<SearchBatchResponse>, Status> {
        Err(unimplemented("Points/SearchBatch"))
    }

    async fn search_groups(
        &self,
        _request: Request<SearchPointGroups>,
    ) -> Result<Response<SearchGroupsResponse>, Status> {
        Err(unimplemented("Points/SearchGroups"))
    }

    async fn scroll(
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

    async fn recommend(
        &self,
        _request: Request<RecommendPoints>,
    ) -> Result<Response<RecommendResponse>, Status> {
        Err(unimplemented("Points/Recommend"))
    }

    async fn recommend_batch(
        &self,
        _request: Request<RecommendBatchPoints>,
    ) -> Result<Response<RecommendBatchResponse>, Status> {
        Err(unimplemented("Points/RecommendBatch"))
    }

    async fn recommend_groups(
        &self,
        _request: Request<RecommendPointGroups>,
    ) -> Result<Response<RecommendGroupsResponse>, Status> {
        Err(unimplemented("Points/RecommendGroups"))
    }

    async fn discover(
        &self,
        _request: Request<DiscoverPoints>,
    ) -> Result<Response<DiscoverResponse>, Status> {
        Err(unimplemented("Points/Discover"))
    }

    async fn discover_batch(
        &self,
        _request: Request<DiscoverBatchPoints>,
    ) -> Result<Response<DiscoverBatchResponse>, Status> {
        Err(unimplemented("Points/DiscoverBatch"))
    }

    async fn count(
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

    async fn update_batch(
        &self,
        _request: Request<UpdateBatchPoints>,
    ) -> Result<Response<UpdateBatchResponse>, Status> {
        Err(unimplemented("Points/UpdateBatch"))
    }

    async fn query(
        &self,
        request: Request<QueryPoints>,
    ) -> Result<Response<QueryResponse>, Status> {
        let start = Instant::now();
        let request = request.into_inner();
        if request.lookup_from.is_some() {
            return Err(ApiError::Unsupported("lookup_from".into()).into());
        }
        let query = QueryRequest {
            prefetches: request
                .prefetch
                .into_iter()
                .map(prefetch)
                .collect::<Result<_, _>>()?,
            query: scoring_query(request.query, request.using)?,
            filter: filter_from_grpc(request.filter.as_ref())?,
            score_threshold: request.score_threshold.map(OrderedFloat),
            limit: optional_limit(request.limit)?,
            offset: request.offset.unwrap_or(0) as usize,
            params: None,
            with_vector: with_vectors_from_grpc(request.with_vectors.as_ref()),
            with_payload: with_payload_from_grpc(request.with_payload.as_ref())?
                .unwrap_or(WithPayloadInterface::Bool(false)),
        };
        let points = self
            .with_shard(request.collection_name, move |shard| {
                check_scoring_query(shard, &query)?;
                Ok(shard.query(query)?)
            })
            .await?;
        Ok(Response::new(QueryResponse {
            result: points.into_iter().map(scored_point).collect(),
            time: elapsed(start),
            usage: None,
        }))
    }

    async fn query_batch(
        &self,
        _request: Request<QueryBatchPoints>,
    ) -> Result<Response<QueryBatchResponse>, Status> {
        Err(unimplemented("Points/QueryBatch"))
    }

    async fn query_groups(
        &self,
        _request: Request<QueryPointGroups>,
    ) -> Result<Response<QueryGroupsResponse>, Status> {
        Err(unimplemented("Points/QueryGroups"))
    }

    async fn facet(
        &self,
        _request: Request<FacetCounts>,
    ) -> Result<Response<FacetResponse>, Status> {
        Err(unimplemented("Points/Facet"))
    }

    async fn search_matrix_pairs(
        &self,
        _request: Request<SearchMatrixPoints>,
    ) -> Result<Response<SearchMatrixPairsResponse>, Status> {
        Err(unimplemented("Points/SearchMatrixPairs"))
    }

    async fn search_matrix_offsets(
        &self,
        _request: Request<SearchMatrixPoints>,
    ) -> Result<Response<SearchMatrixOffsetsResponse>, Status> {
        Err(unimplemented("Points/SearchMatrixOffsets"))
    }
}

fn optional_limit(limit: Option<u64>) -> Result<usize, ApiError> {
    limit.map_or(Ok(DEFAULT_LIMIT), validate_limit)
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

fn prefetch(prefetch: grpc::PrefetchQuery) -> Result<Prefetch, ApiError> {
    if prefetch.lookup_from.is_some() {
        return Err(ApiError::Unsupported("lookup_from".into()));
    }
    Ok(Prefetch {
        prefetches: prefetch
            .prefetch
            .into_iter()
            .map(self::prefetch)
            .collect::<Result<_, _>>()?,
        query: scoring_query(prefetch.query, prefetch.using)?,
        limit: optional_limit(prefetch.limit)?,
        params: None,
        filter: filter_from_grpc(prefetch.filter.as_ref())?,
        score_threshold: prefetch.score_threshold.map(OrderedFloat),
    })
}

/// Nearest-vector and fusion queries; no query at all scrolls by id.
fn scoring_query(
    query: Option<grpc::Query>,
    using: Option<String>,
) -> Result<Option<ScoringQuery>, ApiError> {
    let Some(variant) = query.and_then(|q| q.variant) else {
        return Ok(None);
    };
    let scoring = match variant {
        query::Variant::Nearest(input) => match input.variant {
            Some(vector_input::Variant::Dense(dense)) => {
                ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
                    query: VectorInternal::Dense(dense.data),
                    using: using.filter(|name| !name.is_empty()),
                }))
            }
            _ => {
                return Err(ApiError::Unsupported(
                    "Nearest queries other than by a dense vector".into(),
                ))
            }
        },
        query::Variant::Fusion(fusion) => match grpc::Fusion::try_from(fusion) {
            Ok(grpc::Fusion::Rrf) => ScoringQuery::Fusion(Fusion::Rrf {
                k: DEFAULT_RRF_K,
                weights: None,
            }),
            Ok(grpc::Fusion::Dbsf) => ScoringQuery::Fusion(Fusion::Dbsf),
            Err(_) => return Err(ApiError::BadRequest(format!("Unknown fusion {fusion}"))),
        },
        query::Variant::Rrf(rrf) => ScoringQuery::Fusion(Fusion::Rrf {
            k: rrf.k.map_or(DEFAULT_RRF_K, |k| k as usize),
            weights: None,
        }),
        _ => return Err(ApiError::Unsupported("This query variant".into())),
    };
    Ok(Some(scoring))
}

/// Refuse a query vector of the wrong size with Qdrant's wording.
fn check_query_vector(shard: &qdrant_edge::EdgeShard, query: &QueryEnum) -> Result<(), ApiError> {
    if let QueryEnum::Nearest(NamedQuery {
        query: VectorInternal::Dense(vector),
        using,
    }) = query
    {
        VectorShape::of(&shard.config()).check(using.as_deref().unwrap_or(""), vector)?;
    }
    Ok(())
}

fn check_scoring_query(
    shard: &qdrant_edge::EdgeShard,
    query: &QueryRequest,
) -> Result<(), ApiError> {
    fn check_prefetch(shard: &qdrant_edge::EdgeShard, prefetch: &Prefetch) -> Result<(), ApiError> {
        if let Some(ScoringQuery::Vector(query)) = &prefetch.query {
            check_query_vector(shard, query)?;
        }
        prefetch
            .prefetches
            .iter()
            .try_for_each(|p| check_prefetch(shard, p))
    }
    if let Some(ScoringQuery::Vector(vector)) = &query.query {
        check_query_vector(shard, vector)?;
    }
    query
        .prefetches
        .iter()
        .try_for_each(|p| check_prefetch(shard, p))
}

fn order_value(value: OrderValue) -> grpc::OrderValue {
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

fn scored_point(point: ScoredPoint) -> grpc::ScoredPoint {
    grpc::ScoredPoint {
        id: Some(point_id_to_grpc(point.id)),
        payload: payload_to_grpc(point.payload),
        score: point.score,
        version: point.version,
        vectors: vectors_to_grpc(point.vector),
        shard_key: None,
        order_value: point.order_value.map(order_value),
    }
}
