//! Any axum `Router` served on an ephemeral port, with a client pointed at it.

use tokio_util::sync::CancellationToken;

use crate::error::HarnessError;

/// A live app: its address and a client; the server stops on drop.
#[derive(Debug)]
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The port the server listens on.
    pub port: u16,
    /// A client for the app.
    pub client: reqwest::Client,
    stop: CancellationToken,
}

impl TestApp {
    /// Serves `router` on 127.0.0.1 at an ephemeral port.
    pub async fn serve(router: axum::Router) -> Result<Self, HarnessError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(HarnessError::App)?;
        let port = listener.local_addr().map_err(HarnessError::App)?.port();
        let stop = CancellationToken::new();
        let shutdown = stop.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await;
            if let Err(err) = served {
                tracing::warn!(error = %err, "test app server stopped with an error");
            }
        });
        Ok(Self {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client: reqwest::Client::new(),
            stop,
        })
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        self.client.get(self.url(path)).send().await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json<T: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        body: &T,
    ) -> reqwest::Result<reqwest::Response> {
        self.client.post(self.url(path)).json(body).send().await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
