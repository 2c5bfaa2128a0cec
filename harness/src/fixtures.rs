//! rstest fixtures: `#[rstest] #[tokio::test] async fn t(#[future] env: TestEnv) { let env = env.await; }`.

use crate::env::TestEnv;

/// A fresh [`TestEnv`] with the defaults, named after the running test.
///
/// Panics with the provisioning error (a fixture cannot return `Result`).
#[rstest::fixture]
pub async fn env() -> TestEnv {
    match TestEnv::new().await {
        Ok(env) => env,
        Err(err) => panic!("could not provision the test environment: {err}"),
    }
}
