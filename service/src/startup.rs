//! Building and running the service: [`Application::build`] wires everything from [`Settings`]
//! (binds the listener, so port 0 works), [`Application::run_until_stopped`] serves the API and
//! runs the worker pool until SIGINT/SIGTERM (or [`Application::shutdown_token`]), then shuts
//! down gracefully. `main` and the tests go through this same builder.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use qdrant_client::Qdrant;
use queue::db::DbError;
use queue::worker::{ShutdownReport, Worker};
use queue::{Queue, QueueError, QueueId, QueueWaker};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState, Limits};
use crate::configuration::{redact_url, Settings};
use crate::index::{EmbedError, Embedder, IndexError, Indexer};
use crate::metrics::Metrics;
use crate::worker::IndexHandler;

/// Why the service could not start or stopped abnormally; each names what to set or run.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// PostgreSQL could not be reached, created or migrated.
    #[error(
        "PostgreSQL at {url} is not usable; start PostgreSQL on 127.0.0.1:5432 or set DATABASE_URL"
    )]
    Database {
        /// The URL, password redacted.
        url: String,
        /// The cause.
        #[source]
        source: DbError,
    },
    /// The queue id is not valid, or its wake-up listener could not connect.
    #[error("queue setup failed (check QUEUE_ID): {0}")]
    Queue(#[from] QueueError),
    /// The embedded Qdrant could not start.
    #[error("embedded Qdrant could not start with data in {data_dir}: {reason}; set QDRANT_DATA_DIR, or QDRANT_URL to use a Qdrant server")]
    EmbeddedQdrant {
        /// Its data folder.
        data_dir: String,
        /// The cause.
        reason: String,
    },
    /// The Qdrant client could not be built or the collection not created.
    #[error("Qdrant at {url} is not usable ({reason}); check QDRANT_URL (gRPC, port 6334) or unset it for the embedded Qdrant")]
    Qdrant {
        /// Where.
        url: String,
        /// The cause.
        reason: String,
    },
    /// The model or ONNX Runtime is missing or unusable.
    #[error("embedding model not usable; run scripts/fetch-assets.sh or set QV_MODEL_DIR/ORT_DYLIB_PATH")]
    Model(#[source] EmbedError),
    /// The listener could not be bound.
    #[error("could not listen on {address}; set PORT/HOST (port 0 picks a free one)")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed while running.
    #[error("HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// A built service: bound listener, state, worker pool; not serving until
/// [`Application::run_until_stopped`].
pub struct Application {
    port: u16,
    address: SocketAddr,
    listener: TcpListener,
    state: AppState,
    workers: Option<Worker<IndexHandler>>,
    waker: Arc<QueueWaker>,
    shutdown: CancellationToken,
    shutdown_timeout: Duration,
    embedded_qdrant: Option<qdrant_embedded::ServerHandle>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("address", &self.address)
            .field("queue_id", self.state.queue.id())
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects to PostgreSQL (creating and migrating the database), Qdrant (starting the
    /// embedded one when `QDRANT_URL` is unset) and loads the model; binds the listener.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let pool = connect_database(&settings).await?;
        let (qdrant_url, embedded_qdrant) = match &settings.qdrant.url {
            Some(url) => (url.clone(), None),
            None => {
                let server = start_embedded_qdrant(&settings).await?;
                (server.url(), Some(server))
            }
        };
        // The client's version check blocks the calling thread while it waits for the server:
        // on a current-thread runtime serving the embedded Qdrant it would stall for its full
        // timeout. `/readyz` checks Qdrant instead.
        let client = Qdrant::from_url(&qdrant_url)
            .skip_compatibility_check()
            .build()
            .map_err(|error| StartupError::Qdrant {
                url: qdrant_url.clone(),
                reason: error.to_string(),
            })?;
        let embedder_config = settings.embedding.embedder_config();
        let embedder = tokio::task::spawn_blocking(move || Embedder::shared(&embedder_config))
            .await
            .map_err(|error| StartupError::Model(EmbedError::Task(error.to_string())))?
            .map_err(StartupError::Model)?;
        let indexer = Arc::new(Indexer::new(
            Arc::new(client),
            settings.qdrant.collection.clone(),
            embedder,
        ));
        indexer
            .ensure_collection()
            .await
            .map_err(|error: IndexError| StartupError::Qdrant {
                url: qdrant_url.clone(),
                reason: error.to_string(),
            })?;

        let queue = Queue::new(pool.clone(), QueueId::new(settings.queue.queue_id.clone())?)
            .with_config(settings.queue.queue_config());
        let waker = Arc::new(QueueWaker::start(&pool).await?);
        let metrics = Arc::new(Metrics::default());
        let shutdown_timeout = settings.server.shutdown_timeout();
        let workers = (settings.worker.concurrency > 0).then(|| {
            let config = settings
                .worker
                .worker_config(&settings.queue, shutdown_timeout);
            let handler = IndexHandler::new(
                indexer.clone(),
                &queue,
                settings.worker.index_config(&settings.repository),
            )
            .with_metrics(metrics.clone());
            Worker::new(queue.clone(), handler, config)
        });
        let limits = Limits {
            max_files_per_request: settings.server.max_files_per_request,
            body_limit_bytes: settings.server.body_limit_bytes,
            intake_max_bytes: settings.server.intake_max_bytes,
            request_timeout: settings.server.request_timeout(),
            max_attempts: settings.queue.max_attempts.max(1),
        };
        let admin_token = settings
            .admin_token
            .as_ref()
            .map(|token| token.expose_secret().to_owned());
        let api_token = settings
            .api_token
            .as_ref()
            .map(|token| token.expose_secret().to_owned());
        let mut state = AppState::new(pool, queue, indexer, admin_token)
            .with_api_token(api_token)
            .with_repository_policy(settings.repository.policy())
            .with_metrics(metrics)
            .with_limits(limits);
        if let Some(workers) = &workers {
            state = state.with_workers(workers.clone());
        }

        let requested = settings.server.address();
        let listener = TcpListener::bind(requested)
            .await
            .map_err(|source| StartupError::Bind {
                address: requested,
                source,
            })?;
        let address = listener.local_addr().map_err(|source| StartupError::Bind {
            address: requested,
            source,
        })?;
        Ok(Self {
            port: address.port(),
            address,
            listener,
            state,
            workers,
            waker,
            shutdown: CancellationToken::new(),
            shutdown_timeout,
            embedded_qdrant,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address actually bound.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The state the handlers get (pool, queue, indexer).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The worker pool, unless the service runs without workers.
    pub fn workers(&self) -> Option<&Worker<IndexHandler>> {
        self.workers.as_ref()
    }

    /// Cancelling this token stops the service as SIGTERM does.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves the API and runs the workers until SIGINT, SIGTERM or the shutdown token; then
    /// stops accepting requests, lets in-flight ones finish, stops claiming, waits for rows in
    /// flight up to the shutdown timeout and releases the leases of the rest.
    pub async fn run_until_stopped(self) -> Result<ShutdownReport, StartupError> {
        let shutdown = self.shutdown.clone();
        let signals = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                tokio::select! {
                    () = wait_for_signal() => {
                        tracing::info!("shutdown signal received");
                        shutdown.cancel();
                    }
                    () = shutdown.cancelled() => {}
                }
            }
        });
        let workers = self
            .workers
            .as_ref()
            .map(|worker| worker.start(self.waker.clone()));
        // Workers stop claiming the moment shutdown begins, not once HTTP has drained: rows
        // claimed now would only be released again.
        if let Some(switch) = workers.as_ref().map(|handle| handle.claim_switch()) {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                shutdown.cancelled().await;
                switch.cancel();
            });
        }
        tracing::info!(address = %self.address, queue_id = %self.state.queue.id(), "service listening");
        let served = axum::serve(self.listener, api::router(self.state.clone()))
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await;
        // The server may also end on its own (an error): stop everything else then too.
        shutdown.cancel();
        let report = match workers {
            Some(handle) => handle.shutdown_within(self.shutdown_timeout).await,
            None => ShutdownReport::default(),
        };
        let _ = signals.await;
        // The waker's LISTEN connection goes before the pool closes under it.
        drop(self.waker);
        if let Some(server) = self.embedded_qdrant {
            server.stop().await;
        }
        self.state.pool.close().await;
        served.map_err(StartupError::Serve)?;
        tracing::info!("service stopped");
        Ok(report)
    }
}

