//! Where PostgreSQL and Qdrant come from: given URLs (CI services, staging), an embedded Qdrant
//! started once per test process, or containers for users with Docker.

use crate::error::HarnessError;

/// The PostgreSQL a test environment uses.
#[derive(Clone, Debug)]
pub enum PostgresBackend {
    /// A server at this URL (`DATABASE_URL`, else the local default).
    Url(String),
    /// A `postgres` container shared by the test process (feature `testcontainers`, needs Docker).
    #[cfg(feature = "testcontainers")]
    Container,
}

/// The Qdrant a test environment uses.
#[derive(Clone, Debug)]
pub enum QdrantBackend {
    /// A server at this gRPC URL (`QDRANT_URL`): a real Qdrant, or one shared embedded server
    /// for the whole test run.
    Url(String),
    /// An embedded Qdrant started once per test process, on its own thread (feature
    /// `embedded-qdrant`; without it, a clear error asks for `QDRANT_URL`).
    EmbeddedPerProcess,
    /// A `qdrant/qdrant` container shared by the test process (feature `testcontainers`).
    #[cfg(feature = "testcontainers")]
    Container,
}

impl PostgresBackend {
    /// `DATABASE_URL`, else `postgres://postgres@127.0.0.1:5432/queue_vector?sslmode=disable`.
    pub fn from_env() -> Self {
        PostgresBackend::Url(queue::db::database_url_from_env())
    }

    pub(crate) async fn url(&self) -> Result<String, HarnessError> {
        match self {
            PostgresBackend::Url(url) => Ok(url.clone()),
            #[cfg(feature = "testcontainers")]
            PostgresBackend::Container => containers::postgres_url(),
        }
    }
}

impl QdrantBackend {
    /// `QDRANT_URL` when set, else an embedded server per test process.
    pub fn from_env() -> Self {
        match std::env::var("QDRANT_URL") {
            Ok(url) if !url.trim().is_empty() => QdrantBackend::Url(url),
            _ => QdrantBackend::EmbeddedPerProcess,
        }
    }

    pub(crate) async fn url(&self) -> Result<String, HarnessError> {
        match self {
            QdrantBackend::Url(url) => Ok(url.clone()),
            QdrantBackend::EmbeddedPerProcess => embedded_url(),
            #[cfg(feature = "testcontainers")]
            QdrantBackend::Container => containers::qdrant_url(),
        }
    }
}

/// Without the `embedded-qdrant` feature there is no Qdrant to start.
#[cfg(not(feature = "embedded-qdrant"))]
fn embedded_url() -> Result<String, HarnessError> {
    Err(HarnessError::Config(
        "QDRANT_URL is not set: point it at a Qdrant (gRPC, e.g. http://127.0.0.1:6334), run the \
         tests under nextest with the shared Qdrant setup script (docs/harness.md), or enable \
         the harness's `embedded-qdrant` feature"
            .into(),
    ))
}

/// Starts the process's embedded Qdrant, once, on a thread of its own.
#[cfg(feature = "embedded-qdrant")]
fn embedded_url() -> Result<String, HarnessError> {
    static URL: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        on_own_thread("embedded-qdrant", || async {
            let handle = qdrant_embedded::start(qdrant_embedded::Config::default())
                .await
                .map_err(|e| e.to_string())?;
            Ok((
                handle.url(),
                Box::new(handle) as Box<dyn std::any::Any + Send>,
            ))
        })
    })
    .clone()
    .map_err(|e| HarnessError::Qdrant {
        context: "starting the embedded server",
        source: e.into(),
    })
}

#[cfg_attr(
    not(any(feature = "embedded-qdrant", feature = "testcontainers")),
    allow(dead_code)
)]
/// Runs `start` on a thread and runtime of its own and keeps what it returns alive until the
/// process exits, so a server or container outlives the runtime of the test that started it
/// (under `cargo test` many tests share the process). Returns the URL `start` gave.
fn on_own_thread<F, Fut>(name: &str, start: F) -> Result<String, String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(String, Box<dyn std::any::Any + Send>), String>>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = name.to_owned();
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            runtime.block_on(async move {
                match start().await {
                    Ok((url, keep)) => {
                        let _ = tx.send(Ok(url));
                        std::future::pending::<()>().await;
                        drop(keep);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        });
    match spawned {
        Ok(_) => rx
            .recv()
            .unwrap_or_else(|_| Err(format!("the {thread} thread died"))),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(feature = "testcontainers")]
mod containers {
    //! Containers live on a thread and runtime of their own for the whole test process; the
    //! testcontainers reaper removes them when the process ends.

    use std::sync::OnceLock;

    use testcontainers::core::{IntoContainerPort, WaitFor};
    use testcontainers::runners::AsyncRunner;
    use testcontainers::{GenericImage, ImageExt};
    use testcontainers_modules::postgres::Postgres;

    use super::on_own_thread;
    use crate::error::HarnessError;

    pub(super) fn postgres_url() -> Result<String, HarnessError> {
        static URL: OnceLock<Result<String, String>> = OnceLock::new();
        URL.get_or_init(|| {
            on_own_thread("postgres-container", || async {
                let container = Postgres::default()
                    .start()
                    .await
                    .map_err(|e| e.to_string())?;
                let host = container.get_host().await.map_err(|e| e.to_string())?;
                let port = container
                    .get_host_port_ipv4(5432)
                    .await
                    .map_err(|e| e.to_string())?;
                let url = format!("postgres://postgres:postgres@{host}:{port}/postgres");
                Ok((url, Box::new(container) as Box<dyn std::any::Any + Send>))
            })
        })
        .clone()
        .map_err(|e| HarnessError::Postgres {
            context: "starting the postgres container (is Docker running?)",
            source: e.into(),
        })
    }

    pub(super) fn qdrant_url() -> Result<String, HarnessError> {
        static URL: OnceLock<Result<String, String>> = OnceLock::new();
        URL.get_or_init(|| {
            on_own_thread("qdrant-container", || async {
                // No Qdrant module exists in testcontainers-modules: a generic image, ready when
                // its log says the gRPC port listens.
                let container = GenericImage::new("qdrant/qdrant", "latest")
                    .with_exposed_port(6334.tcp())
                    .with_wait_for(WaitFor::message_on_stdout("gRPC listening"))
                    .with_env_var("QDRANT__TELEMETRY_DISABLED", "true")
                    .start()
                    .await
                    .map_err(|e| e.to_string())?;
                let host = container.get_host().await.map_err(|e| e.to_string())?;
                let port = container
                    .get_host_port_ipv4(6334)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok((
                    format!("http://{host}:{port}"),
                    Box::new(container) as Box<dyn std::any::Any + Send>,
                ))
            })
        })
        .clone()
        .map_err(|e| HarnessError::Qdrant {
            context: "starting the qdrant container (is Docker running?)",
            source: e.into(),
        })
    }
}
