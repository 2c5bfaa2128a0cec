//! Store: chunks and their vectors in one Qdrant collection shared by all projects.
//!
//! Projects are tenants of the collection (a keyword payload index on `project` with
//! `is_tenant`), as Qdrant recommends over a collection per project. Every read and every
//! delete is filtered by project, so projects never see each other's chunks.

use std::sync::Arc;

use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, Distance, FieldType, Filter, KeywordIndexParamsBuilder, PointId,
    PointStruct, QueryPointsBuilder, ScoredPoint, UpsertPointsBuilder, Value, VectorParamsBuilder,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::chunk::{Chunk, ChunkKind, Language};
use super::embed::EMBEDDING_DIM;

/// Payload field holding the project (the tenant key).
pub const PROJECT_FIELD: &str = "project";

/// Payload field holding the file path.
pub const PATH_FIELD: &str = "path";

/// Namespace of the UUIDv5 point ids (fixed: ids must stay stable across releases).
const POINT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6b1d_3c2e_8f4a_4d8b_9a57_2f0c_1e3d_5a79);

/// Points written per upsert request, well under the 32 MiB gRPC message limit.
const UPSERT_BATCH: usize = 256;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Qdrant refused a request or could not be reached.
    #[error("qdrant {operation} failed: {source}")]
    Qdrant {
        /// What was being done.
        operation: &'static str,
        /// The client's error.
        #[source]
        source: Box<QdrantError>,
    },
    /// A vector has the wrong number of dimensions.
    #[error("vector has {got} dimensions, the collection needs {EMBEDDING_DIM}")]
    WrongDimensions {
        /// Dimensions of the offending vector.
        got: usize,
    },
    /// The numbers of chunks and vectors differ.
    #[error("{chunks} chunks but {vectors} vectors")]
    CountMismatch {
        /// Number of chunks.
        chunks: usize,
        /// Number of vectors.
        vectors: usize,
    },
    /// A stored point's payload is not what this module writes.
    #[error("stored point has an unreadable payload: {0}")]
    BadPayload(String),
}

impl StoreError {
    /// Whether Qdrant could not be reached, timed out or shed load, rather than refusing the
    /// request: worth waiting for, not worth an attempt.
    pub fn is_outage(&self) -> bool {
        let StoreError::Qdrant { source, .. } = self else {
            return false;
        };
        match source.as_ref() {
            QdrantError::ResponseError { status } => match status.code() {
                tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Cancelled
                | tonic::Code::ResourceExhausted => true,
                // qdrant-client reports a connection it could not open as `Internal` with this
                // message (channel_pool.rs), and tonic a broken one as `Unknown`.
                tonic::Code::Internal => status.message().starts_with("Failed to connect to"),
                tonic::Code::Unknown => status.message().contains("transport error"),
                _ => false,
            },
            QdrantError::ResourceExhaustedError { .. } | QdrantError::Io(_) => true,
            _ => false,
        }
    }
}

