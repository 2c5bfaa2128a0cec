//! Health check.

use crate::helpers::{TestQdrant, TestResult};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_reports_a_qdrant_1_x_version() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;

    // Act
    let reply = qdrant.client.health_check().await?;

    // Assert
    let mut parts = reply.version.split('.');
    assert_eq!(parts.next(), Some("1"), "version {}", reply.version);
    let minor: u32 = parts.next().unwrap_or_default().parse()?;
    assert!(minor >= 1, "version {}", reply.version);
    assert!(!reply.title.is_empty());
    Ok(())
}
