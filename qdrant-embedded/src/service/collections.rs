//! The `Collections` service: create, get (info), list, exists, delete.

use std::collections::HashMap;
use std::time::{Instant, UNIX_EPOCH};

use qdrant_client::qdrant::{
    self as grpc, collections_server::Collections, payload_index_params::IndexParams,
    vectors_config, ChangeAliases, CollectionClusterInfoRequest, CollectionClusterInfoResponse,
    CollectionExistsRequest, CollectionExistsResponse, CollectionOperationResponse,
    CreateCollection, CreateShardKeyRequest, CreateShardKeyResponse, DeleteCollection,
    DeleteShardKeyRequest, DeleteShardKeyResponse, GetCollectionInfoRequest,
    GetCollectionInfoResponse, ListAliasesRequest, ListAliasesResponse,
    ListCollectionAliasesRequest, ListCollectionsRequest, ListCollectionsResponse,
    ListShardKeysRequest, ListShardKeysResponse, UpdateCollection,
    UpdateCollectionClusterSetupRequest, UpdateCollectionClusterSetupResponse,
};
use qdrant_edge::{
    Distance, EdgeConfig, EdgeVectorParams, PayloadIndexInfo, PayloadSchemaParams,
    PayloadSchemaType, DEFAULT_VECTOR_NAME,
};
use tonic::{Request, Response, Status};

use super::{elapsed, unimplemented, validate_collection_name, validate_vector_name, Api};
use crate::error::ApiError;

#[tonic::async_trait]
impl Collections for Api {
    async fn get(
        &self,
        request: Request<GetCollectionInfoRequest>,
    ) -> Result<Response<GetCollectionInfoResponse>, Status> {
        let start = Instant::now();
        let name = request.into_inner().collection_name;
        let info = self
            .blocking(move |state| {
                let collection = state.storage.get(&name)?;
                let created_at = collection.created_at;
                collection.with_shard(|shard| Ok(collection_info(shard, created_at)))
            })
            .await?;
        Ok(Response::new(GetCollectionInfoResponse {
            result: Some(info),
            time: elapsed(start),
        }))
    }

    async fn list(
        &self,
        _request: Request<ListCollectionsRequest>,
    ) -> Result<Response<ListCollectionsResponse>, Status> {
        let start = Instant::now();
        let names = self.blocking(|state| Ok(state.storage.names())).await?;
        Ok(Response::new(ListCollectionsResponse {
            collections: names
                .into_iter()
                .map(|name| grpc::CollectionDescription { name })
                .collect(),
            time: elapsed(start),
        }))
    }

    async fn create(
        &self,
        request: Request<CreateCollection>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        let start = Instant::now();
        let request = request.into_inner();
        validate_collection_name(&request.collection_name)?;
        let config = edge_config(&request)?;
        let name = request.collection_name;
        tracing::debug!(collection = %name, "create collection");
        self.blocking(move |state| state.storage.create(&name, config))
            .await?;
        Ok(Response::new(CollectionOperationResponse {
            result: true,
            time: elapsed(start),
        }))
    }

    async fn update(
        &self,
        _request: Request<UpdateCollection>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        Err(unimplemented("Collections/Update"))
    }

    async fn delete(
        &self,
        request: Request<DeleteCollection>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        let start = Instant::now();
        let name = request.into_inner().collection_name;
        validate_collection_name(&name)?;
        tracing::debug!(collection = %name, "delete collection");
        // A missing collection answers `false`, not an error, as a real Qdrant does.
        let result = self
            .blocking(move |state| state.storage.delete(&name))
            .await?;
        Ok(Response::new(CollectionOperationResponse {
            result,
            time: elapsed(start),
        }))
    }

    async fn update_aliases(
        &self,
        _request: Request<ChangeAliases>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        Err(unimplemented("Collections/UpdateAliases"))
    }

    async fn list_collection_aliases(
        &self,
        _request: Request<ListCollectionAliasesRequest>,
    ) -> Result<Response<ListAliasesResponse>, Status> {
        Err(unimplemented("Collections/ListCollectionAliases"))
    }

    async fn list_aliases(
        &self,
        _request: Request<ListAliasesRequest>,
    ) -> Result<Response<ListAliasesResponse>, Status> {
        Err(unimplemented("Collections/ListAliases"))
    }