/// Shorthand to wrap a client error with the operation it failed in.
fn qdrant(operation: &'static str) -> impl FnOnce(QdrantError) -> StoreError {
    move |source| StoreError::Qdrant {
        operation,
        source: Box::new(source),
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// Path of the file the chunk came from.
    pub path: String,
    /// Qualified symbol name, if the chunk is (part of) a definition.
    pub symbol: Option<String>,
    /// What the chunk is.
    pub kind: ChunkKind,
    /// Language of the file.
    pub language: Language,
    /// First line, 1-based.
    pub start_line: usize,
    /// Last line, 1-based and inclusive.
    pub end_line: usize,
    /// Cosine similarity to the query.
    pub score: f32,
    /// The chunk's text.
    pub content: String,
}

/// What each point carries besides its vector.
#[derive(Debug, Serialize, Deserialize)]
struct ChunkPayload {
    project: String,
    path: String,
    language: String,
    symbol: Option<String>,
    kind: String,
    start_byte: u64,
    end_byte: u64,
    start_line: u64,
    end_line: u64,
    content: String,
    content_hash: String,
}

/// A Qdrant collection holding chunks of many projects.
#[derive(Clone)]
pub struct Store {
    client: Arc<Qdrant>,
    collection: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("collection", &self.collection)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// A store over the named collection (created by [`Store::ensure_collection`]).
    pub fn new(client: Arc<Qdrant>, collection: impl Into<String>) -> Self {
        Self {
            client,
            collection: collection.into(),
        }
    }

    /// The collection's name.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// Creates the collection (384-dim cosine) and the tenant index on `project` if missing.
    pub async fn ensure_collection(&self) -> Result<(), StoreError> {
        let exists = self
            .client
            .collection_exists(&self.collection)
            .await
            .map_err(qdrant("collection_exists"))?;
        if !exists {
            let created = self
                .client
                .create_collection(
                    CreateCollectionBuilder::new(&self.collection).vectors_config(
                        VectorParamsBuilder::new(EMBEDDING_DIM as u64, Distance::Cosine),
                    ),
                )
                .await;
            if let Err(error) = created {
                // Another indexer may have created it in the meantime; that is fine.
                let exists_now = self
                    .client
                    .collection_exists(&self.collection)
                    .await
                    .map_err(qdrant("collection_exists"))?;
                if !exists_now {
                    return Err(qdrant("create_collection")(error));
                }
            }
        }
        // Creating an existing index again is accepted by Qdrant, so this is idempotent.
        self.client
            .create_field_index(
                CreateFieldIndexCollectionBuilder::new(
                    &self.collection,
                    PROJECT_FIELD,
                    FieldType::Keyword,
                )
                .field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true))
                .wait(true),
            )
            .await
            .map_err(qdrant("create_field_index"))?;
        Ok(())
    }

    /// Replaces a file's chunks: deletes every point of (project, path), then upserts the new ones.
    pub async fn replace_file(
        &self,
        project: &str,
        path: &str,
        chunks: &[Chunk],
        vectors: Vec<Vec<f32>>,
    ) -> Result<(), StoreError> {
        if chunks.len() != vectors.len() {
            return Err(StoreError::CountMismatch {
                chunks: chunks.len(),
                vectors: vectors.len(),
            });
        }
        if let Some(bad) = vectors.iter().find(|v| v.len() != EMBEDDING_DIM) {
            return Err(StoreError::WrongDimensions { got: bad.len() });
        }
        self.delete_file(project, path).await?;
        let points = chunks
            .iter()
            .zip(vectors)
            .map(|(chunk, vector)| point(project, chunk, vector))
            .collect::<Result<Vec<_>, _>>()?;
        for batch in points.chunks(UPSERT_BATCH) {
            self.client
                .upsert_points(
                    UpsertPointsBuilder::new(&self.collection, batch.to_vec()).wait(true),
                )
                .await
                .map_err(qdrant("upsert_points"))?;
        }
        Ok(())
    }

    /// Deletes every chunk of one file of a project.
    pub async fn delete_file(&self, project: &str, path: &str) -> Result<(), StoreError> {
        let filter = Filter::must([
            Condition::matches(PROJECT_FIELD, project.to_owned()),
            Condition::matches(PATH_FIELD, path.to_owned()),
        ]);
        self.client
            .delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(filter)
                    .wait(true),
            )
            .await
            .map_err(qdrant("delete_points"))?;
        Ok(())
    }

    /// Deletes every chunk of a project.
    pub async fn delete_project(&self, project: &str) -> Result<(), StoreError> {
        self.client
            .delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(project_filter(project))
                    .wait(true),
            )
            .await
            .map_err(qdrant("delete_points"))?;
        Ok(())
    }

    /// Number of chunks stored for a project.
    pub async fn count(&self, project: &str) -> Result<u64, StoreError> {
        let response = self
            .client
            .count(
                CountPointsBuilder::new(&self.collection)
                    .filter(project_filter(project))
                    .exact(true),
            )
            .await
            .map_err(qdrant("count"))?;
        Ok(response.result.map_or(0, |result| result.count))
    }

    /// The chunks of a project nearest to a query vector, best first.
    pub async fn search(
        &self,
        project: &str,
        vector: Vec<f32>,
        limit: u64,
    ) -> Result<Vec<SearchHit>, StoreError> {
        if vector.len() != EMBEDDING_DIM {
            return Err(StoreError::WrongDimensions { got: vector.len() });
        }
        let response = self
            .client
            .query(
                QueryPointsBuilder::new(&self.collection)
                    .query(vector)
                    .filter(project_filter(project))
                    .limit(limit)
                    .with_payload(true),
            )
            .await
            .map_err(qdrant("query"))?;
        response.result.into_iter().map(hit).collect()
    }
}

/// Filter matching one project's points.
fn project_filter(project: &str) -> Filter {
    Filter::must([Condition::matches(PROJECT_FIELD, project.to_owned())])
}

/// Deterministic point id: the same chunk of the same file in the same project keeps its id.
pub fn point_id(project: &str, chunk: &Chunk) -> Uuid {
    // NUL separators: no field can contain one (paths are validated, hashes are hex).
    let name = format!(
        "{project}\0{}\0{}-{}\0{}",
        chunk.path, chunk.byte_range.start, chunk.byte_range.end, chunk.content_hash
    );
    Uuid::new_v5(&POINT_ID_NAMESPACE, name.as_bytes())
}

/// Builds the point for one chunk.
fn point(project: &str, chunk: &Chunk, vector: Vec<f32>) -> Result<PointStruct, StoreError> {
    let payload = ChunkPayload {
        project: project.to_owned(),
        path: chunk.path.clone(),
        language: chunk.language.as_str().to_owned(),
        symbol: chunk.symbol.clone(),
        kind: chunk.kind.as_str().to_owned(),
        start_byte: chunk.byte_range.start as u64,
        end_byte: chunk.byte_range.end as u64,
        start_line: chunk.start_line as u64,
        end_line: chunk.end_line as u64,
        content: chunk.content.clone(),
        content_hash: chunk.content_hash.clone(),
    };
    let json = serde_json::to_value(&payload).map_err(|e| StoreError::BadPayload(e.to_string()))?;
    let payload = Payload::try_from(json).map_err(|e| StoreError::BadPayload(e.to_string()))?;
    let id = PointId::from(point_id(project, chunk).to_string());
    Ok(PointStruct::new(id, vector, payload))
}

/// Reads a search result back from its payload.
fn hit(point: ScoredPoint) -> Result<SearchHit, StoreError> {
    let json: serde_json::Map<String, serde_json::Value> = point
        .payload
        .into_iter()
        .map(|(key, value): (String, Value)| (key, value.into_json()))
        .collect();
    let payload: ChunkPayload = serde_json::from_value(serde_json::Value::Object(json))
        .map_err(|e| StoreError::BadPayload(e.to_string()))?;
    let kind = ChunkKind::parse(&payload.kind)
        .ok_or_else(|| StoreError::BadPayload(format!("unknown kind {:?}", payload.kind)))?;
    let language = Language::parse(&payload.language).ok_or_else(|| {
        StoreError::BadPayload(format!("unknown language {:?}", payload.language))
    })?;
    Ok(SearchHit {
        path: payload.path,
        symbol: payload.symbol,
        kind,
        language,
        start_line: usize::try_from(payload.start_line).unwrap_or(usize::MAX),
        end_line: usize::try_from(payload.end_line).unwrap_or(usize::MAX),
        score: point.score,
        content: payload.content,
    })
}
