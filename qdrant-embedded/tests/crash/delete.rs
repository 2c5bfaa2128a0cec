//! A crash during a collection delete leaves the collection either gone or intact, and the
//! server starts either way.

use std::path::{Path, PathBuf};

use crate::points::{create_collection, test_point, Expected};
use crate::process::Server;
use crate::{unique_name, TestResult};

#[test]
fn kill_during_deletes_leaves_each_collection_gone_or_intact() -> TestResult {
    let runtime = tokio::runtime::Runtime::new()?;
    let data_dir = tempfile::tempdir()?;
    let names: Vec<String> = (0..16).map(|_| unique_name("delete")).collect();
    let mut expected = Expected::default();

    // Arrange: collections with points.
    let server = Server::start(data_dir.path(), &[])?;
    let client = server.client()?;
    runtime.block_on(async {
        let points: Vec<_> = (0..100).map(|i| test_point(i, 0)).collect();
        for name in &names {
            create_collection(&client, name).await?;
            expected.upsert(&client, name, points.clone()).await?;
        }
        anyhow::Ok(())
    })?;

    // Act: delete them all at once and kill the server as soon as the first delete answers,
    // while the others are under way.
    runtime.block_on(async {
        let (answered, mut first) = tokio::sync::mpsc::channel(names.len());
        for name in names.clone() {
            let client = client.clone();
            let answered = answered.clone();
            tokio::spawn(async move {
                let _ = client.delete_collection(name).await;
                let _ = answered.send(()).await;
            });
        }
        first.recv().await;
    });
    server.kill()?;
    let server = Server::start(data_dir.path(), &[])?;

    // Assert: each collection is gone or holds every point; nothing half-deleted remains.
    let client = server.client()?;
    let mut kept = 0;
    runtime.block_on(async {
        for name in &names {
            if client.collection_exists(name).await? {
                kept += 1;
                expected.verify(&client, name).await?;
            }
        }
        anyhow::Ok(())
    })?;
    assert!(kept < names.len(), "the first delete was acknowledged");
    assert_eq!(leftovers(data_dir.path())?, Vec::<PathBuf>::new());
    server.stop()?;
    Ok(())
}

#[test]
fn a_delete_interrupted_before_or_during_removal_is_finished_on_start() -> TestResult {
    let runtime = tokio::runtime::Runtime::new()?;
    let data_dir = tempfile::tempdir()?;
    let [renamed, half_removed, untouched] = ["renamed", "half", "kept"].map(unique_name);
    let mut expected = Expected::default();
    let server = Server::start(data_dir.path(), &[])?;
    runtime.block_on(async {
        let client = server.client()?;
        let points: Vec<_> = (0..20).map(|i| test_point(i, 0)).collect();
        for name in [&renamed, &half_removed, &untouched] {
            create_collection(&client, name).await?;
            expected.upsert(&client, name, points.clone()).await?;
        }
        anyhow::Ok(())
    })?;
    server.stop()?;

    // Arrange: what a crash leaves while deleting. The delete moves the directory to a
    // tombstone name first, then removes it file by file.
    let collections = data_dir.path().join("collections");
    let tombstone = |name: &str| -> anyhow::Result<PathBuf> {
        let dir = collection_dir(data_dir.path(), name)?;
        let target = collections.join(format!(".deleted-{}", uuid::Uuid::new_v4().simple()));
        std::fs::rename(dir, &target)?;
        Ok(target)
    };
    tombstone(&renamed)?;
    let half = tombstone(&half_removed)?;
    std::fs::remove_dir_all(half.join("shard").join("segments"))?;

    // Act
    let server = Server::start(data_dir.path(), &[])?;

    // Assert
    runtime.block_on(async {
        let client = server.client()?;
        assert!(!client.collection_exists(&renamed).await?);
        assert!(!client.collection_exists(&half_removed).await?);
        expected.verify(&client, &untouched).await
    })?;
    assert_eq!(leftovers(data_dir.path())?, Vec::<PathBuf>::new());
    server.stop()?;
    Ok(())
}

/// The directory holding collection `name`, found by its `collection.json`.
fn collection_dir(data_dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    for entry in std::fs::read_dir(data_dir.join("collections"))? {
        let dir = entry?.path();
        let Ok(text) = std::fs::read_to_string(dir.join("collection.json")) else {
            continue;
        };
        let meta: serde_json::Value = serde_json::from_str(&text)?;
        if meta["name"] == name {
            return Ok(dir);
        }
    }
    anyhow::bail!("no directory for collection {name}")
}

/// Tombstones or other hidden leftovers in the collections directory.
fn leftovers(data_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(data_dir.join("collections"))? {
        let path = entry?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
        {
            found.push(path);
        }
    }
    Ok(found)
}
