//! Tiny TCP servers for repository tests: one that accepts and never answers (git must be
//! killed), one that answers every HTTP request with 404 and records what it was sent.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Accepts connections on 127.0.0.1 and never writes a byte; counts connections accepted and
/// connections the peer closed (a killed git closes its socket).
pub struct SilentServer {
    /// The port it listens on.
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl SilentServer {
    /// Listens on a free port.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let (accepted, closed) = (accepted.clone(), closed.clone());
            async move {
                while let Ok((mut socket, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let closed = closed.clone();
                    tokio::spawn(async move {
                        let mut buffer = [0u8; 4096];
                        // Reads (and ignores) the request until the peer goes away.
                        while matches!(socket.read(&mut buffer).await, Ok(n) if n > 0) {}
                        closed.fetch_add(1, Ordering::SeqCst);
                    });
                }
            }
        });
        Ok(Self {
            port,
            accepted,
            closed,
            task,
        })
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections whose peer has closed them.
    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers every HTTP request with `404 Not Found` and keeps the request heads it received.
pub struct RecordingServer {
    /// The port it listens on.
    pub port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl RecordingServer {
    /// Listens on a free port.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let requests = requests.clone();
            async move {
                while let Ok((mut socket, _)) = listener.accept().await {
                    let requests = requests.clone();
                    tokio::spawn(async move {
                        let mut head = Vec::new();
                        let mut buffer = [0u8; 4096];
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            match socket.read(&mut buffer).await {
                                Ok(n) if n > 0 => head.extend_from_slice(&buffer[..n]),
                                _ => break,
                            }
                        }
                        if let Ok(mut requests) = requests.lock() {
                            requests.push(String::from_utf8_lossy(&head).into_owned());
                        }
                        let answer = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                        let _ = socket.write_all(answer.as_bytes()).await;
                    });
                }
            }
        });
        Ok(Self {
            port,
            requests,
            task,
        })
    }

    /// The request heads received so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for RecordingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
