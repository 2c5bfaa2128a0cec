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

    // Act: rewrite the same 1000 points (about 140 KiB per upsert) round after round.
    let mut largest = (0u64, String::new());
    runtime.block_on(async {
        let client = server.client()?;
        create_collection(&client, &name).await?;
        for round in 0..80 {
            let points = (0..1000).map(|i| test_point(i, round)).collect();
            expected.upsert(&client, &name, points).await?;
            let (bytes, files) = log_files(data_dir.path())?;
            if bytes > largest.0 {
                largest = (bytes, files);
            }
        }
        anyhow::Ok(())
    })?;
    server.kill()?;
    let server = Server::start(data_dir.path(), &args)?;

    // Assert: the latest round of every point, after many checkpoints and a crash...
    runtime.block_on(async { expected.verify(&server.client()?, &name).await })?;
    // ...and the logs never held more than about five capacities (up to two closed and two
    // open engine WAL segments, and our log, each about one capacity), while the writes added
    // up to over ten times that in each log.
    let bound = (5 * CAPACITY_MB + 1) * 1024 * 1024;
    let (written, files) = largest;
    assert!(
        written <= bound,
        "logs grew to {written} bytes, bound {bound}:\n{files}"
    );
    let (after, files) = log_files(data_dir.path())?;
    assert!(
        after <= bound,
        "logs hold {after} bytes after the restart:\n{files}"
    );
    server.stop()?;
    Ok(())
}

/// Bytes in every collection's logs (the engine's WAL directory and our operation log), and a
/// listing of those files.
fn log_files(data_dir: &Path) -> anyhow::Result<(u64, String)> {
    let mut total = 0;
    let mut listing = String::new();
    for collection in std::fs::read_dir(data_dir.join("collections"))? {
        let dir = collection?.path();
        let wal = dir.join("shard").join("wal");
        let mut files = vec![dir.join("oplog")];
        if wal.exists() {
            for entry in std::fs::read_dir(&wal)? {
                files.push(entry?.path());
            }
        }
        for file in files {
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            if meta.is_file() {
                total += meta.len();
                listing.push_str(&format!("{:>10} {}\n", meta.len(), file.display()));
            }
        }
    }
    Ok((total, listing))
}
