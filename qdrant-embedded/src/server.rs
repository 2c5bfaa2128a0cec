//! Starting and stopping a server: bind, serve the gRPC services, shut down gracefully.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use qdrant_client::qdrant::{
    collections_server::CollectionsServer, points_server::PointsServer, qdrant_server::QdrantServer,
};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt;

use crate::error::StartError;
use crate::service::{Api, State};
use crate::storage::Storage;
use crate::{Config, MAX_MESSAGE_SIZE};

/// A running server. Dropping it begins a graceful shutdown in the background;
/// [`ServerHandle::stop`] also waits until every collection is flushed and closed.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    data_dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// gRPC endpoint for `qdrant_client::Qdrant::from_url`, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address actually bound (useful when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the collections live.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stop serving, let in-flight requests finish, then flush and close every collection.
    /// Once this returns, the data directory can be reopened by another server.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            if let Err(err) = task.await {
                tracing::error!(error = %err, "embedded Qdrant task failed");
            }
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Owns what must outlive the server: closes the collections before the temporary directory
/// goes, whether the server task ends normally or is dropped with its runtime.
struct Resources {
    state: Arc<State>,
    temp_dir: Option<TempDir>,
}

impl Drop for Resources {
    fn drop(&mut self) {
        self.state.storage.close_all();
        // Explicit, so the directory is removed only after the shards are closed.
        drop(self.temp_dir.take());
    }
}

/// Start a server as configured: open (or create) the data directory, reopen its collections
/// and serve on the listen address. Must be called inside a Tokio runtime.
pub async fn start(config: Config) -> Result<ServerHandle, StartError> {
    let wal_capacity = config.wal_capacity_bytes();
    let (temp_dir, data_dir) = match config.data_dir {
        Some(dir) => (None, dir),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("qdrant-embedded-")
                .tempdir()
                .map_err(|source| StartError::DataDir {
                    path: std::env::temp_dir(),
                    source,
                })?;
            let path = temp.path().to_owned();
            (Some(temp), path)
        }
    };
    let storage = {
        let data_dir = data_dir.clone();
        tokio::task::spawn_blocking(move || Storage::open(&data_dir, wal_capacity))
            .await
            .map_err(|err| StartError::OpenCollection {
                path: PathBuf::new(),
                message: err.to_string(),
            })??
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let state = Arc::new(State {
        storage,
        next_operation_id: AtomicU64::new(0),
        strict_tenants: config.strict_tenants,
        tenant_exempt_key: config.tenant_exempt_key.clone(),
    });
    let resources = Resources {
        state: Arc::clone(&state),
        temp_dir,
    };
    let api = Api::new(state);
    let router = tonic::transport::Server::builder()
        .add_service(
            CollectionsServer::new(api.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        )
        .add_service(
            PointsServer::new(api.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        )
        .add_service(
            QdrantServer::new(api)
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        );
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    tracing::info!(%addr, data_dir = %data_dir.display(), "embedded Qdrant listening");
    let task = tokio::spawn(async move {
        // serve_with_incoming ignores the builder's tcp_nodelay: without it, Nagle's algorithm
        // and delayed ACKs add ~40 ms to small request/response exchanges.
        let incoming = TcpListenerStream::new(listener).map(|stream| {
            if let Ok(stream) = &stream {
                if let Err(err) = stream.set_nodelay(true) {
                    tracing::debug!(error = %err, "could not disable Nagle's algorithm");
                }
            }
            stream
        });
        let shutdown = async {
            // A dropped sender also means stop.
            let _ = shutdown_rx.await;
        };
        if let Err(err) = router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
        {
            tracing::error!(error = %err, "embedded Qdrant stopped with an error");
        }
        // Closing flushes to disk: keep it off the async worker threads.
        let closed = tokio::task::spawn_blocking(move || drop(resources)).await;
        if let Err(err) = closed {
            tracing::error!(error = %err, "closing collections failed");
        }
        tracing::info!(%addr, "embedded Qdrant stopped");
    });
    Ok(ServerHandle {
        addr,
        data_dir,
        shutdown: Some(shutdown_tx),
        task: Some(task),
    })
}
