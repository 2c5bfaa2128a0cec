//! `TestIndex`: an indexer over a harness environment's own collection (deleted when the test
//! ends), plus fixture helpers.

use std::path::{Path, PathBuf};

use harness::{CollectionMode, TestEnv};
use service::index::{Embedder, EmbedderConfig, Indexer};

/// The process-wide embedder with the real model (loaded once per test process).
pub fn embedder() -> anyhow::Result<Embedder> {
    Ok(Embedder::shared(&EmbedderConfig::from_env())?)
}

/// An indexer over a collection of the test's own.
pub struct TestIndex {
    pub indexer: Indexer,
    env: TestEnv,
}

impl TestIndex {
    /// A harness environment with a collection of its own (tests here store several projects,
    /// so the whole collection goes at the end), and an indexer over it.
    pub async fn start() -> anyhow::Result<Self> {
        let embedder = embedder()?;
        let env = TestEnv::builder(harness::current_test_name())
            .collection_mode(CollectionMode::PerTest)
            .build()
            .await?;
        let indexer = Indexer::new(env.qdrant_client(), env.collection(), embedder);
        indexer.ensure_collection().await?;
        Ok(Self { indexer, env })
    }

    /// A project name no other test uses.
    pub fn project(&self, label: &str) -> String {
        format!("{}-{label}", self.env.project())
    }

    /// Cleans up (the environment deletes its collection).
    pub async fn finish(self) -> anyhow::Result<()> {
        Ok(self.env.finish().await?)
    }
}

/// The fixtures folder.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Reads one fixture.
pub fn fixture(name: &str) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(fixtures_dir().join(name))?)
}