    async fn collection_cluster_info(
        &self,
        _request: Request<CollectionClusterInfoRequest>,
    ) -> Result<Response<CollectionClusterInfoResponse>, Status> {
        Err(unimplemented("Collections/CollectionClusterInfo"))
    }

    async fn collection_exists(
        &self,
        request: Request<CollectionExistsRequest>,
    ) -> Result<Response<CollectionExistsResponse>, Status> {
        let start = Instant::now();
        let name = request.into_inner().collection_name;
        validate_collection_name(&name)?;
        let exists = self
            .blocking(move |state| Ok(state.storage.exists(&name)))
            .await?;
        Ok(Response::new(CollectionExistsResponse {
            result: Some(grpc::CollectionExists { exists }),
            time: elapsed(start),
        }))
    }

    async fn update_collection_cluster_setup(
        &self,
        _request: Request<UpdateCollectionClusterSetupRequest>,
    ) -> Result<Response<UpdateCollectionClusterSetupResponse>, Status> {
        Err(unimplemented("Collections/UpdateCollectionClusterSetup"))
    }

    async fn create_shard_key(
        &self,
        _request: Request<CreateShardKeyRequest>,
    ) -> Result<Response<CreateShardKeyResponse>, Status> {
        Err(unimplemented("Collections/CreateShardKey"))
    }

    async fn delete_shard_key(
        &self,
        _request: Request<DeleteShardKeyRequest>,
    ) -> Result<Response<DeleteShardKeyResponse>, Status> {
        Err(unimplemented("Collections/DeleteShardKey"))
    }

    async fn list_shard_keys(
        &self,
        _request: Request<ListShardKeysRequest>,
    ) -> Result<Response<ListShardKeysResponse>, Status> {
        Err(unimplemented("Collections/ListShardKeys"))
    }
}

/// Engine configuration for a create request. Only dense vectors are supported; payload always
/// lives on disk (mmap), because in-RAM payload storage preloads 32 MiB per collection.
fn edge_config(request: &CreateCollection) -> Result<EdgeConfig, ApiError> {
    if request
        .sparse_vectors_config
        .as_ref()
        .is_some_and(|sparse| !sparse.map.is_empty())
    {
        return Err(ApiError::Unsupported("Sparse vectors".to_owned()));
    }
    let params: Vec<(String, &grpc::VectorParams)> = match request
        .vectors_config
        .as_ref()
        .and_then(|v| v.config.as_ref())
    {
        Some(vectors_config::Config::Params(params)) => {
            vec![(DEFAULT_VECTOR_NAME.to_owned(), params)]
        }
        Some(vectors_config::Config::ParamsMap(map)) => {
            for name in map.map.keys() {
                validate_vector_name(name)?;
            }
            map.map.iter().map(|(name, p)| (name.clone(), p)).collect()
        }
        None => Vec::new(),
    };
    let mut vectors = HashMap::with_capacity(params.len());
    for (name, params) in params {
        if params.multivector_config.is_some() {
            return Err(ApiError::Unsupported("Multivectors".to_owned()));
        }
        if !(1..=65536).contains(&params.size) {
            return Err(ApiError::validation(
                "vectors_config.size",
                format!("value {} invalid, must be from 1 to 65536", params.size),
            ));
        }
        let distance = match grpc::Distance::try_from(params.distance) {
            Ok(grpc::Distance::Cosine) => Distance::Cosine,
            Ok(grpc::Distance::Euclid) => Distance::Euclid,
            Ok(grpc::Distance::Dot) => Distance::Dot,
            Ok(grpc::Distance::Manhattan) => Distance::Manhattan,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "Malformed distance parameter: {}",
                    params.distance
                )))
            }
        };
        vectors.insert(
            name,
            EdgeVectorParams {
                size: params.size as usize,
                distance,
                on_disk: None,
                multivector_config: None,
                datatype: None,
                quantization_config: None,
                hnsw_config: None,
            },
        );
    }
    Ok(EdgeConfig {
        on_disk_payload: true,
        vectors,
        ..EdgeConfig::default()
    })
}