/// Creates (if missing), connects and migrates the database.
pub async fn connect_database(settings: &Settings) -> Result<PgPool, StartupError> {
    let url = settings.database.url.expose_secret();
    let wrap = |source| StartupError::Database {
        url: redact_url(url),
        source,
    };
    queue::db::ensure_database(url).await.map_err(wrap)?;
    let pool = queue::db::connect(
        url,
        settings.database.max_connections.max(1),
        Duration::from_secs(settings.database.acquire_timeout_secs.max(1)),
    )
    .await
    .map_err(wrap)?;
    crate::db::migrate(&pool).await.map_err(wrap)?;
    Ok(pool)
}

async fn start_embedded_qdrant(
    settings: &Settings,
) -> Result<qdrant_embedded::ServerHandle, StartupError> {
    let data_dir = settings.qdrant.data_dir.clone();
    let error = |reason: String| StartupError::EmbeddedQdrant {
        data_dir: data_dir.display().to_string(),
        reason,
    };
    std::fs::create_dir_all(&data_dir).map_err(|e| error(e.to_string()))?;
    let config = qdrant_embedded::Config::default().with_data_dir(data_dir.clone());
    let server = qdrant_embedded::start(config)
        .await
        .map_err(|e| error(e.to_string()))?;
    tracing::info!(url = %server.url(), data_dir = %data_dir.display(), "embedded Qdrant started");
    Ok(server)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
