//! rstest fixtures.
//!
//! ```no_run
//! use harness::fixtures::env;
//! use harness::{CollectionMode, TestEnv};
//! use rstest::rstest;
//!
//! #[rstest]
//! #[tokio::test]
//! async fn with_the_defaults(#[future] env: TestEnv) {
//!     let env = env.await;
//!     // ...
//! }
//!
//! #[rstest]
//! #[tokio::test]
//! async fn with_8_dimensions_and_a_collection_of_its_own(
//!     #[future]
//!     #[with(8, CollectionMode::PerTest)]
//!     env: TestEnv,
//! ) {
//!     let env = env.await;
//!     assert_eq!(env.collection_mode(), CollectionMode::PerTest);
//! }
//! ```

use crate::collection::CollectionMode;
use crate::env::{current_test_name, TestEnv};

/// A fresh [`TestEnv`] named after the running test, with `vector_size` dimensions (default
/// 384) and collection mode `mode` (default per slot); `#[with(8)]` or
/// `#[with(8, CollectionMode::PerTest)]` sets them.
///
/// Panics with the provisioning error (a fixture cannot return `Result`).
#[rstest::fixture]
pub async fn env(
    #[default(384)] vector_size: u64,
    #[default(CollectionMode::PerSlot)] mode: CollectionMode,
) -> TestEnv {
    let built = TestEnv::builder(current_test_name())
        .vector_size(vector_size)
        .collection_mode(mode)
        .build()
        .await;
    match built {
        Ok(env) => env,
        Err(err) => panic!("could not provision the test environment: {err}"),
    }
}