/// Collection info: counts and payload schema are real, the tuning sections are Qdrant's
/// defaults (the engine keeps a plain, exact index).
fn collection_info(
    shard: &qdrant_edge::EdgeShard,
    created_at: std::time::SystemTime,
) -> grpc::CollectionInfo {
    let info = shard.info();
    let config = shard.config();
    let vector_params = |params: &EdgeVectorParams| grpc::VectorParams {
        size: params.size as u64,
        distance: match params.distance {
            Distance::Cosine => grpc::Distance::Cosine,
            Distance::Euclid => grpc::Distance::Euclid,
            Distance::Dot => grpc::Distance::Dot,
            Distance::Manhattan => grpc::Distance::Manhattan,
        } as i32,
        ..Default::default()
    };
    let vectors = match config.vectors.get(DEFAULT_VECTOR_NAME) {
        Some(params) if config.vectors.len() == 1 => {
            vectors_config::Config::Params(vector_params(params))
        }
        _ => vectors_config::Config::ParamsMap(grpc::VectorParamsMap {
            map: config
                .vectors
                .iter()
                .map(|(name, params)| (name.clone(), vector_params(params)))
                .collect(),
        }),
    };
    let created_at = created_at
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|since| prost_types_timestamp(since.as_secs(), since.subsec_nanos()));
    grpc::CollectionInfo {
        status: grpc::CollectionStatus::Green as i32,
        optimizer_status: Some(grpc::OptimizerStatus {
            ok: true,
            error: String::new(),
        }),
        segments_count: info.segments_count as u64,
        points_count: Some(info.points_count as u64),
        indexed_vectors_count: Some(info.indexed_vectors_count as u64),
        payload_schema: info
            .payload_schema
            .into_iter()
            .map(|(key, index)| (key.to_string(), payload_schema_info(index)))
            .collect(),
        config: Some(grpc::CollectionConfig {
            #[allow(deprecated)] // Still the field clients read.
            params: Some(grpc::CollectionParams {
                shard_number: 1,
                on_disk_payload: config.on_disk_payload,
                vectors_config: Some(grpc::VectorsConfig {
                    config: Some(vectors),
                }),
                replication_factor: Some(1),
                write_consistency_factor: Some(1),
                ..Default::default()
            }),
            hnsw_config: Some(grpc::HnswConfigDiff {
                m: Some(16),
                ef_construct: Some(100),
                full_scan_threshold: Some(10_000),
                ..Default::default()
            }),
            optimizer_config: Some(grpc::OptimizersConfigDiff {
                deleted_threshold: Some(0.2),
                vacuum_min_vector_number: Some(1000),
                default_segment_number: Some(0),
                flush_interval_sec: Some(5),
                ..Default::default()
            }),
            wal_config: Some(grpc::WalConfigDiff {
                wal_capacity_mb: Some(32),
                wal_segments_ahead: Some(0),
                wal_retain_closed: Some(1),
            }),
            ..Default::default()
        }),
        created_at,
        ..Default::default()
    }
}

fn prost_types_timestamp(seconds: u64, nanos: u32) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: seconds as i64,
        nanos: nanos as i32,
    }
}

fn payload_schema_info(index: PayloadIndexInfo) -> grpc::PayloadSchemaInfo {
    let data_type = match index.data_type {
        PayloadSchemaType::Keyword => grpc::PayloadSchemaType::Keyword,
        PayloadSchemaType::Integer => grpc::PayloadSchemaType::Integer,
        PayloadSchemaType::Float => grpc::PayloadSchemaType::Float,
        PayloadSchemaType::Geo => grpc::PayloadSchemaType::Geo,
        PayloadSchemaType::Text => grpc::PayloadSchemaType::Text,
        PayloadSchemaType::Bool => grpc::PayloadSchemaType::Bool,
        PayloadSchemaType::Datetime => grpc::PayloadSchemaType::Datetime,
        PayloadSchemaType::Uuid => grpc::PayloadSchemaType::Uuid,
    };
    let params = match index.params {
        #[allow(deprecated)] // `on_disk` is still what clients send and read.
        Some(PayloadSchemaParams::Keyword(keyword)) => Some(grpc::PayloadIndexParams {
            index_params: Some(IndexParams::KeywordIndexParams(grpc::KeywordIndexParams {
                is_tenant: keyword.is_tenant,
                on_disk: keyword.on_disk,
                ..Default::default()
            })),
        }),
        _ => None,
    };
    grpc::PayloadSchemaInfo {
        data_type: data_type as i32,
        params,
        points: Some(index.points as u64),
    }
}
