//! The logs stay bounded: many writes to one collection keep its write-ahead logs near the
//! configured capacity, and what was written before each checkpoint survives `kill -9`.

use std::path::Path;

use crate::points::{create_collection, test_point, Expected};
use crate::process::Server;
use crate::{unique_name, TestResult};

/// `--wal-capacity-mb` for this test: small, so a few MiB of writes cross it many times.
const CAPACITY_MB: u64 = 1;

#[test]
fn logs_stay_bounded_and_every_point_survives_kill_9() -> TestResult {
    let runtime = tokio::runtime::Runtime::new()?;
    let data_dir = tempfile::tempdir()?;
    let name = unique_name("wal");
    let mut expected = Expected::default();
    let args = ["--wal-capacity-mb", "1"];
    let server = Server::start(data_dir.path(), &args)?;

    // Act: rewrite the same 1000 points round after round, many times the capacity in all.
    let mut written = 0u64;
    runtime.block_on(async {
        let client = server.client()?;
        create_collection(&client, &name).await?;
        for round in 0..30 {
            let points = (0..1000).map(|i| test_point(i, round)).collect();
            expected.upsert(&client, &name, points).await?;
            written = written.max(log_bytes(data_dir.path())?);
        }
        anyhow::Ok(())
    })?;
    server.kill()?;
    let server = Server::start(data_dir.path(), &args)?;

    // Assert: the latest round of every point, after many checkpoints and a crash...
    runtime.block_on(async { expected.verify(&server.client()?, &name).await })?;
    // ...and the logs never held much more than the capacity (closed + open engine WAL
    // segments and our log, each about one capacity).
    let bound = 4 * CAPACITY_MB * 1024 * 1024;
    assert!(
        written <= bound,
        "logs grew to {written} bytes, bound {bound}"
    );
    let after = log_bytes(data_dir.path())?;
    assert!(after <= bound, "logs hold {after} bytes after the restart");
    server.stop()?;
    Ok(())
}

/// Bytes in every collection's logs: the engine's WAL directory and our operation log.
fn log_bytes(data_dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for collection in std::fs::read_dir(data_dir.join("collections"))? {
        let dir = collection?.path();
        total += dir_bytes(&dir.join("shard").join("wal"))?;
        if let Ok(meta) = std::fs::metadata(dir.join("oplog")) {
            total += meta.len();
        }
    }
    Ok(total)
}

fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    if !dir.exists() {
        return Ok(0);
    }
    for entry in std::fs::read_dir(dir)? {
        let meta = entry?.metadata()?;
        if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}
