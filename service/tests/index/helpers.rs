//! Fixture: a Qdrant, a uniquely named collection and an indexer over it, plus file helpers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use qdrant_client::Qdrant;
use qdrant_embedded::{Config, ServerHandle};
use service::index::{Embedder, EmbedderConfig, Indexer};

/// Result of a test.
pub type TestResult = anyhow::Result<()>;

/// The process-wide embedder with the real model (loaded once per test process).
pub fn embedder() -> anyhow::Result<Embedder> {
    init_tracing();
    Ok(Embedder::shared(&EmbedderConfig::from_env())?)
}

/// An indexer over its own collection in the embedded Qdrant (or the one at `QDRANT_URL`).
pub struct TestIndex {
    pub indexer: Indexer,
    pub client: Arc<Qdrant>,
    pub collection: String,
    /// Kept alive for the test's duration; `None` when `QDRANT_URL` points elsewhere.
    server: Option<ServerHandle>,
}

impl TestIndex {
    /// Starts Qdrant if needed and creates a collection no other test uses.
    pub async fn start() -> anyhow::Result<Self> {
        let embedder = embedder()?;
        let (url, server) = match std::env::var("QDRANT_URL") {
            Ok(url) if !url.trim().is_empty() => (url, None),
            _ => {
                let server = qdrant_embedded::start(Config::default()).await?;
                (server.url(), Some(server))
            }
        };
        let client = Arc::new(Qdrant::from_url(&url).build()?);
        let collection = format!("t_index_{}", uuid::Uuid::new_v4().simple());
        let indexer = Indexer::new(Arc::clone(&client), collection.clone(), embedder);
        indexer.ensure_collection().await?;
        Ok(Self {
            indexer,
            client,
            collection,
            server,
        })
    }

    /// Deletes the collection and stops the embedded server.
    pub async fn finish(self) -> TestResult {
        self.client.delete_collection(&self.collection).await?;
        if let Some(server) = self.server {
            server.stop().await;
        }
        Ok(())
    }
}

/// A unique project name, so nothing depends on what other tests stored.
pub fn project(label: &str) -> String {
    format!("{label}-{}", uuid::Uuid::new_v4().simple())
}

/// The fixtures folder.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Reads one fixture.
pub fn fixture(name: &str) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(fixtures_dir().join(name))?)
}

/// Logs to the test output when `TEST_LOG` is set.
fn init_tracing() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}
