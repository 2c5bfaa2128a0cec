//! Waiting on conditions, never on time: poll until true, fail with what was awaited.

use std::future::Future;
use std::time::Duration;

use crate::error::HarnessError;

/// Polls `check` every 20 ms until it returns true; after `timeout` fails with `what`.
pub async fn wait_until<F, Fut>(
    timeout: Duration,
    what: &str,
    mut check: F,
) -> Result<(), HarnessError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, HarnessError>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(HarnessError::Timeout {
                what: what.to_owned(),
                timeout,
                dump: String::new(),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
