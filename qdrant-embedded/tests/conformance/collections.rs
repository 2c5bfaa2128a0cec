//! Collections: create, exists, list, info, delete.

use qdrant_client::qdrant::{vectors_config, CollectionStatus, Distance};

use crate::helpers::{point, wait_until, TestQdrant, TestResult};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_collection_exists_and_is_listed() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;

    // Act
    let name = qdrant.collection("listed", 4, Distance::Cosine).await?;

    // Assert
    assert!(qdrant.client.collection_exists(&name).await?);
    let listed = qdrant.client.list_collections().await?;
    assert!(listed.collections.iter().any(|c| c.name == name));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_info_reports_vector_params_and_point_count() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("info", 3, Distance::Dot).await?;
    let points = (0..5)
        .map(|i| point(i, vec![i as f32, 1.0, 0.5], serde_json::json!({ "i": i })))
        .collect::<Result<Vec<_>, _>>()?;
    qdrant.upsert(&name, points).await?;

    // Act: point counts in a real Qdrant's info may lag a moment behind the write.
    wait_until("collection info to count 5 points", || async {
        let info = qdrant.client.collection_info(&name).await?;
        Ok(info.result.and_then(|r| r.points_count) == Some(5))
    })
    .await?;
    let info = qdrant
        .client
        .collection_info(&name)
        .await?
        .result
        .ok_or_else(|| anyhow::anyhow!("no collection info"))?;

    // Assert
    assert_eq!(info.status, CollectionStatus::Green as i32);
    let params = info
        .config
        .and_then(|c| c.params)
        .and_then(|p| p.vectors_config)
        .and_then(|v| v.config);
    match params {
        Some(vectors_config::Config::Params(params)) => {
            assert_eq!(params.size, 3);
            assert_eq!(params.distance, Distance::Dot as i32);
        }
        other => anyhow::bail!("expected single vector params, got {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_collection_no_longer_exists() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("deleted", 4, Distance::Euclid).await?;

    // Act
    let deleted = qdrant.client.delete_collection(&name).await?;

    // Assert
    assert!(deleted.result);
    assert!(!qdrant.client.collection_exists(&name).await?);
    let listed = qdrant.client.list_collections().await?;
    assert!(listed.collections.iter().all(|c| c.name != name));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_missing_collection_answers_false() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.unique_name("never_created");

    // Act
    let deleted = qdrant.client.delete_collection(&name).await?;

    // Assert
    assert!(!deleted.result);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_collection_starts_empty() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("recreated", 2, Distance::Cosine).await?;
    qdrant
        .upsert(
            &name,
            vec![point(1, vec![1.0, 0.0], serde_json::json!({}))?],
        )
        .await?;
    qdrant.client.delete_collection(&name).await?;

    // Act
    qdrant
        .client
        .create_collection(
            qdrant_client::qdrant::CreateCollectionBuilder::new(&name).vectors_config(
                qdrant_client::qdrant::VectorParamsBuilder::new(2, Distance::Cosine),
            ),
        )
        .await?;

    // Assert
    let count = qdrant
        .client
        .count(qdrant_client::qdrant::CountPointsBuilder::new(&name).exact(true))
        .await?;
    assert_eq!(count.result.map(|r| r.count), Some(0));
    Ok(())
}
