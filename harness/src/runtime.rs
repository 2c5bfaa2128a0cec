//! The harness's own runtime: one worker thread alive until the process exits, on which the
//! shared session lives (a connection belongs to the runtime that opened it, and each
//! `#[tokio::test]` runtime is gone when its test ends).

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Handle;

use crate::error::HarnessError;

fn runtime() -> Result<&'static Handle, HarnessError> {
    static HANDLE: OnceLock<Result<Handle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name("harness-session".into())
                .spawn(move || {
                    match tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(1)
                        .thread_name("harness-session")
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => {
                            let _ = tx.send(Ok(rt.handle().clone()));
                            rt.block_on(std::future::pending::<()>());
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e.to_string()));
                        }
                    }
                })
                .map_err(|e| e.to_string())?;
            rx.recv()
                .unwrap_or_else(|_| Err("the harness runtime thread died".into()))
        })
        .as_ref()
        .map_err(|e| HarnessError::Config(format!("starting the harness runtime: {e}")))
}

/// Runs `work` on the harness's runtime and waits for it from any runtime (or none).
pub(crate) async fn on_runtime<F, T>(work: F) -> Result<T, HarnessError>
where
    F: Future<Output = Result<T, HarnessError>> + Send + 'static,
    T: Send + 'static,
{
    runtime()?
        .spawn(work)
        .await
        .map_err(|e| HarnessError::Config(format!("harness task failed: {e}")))?
}

/// Runs `work` on the harness's runtime and blocks the calling thread until it is done (for
/// `Drop`, which cannot await; the work does not need the caller's runtime).
pub(crate) fn block_on_runtime<F, T>(work: F) -> Result<T, HarnessError>
where
    F: Future<Output = Result<T, HarnessError>> + Send + 'static,
    T: Send + 'static,
{
    let handle = runtime()?;
    let (tx, rx) = std::sync::mpsc::channel();
    handle.spawn(async move {
        let _ = tx.send(work.await);
    });
    rx.recv()
        .unwrap_or_else(|_| Err(HarnessError::Config("harness task failed".into())))
}
