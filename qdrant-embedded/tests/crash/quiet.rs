//! A normal start prints no warnings, neither on a fresh data directory nor when it reopens
//! collections.

use crate::points::{create_collection, test_point, Expected};
use crate::process::Server;
use crate::{unique_name, TestResult};

#[test]
fn a_normal_start_and_restart_print_no_warnings() -> TestResult {
    let runtime = tokio::runtime::Runtime::new()?;
    let data_dir = tempfile::tempdir()?;
    let name = unique_name("quiet");
    let mut expected = Expected::default();

    // Arrange: a collection with points, then a graceful stop.
    let server = Server::start(data_dir.path(), &[])?;
    runtime.block_on(async {
        let client = server.client()?;
        create_collection(&client, &name).await?;
        let points = (0..10).map(|i| test_point(i, 0)).collect();
        expected.upsert(&client, &name, points).await
    })?;
    let first = server.stop()?;

    // Act: start again; it reopens the collection.
    let server = Server::start(data_dir.path(), &[])?;
    runtime.block_on(async { expected.verify(&server.client()?, &name).await })?;
    let second = server.stop()?;

    // Assert
    for output in [first, second] {
        let noisy: Vec<&str> = output
            .lines()
            .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
            .collect();
        assert!(
            noisy.is_empty(),
            "warnings at a normal start:\n{}",
            noisy.join("\n")
        );
    }
    Ok(())
}
