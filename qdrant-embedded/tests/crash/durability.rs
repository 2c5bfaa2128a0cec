//! Writes acknowledged with `wait=true` survive `kill -9`.

use qdrant_client::qdrant::{Condition, DeletePointsBuilder, Filter};

use crate::points::{create_collection, test_point, Expected, Id};
use crate::process::Server;
use crate::{unique_name, TestResult};

#[test]
fn acknowledged_upserts_and_deletes_survive_kill_9() -> TestResult {
    let runtime = tokio::runtime::Runtime::new()?;
    let data_dir = tempfile::tempdir()?;
    let name = unique_name("durable");
    let mut expected = Expected::default();

    // Arrange: 600 points in batches, every batch acknowledged.
    let server = Server::start(data_dir.path(), &[])?;
    runtime.block_on(async {
        let client = server.client()?;
        create_collection(&client, &name).await?;
        for batch in 0..12u64 {
            let points = (batch * 50..(batch + 1) * 50)
                .map(|i| test_point(i, 0))
                .collect();
            expected.upsert(&client, &name, points).await?;
        }
        anyhow::Ok(())
    })?;

    // Act: crash, then restart on the same directory.
    server.kill()?;
    let server = Server::start(data_dir.path(), &[])?;

    // Assert: every point, with its vector and payload.
    runtime.block_on(async { expected.verify(&server.client()?, &name).await })?;

    // Arrange: overwrite, delete by ids and by filter after the restart.
    runtime.block_on(async {
        let client = server.client()?;
        let rewritten = (0..100).map(|i| test_point(i, 1)).collect();
        expected.upsert(&client, &name, rewritten).await?;
        let gone = (500..550).map(|i| test_point(i, 0).0).collect::<Vec<Id>>();
        expected.delete(&client, &name, gone).await?;
        client
            .delete_points(
                DeletePointsBuilder::new(&name)
                    .points(Filter::must([Condition::matches("group", 3i64)]))
                    .wait(true),
            )
            .await?;
        expected
            .points
            .retain(|_, (_, payload)| payload["group"] != 3);
        anyhow::Ok(())
    })?;

    // Act: crash again.
    server.kill()?;
    let server = Server::start(data_dir.path(), &[])?;

    // Assert
    runtime.block_on(async { expected.verify(&server.client()?, &name).await })?;
    server.stop()?;
    Ok(())
}
