//! The gRPC services `qdrant-client` calls: `Collections`, `Points` and `Qdrant` (health).
//!
//! Every handler hands its engine work to `spawn_blocking`, because `qdrant-edge` calls block.
//! RPCs outside the supported set answer `Unimplemented`, naming the RPC.

mod collections;
mod health;
mod points;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use qdrant_edge::EdgeShard;
use tonic::Status;

use crate::error::ApiError;
use crate::storage::Storage;

/// Everything the handlers share.
pub(crate) struct State {
    pub(crate) storage: Storage,
    /// Stands in for the WAL operation number a real Qdrant reports per update.
    pub(crate) next_operation_id: AtomicU64,
    /// Refuse reads and deletes by filter of a tenant-scoped collection that pin no tenant
    /// ([`crate::Config::strict_tenants`]).
    pub(crate) strict_tenants: bool,
    /// The API key that exempts a request from the check ([`crate::Config::tenant_exempt_key`]).
    pub(crate) tenant_exempt_key: Option<String>,
}

/// Implements all three service traits over one shared [`State`].
#[derive(Clone)]
pub(crate) struct Api {
    state: Arc<State>,
}

impl Api {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self { state }
    }

    /// Run blocking engine work off the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&State) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, Status> {
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || work(&state))
            .await
            .map_err(|err| ApiError::Internal(format!("engine task failed: {err}")))?
            .map_err(Status::from)
    }

    /// Run blocking work against one collection's shard.
    async fn with_shard<T: Send + 'static>(
        &self,
        collection: String,
        work: impl FnOnce(&EdgeShard) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, Status> {
        self.blocking(move |state| state.storage.get(&collection)?.with_shard(work))
            .await
    }
}

impl Api {
    /// In strict-tenant mode, refuses a request on a collection with a tenant index
    /// (a keyword payload index with `is_tenant: true`) unless each of its filters has a `must`
    /// match on that field: the error reaches the caller, so the test fails at the line that
    /// forgot the filter.
    async fn check_tenancy<T: qdrant_tenancy::Tenancy>(
        &self,
        request: &tonic::Request<T>,
    ) -> Result<(), Status> {
        if !self.state.strict_tenants {
            return Ok(());
        }
        let key = request
            .metadata()
            .get("api-key")
            .and_then(|v| v.to_str().ok());
        if key.is_some() && key == self.state.tenant_exempt_key.as_deref() {
            return Ok(());
        }
        let request = request.get_ref();
        let collection = request.collection().to_owned();
        let fields = self
            .with_shard(collection, |shard| Ok(tenant_fields(shard)))
            .await?;
        for field in fields {
            if let Some(missing) = qdrant_tenancy::missing_tenant(request, &field) {
                return Err(Status::invalid_argument(format!(
                    "Wrong input: strict tenant mode: {missing}"
                )));
            }
        }
        Ok(())
    }
}

/// The fields of tenant indexes (keyword, `is_tenant: true`) of a shard.
fn tenant_fields(shard: &EdgeShard) -> Vec<String> {
    use qdrant_edge::PayloadSchemaParams;
    shard
        .info()
        .payload_schema
        .into_iter()
        .filter(|(_, index)| {
            matches!(&index.params, Some(PayloadSchemaParams::Keyword(keyword)) if keyword.is_tenant == Some(true))
        })
        .map(|(key, _)| key.to_string())
        .collect()
}

/// Seconds since `start`, for the `time` field of every response.
fn elapsed(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

fn unimplemented(rpc: &str) -> Status {
    Status::unimplemented(format!("{rpc} is not implemented by the embedded Qdrant"))
}

/// Collection names as Qdrant's request validator accepts them.
fn validate_collection_name(name: &str) -> Result<(), ApiError> {
    const FORBIDDEN: [char; 10] = ['<', '>', ':', '"', '/', '\\', '|', '?', '*', '\0'];
    let length = name.chars().count();
    if !(1..=255).contains(&length) {
        return Err(ApiError::validation(
            "collection_name",
            "must be from 1 to 255 characters",
        ));
    }
    if let Some(c) = name.chars().find(|c| FORBIDDEN.contains(c)) {
        return Err(ApiError::validation(
            "collection_name",
            format!("collection name cannot contain \"{c}\" char"),
        ));
    }
    Ok(())
}

/// Vector names become folder names in the engine (`vector_storage-{name}`), so only a safe,
/// single path component is accepted: Qdrant's own rules (at most 200 bytes, none of
/// `< > : " / \ | ? *`), and no control characters, `..` or empty name.
fn validate_vector_name(name: &str) -> Result<(), ApiError> {
    const MAX_BYTES: usize = 200;
    const FORBIDDEN: [char; 9] = ['<', '>', ':', '"', '/', '\\', '|', '?', '*'];
    if name.is_empty() {
        return Err(ApiError::BadInput("Vector name must not be empty".into()));
    }
    if name.len() > MAX_BYTES {
        return Err(ApiError::BadInput(format!(
            "Vector name must be at most {MAX_BYTES} bytes long, got {}",
            name.len()
        )));
    }
    if let Some(c) = name.chars().find(|c| FORBIDDEN.contains(c)) {
        return Err(ApiError::BadInput(format!(
            "Vector name {name:?} cannot contain \"{c}\" char"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::BadInput(format!(
            "Vector name {name:?} cannot contain control characters"
        )));
    }
    if name.contains("..") {
        return Err(ApiError::BadInput(format!(
            "Vector name {name:?} cannot contain \"..\""
        )));
    }
    Ok(())
}

/// `limit` must be at least 1, as Qdrant's validator words it.
fn validate_limit(limit: u64) -> Result<usize, ApiError> {
    if limit == 0 {
        return Err(ApiError::validation(
            "limit",
            "value 0 invalid, must be 1 or larger",
        ));
    }
    usize::try_from(limit).map_err(|_| ApiError::validation("limit", "value is too large"))
}
