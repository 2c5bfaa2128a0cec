//! Fixture: a Qdrant to talk to, uniquely named collections (deleted when the fixture drops,
//! so runs sharing one server never collide), and small builders for points.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use qdrant_client::qdrant::{
    CreateCollectionBuilder, Distance, PointStruct, UpsertPointsBuilder, VectorParamsBuilder,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use qdrant_embedded::{Config, ServerHandle};
use serde_json::Value as Json;

pub type TestResult = anyhow::Result<()>;

/// A client plus, unless `QDRANT_URL` is set, the embedded server it talks to.
pub struct TestQdrant {
    pub client: Qdrant,
    url: String,
    collections: Mutex<Vec<String>>,
    /// Declared last: dropped after `Drop::drop` has deleted the collections.
    _server: Option<ServerHandle>,
}

impl TestQdrant {
    pub async fn start() -> anyhow::Result<Self> {
        init_tracing();
        let (url, server) = match std::env::var("QDRANT_URL") {
            Ok(url) if !url.trim().is_empty() => (url, None),
            _ => {
                let server = qdrant_embedded::start(Config::default()).await?;
                (server.url(), Some(server))
            }
        };
        let client = Qdrant::from_url(&url).build()?;
        Ok(Self {
            client,
            url,
            collections: Mutex::new(Vec::new()),
            _server: server,
        })
    }

    /// A collection name no other test (or concurrent run) uses; deleted on drop.
    pub fn unique_name(&self, label: &str) -> String {
        let name = format!("conformance_{label}_{}", uuid::Uuid::new_v4().simple());
        self.collections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(name.clone());
        name
    }

    /// Create a uniquely named collection with one unnamed dense vector.
    pub async fn collection(
        &self,
        label: &str,
        size: u64,
        distance: Distance,
    ) -> anyhow::Result<String> {
        let name = self.unique_name(label);
        self.client
            .create_collection(
                CreateCollectionBuilder::new(&name)
                    .vectors_config(VectorParamsBuilder::new(size, distance)),
            )
            .await?;
        Ok(name)
    }

    /// Upsert points and wait until they are applied.
    pub async fn upsert(&self, collection: &str, points: Vec<PointStruct>) -> TestResult {
        self.client
            .upsert_points(UpsertPointsBuilder::new(collection, points).wait(true))
            .await?;
        Ok(())
    }
}

impl Drop for TestQdrant {
    fn drop(&mut self) {
        let names = std::mem::take(
            &mut *self
                .collections
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if names.is_empty() {
            return;
        }
        // Drop cannot await and the test's own runtime is blocked here, so a fresh runtime on
        // another thread deletes the collections (tests use the multi-thread runtime, so an
        // embedded server keeps serving meanwhile).
        let url = self.url.clone();
        let cleanup = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let client = Qdrant::from_url(&url).skip_compatibility_check().build()?;
                for name in names {
                    client.delete_collection(name).await?;
                }
                Ok(())
            })
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("failed to delete test collections: {err:#}"),
            Err(_) => eprintln!("collection cleanup thread panicked"),
        }
    }
}

/// Poll `check` until it holds; the only place the suite waits on time.
pub async fn wait_until<F, Fut>(what: &str, mut check: F) -> TestResult
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if check().await? {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The gRPC status of a call that must fail.
pub fn status_of<T: std::fmt::Debug>(
    result: Result<T, QdrantError>,
) -> anyhow::Result<tonic::Status> {
    match result {
        Err(QdrantError::ResponseError { status }) => Ok(status),
        Err(other) => anyhow::bail!("expected a gRPC error status, got {other}"),
        Ok(value) => anyhow::bail!("expected an error, got {value:?}"),
    }
}

pub fn payload(json: Json) -> anyhow::Result<Payload> {
    Ok(Payload::try_from(json)?)
}

/// A point with a payload given as JSON.
pub fn point(
    id: impl Into<qdrant_client::qdrant::PointId>,
    vector: Vec<f32>,
    json: Json,
) -> anyhow::Result<PointStruct> {
    Ok(PointStruct::new(id, vector, payload(json)?))
}

/// A payload read back as JSON, for whole-value comparisons.
pub fn json_of(payload: std::collections::HashMap<String, qdrant_client::qdrant::Value>) -> Json {
    Json::from(Payload::from(payload))
}

/// Numeric point ids of a result, sorted.
pub fn num_ids<'a>(
    ids: impl IntoIterator<Item = Option<&'a qdrant_client::qdrant::PointId>>,
) -> Vec<u64> {
    use qdrant_client::qdrant::point_id::PointIdOptions;
    let mut out: Vec<u64> = ids
        .into_iter()
        .filter_map(|id| match id.and_then(|id| id.point_id_options.as_ref()) {
            Some(PointIdOptions::Num(num)) => Some(*num),
            _ => None,
        })
        .collect();
    out.sort_unstable();
    out
}

fn init_tracing() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}
