//! Similarity search: search and query (nearest by a dense vector, prefetches with fusion).

use std::time::Instant;

use qdrant_client::qdrant::{
    self as grpc, query, vector_input, QueryPoints, QueryResponse, SearchPoints, SearchResponse,
};
use qdrant_edge::external::ordered_float::OrderedFloat;
use qdrant_edge::{
    Fusion, NamedQuery, Prefetch, QueryEnum, QueryRequest, ScoredPoint, ScoringQuery,
    SearchRequest, VectorInternal, WithPayloadInterface,
};
use tonic::{Request, Response, Status};

use super::retrieve::order_value;
use super::DEFAULT_LIMIT;
use crate::convert::{
    filter_from_grpc, payload_to_grpc, point_id_to_grpc, vectors_to_grpc, with_payload_from_grpc,
    with_vectors_from_grpc, VectorShape,
};
use crate::error::ApiError;
use crate::service::{elapsed, validate_limit, Api};

/// Qdrant's default `k` for reciprocal rank fusion.
const DEFAULT_RRF_K: usize = 2;

impl Api {
    pub(super) async fn search_points(
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

    pub(super) async fn query_points(
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
}

fn optional_limit(limit: Option<u64>) -> Result<usize, ApiError> {
    limit.map_or(Ok(DEFAULT_LIMIT), validate_limit)
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
