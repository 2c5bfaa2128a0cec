//! The reference service bound to an environment: its worker pool on the environment's queue and
//! collection, and its router on an ephemeral port. Downstream services use the generic
//! [`TestEnv::spawn_worker`] and [`TestEnv::spawn_app`] instead.

use std::sync::Arc;

use service::api::{router, AppState};
use service::index::{Embedder, EmbedderConfig, Indexer};
use service::worker::{WorkerConfig, WorkerPool, WorkerPoolHandle};

use crate::app::TestApp;
use crate::env::TestEnv;
use crate::error::HarnessError;

impl TestEnv {
    /// The reference service's indexer on this environment's collection, with the process's
    /// shared embedder (loaded once from `QV_MODEL_DIR` / `ORT_DYLIB_PATH`, default `.assets/`).
    pub async fn service_indexer(&self) -> Result<Arc<Indexer>, HarnessError> {
        let embedder = Embedder::shared(&EmbedderConfig::from_env()).map_err(|e| {
            HarnessError::Config(format!(
                "loading the embedding model ({e}); run scripts/fetch-assets.sh"
            ))
        })?;
        let indexer = Indexer::new(self.qdrant_client(), self.collection(), embedder);
        indexer
            .ensure_collection()
            .await
            .map_err(|e| HarnessError::Qdrant {
                context: "preparing the service's collection",
                source: Box::new(e),
            })?;
        Ok(Arc::new(indexer))
    }

    /// The reference service's worker pool, bound to this environment's queue and collection.
    pub async fn spawn_service_worker(
        &self,
        indexer: Arc<Indexer>,
        config: WorkerConfig,
    ) -> Result<WorkerPoolHandle, HarnessError> {
        let waker = self.waker().await?;
        Ok(WorkerPool::new(self.queue().clone(), indexer, config).start(waker))
    }

    /// The reference service's router, bound to this environment, on an ephemeral port.
    pub async fn spawn_service_app(
        &self,
        indexer: Arc<Indexer>,
        admin_token: Option<String>,
    ) -> Result<TestApp, HarnessError> {
        let state = AppState::new(
            self.pool().clone(),
            self.queue().clone(),
            indexer,
            admin_token,
        );
        TestApp::serve(router(state)).await
    }
}
