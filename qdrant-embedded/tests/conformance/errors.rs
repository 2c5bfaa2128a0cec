//! Errors and validation, with the status codes and texts of a real Qdrant.
//!
//! Qdrant words request-validation failures `Validation error in body: [field: ...]` and
//! storage-level ones `Wrong input: ...`; checks pin the code and the telling part of the text.

use qdrant_client::qdrant::{
    CreateCollectionBuilder, Distance, GetPointsBuilder, PointId, SearchPointsBuilder,
    UpsertPointsBuilder, VectorParamsBuilder,
};
use serde_json::json;
use tonic::Code;

use crate::helpers::{point, status_of, TestQdrant, TestResult};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_collection_is_not_found_with_qdrants_message() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.unique_name("missing");
    let expected = format!("Not found: Collection `{name}` doesn't exist!");

    // Act
    let info = status_of(qdrant.client.collection_info(&name).await)?;
    let search = status_of(
        qdrant
            .client
            .search_points(SearchPointsBuilder::new(&name, vec![1.0, 0.0], 1))
            .await,
    )?;
    let upsert = status_of(
        qdrant
            .client
            .upsert_points(
                UpsertPointsBuilder::new(&name, vec![point(1, vec![1.0], json!({}))?]).wait(true),
            )
            .await,
    )?;

    // Assert
    for status in [info, search, upsert] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert_eq!(status.message(), expected);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_an_existing_collection_is_already_exists() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("twice", 4, Distance::Cosine).await?;

    // Act
    let status = status_of(
        qdrant
            .client
            .create_collection(
                CreateCollectionBuilder::new(&name)
                    .vectors_config(VectorParamsBuilder::new(4, Distance::Cosine)),
            )
            .await,
    )?;

    // Assert
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert!(status.message().contains("already exists"), "{status:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_collection_names_are_invalid_arguments() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let mut names: Vec<String> = ["<", ">", ":", "\"", "/", "\\", "|", "?", "*"]
        .iter()
        .map(|bad| format!("conformance_bad{bad}{suffix}"))
        .collect();
    names.push(String::new());
    names.push("x".repeat(256));

    for name in names {
        // Act
        let status = status_of(
            qdrant
                .client
                .create_collection(
                    CreateCollectionBuilder::new(&name)
                        .vectors_config(VectorParamsBuilder::new(4, Distance::Cosine)),
                )
                .await,
        )?;

        // Assert
        assert_eq!(status.code(), Code::InvalidArgument, "{name:?}: {status:?}");
        assert!(
            status.message().contains("collection_name"),
            "{name:?}: {status:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vector_of_the_wrong_size_is_wrong_input() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("wrong_size", 4, Distance::Cosine).await?;

    // Act
    let upsert = status_of(
        qdrant
            .client
            .upsert_points(
                UpsertPointsBuilder::new(&name, vec![point(1, vec![1.0, 2.0, 3.0], json!({}))?])
                    .wait(true),
            )
            .await,
    )?;
    let search = status_of(
        qdrant
            .client
            .search_points(SearchPointsBuilder::new(&name, vec![1.0, 2.0, 3.0], 1))
            .await,
    )?;

    // Assert
    assert_eq!(upsert.code(), Code::InvalidArgument, "{upsert:?}");
    assert!(upsert.message().starts_with("Wrong input: "), "{upsert:?}");
    assert!(
        upsert.message().contains("expected dim: 4, got 3"),
        "{upsert:?}"
    );
    assert_eq!(search.code(), Code::InvalidArgument, "{search:?}");
    assert!(
        search.message().contains("expected dim: 4, got 3"),
        "{search:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_limit_is_an_invalid_argument() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("zero_limit", 2, Distance::Cosine).await?;

    // Act
    let status = status_of(
        qdrant
            .client
            .search_points(SearchPointsBuilder::new(&name, vec![1.0, 0.0], 0))
            .await,
    )?;

    // Assert
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("limit"), "{status:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_uuid_is_an_invalid_argument() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("bad_id", 2, Distance::Cosine).await?;

    // Act
    let upsert = status_of(
        qdrant
            .client
            .upsert_points(
                UpsertPointsBuilder::new(
                    &name,
                    vec![point("not-a-uuid", vec![1.0, 0.0], json!({}))?],
                )
                .wait(true),
            )
            .await,
    )?;
    let get = status_of(
        qdrant
            .client
            .get_points(GetPointsBuilder::new(
                &name,
                vec![PointId::from("12345-nope")],
            ))
            .await,
    )?;

    // Assert
    assert_eq!(upsert.code(), Code::InvalidArgument, "{upsert:?}");
    assert!(upsert.message().contains("not-a-uuid"), "{upsert:?}");
    assert_eq!(get.code(), Code::InvalidArgument, "{get:?}");
    assert!(get.message().contains("12345-nope"), "{get:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_larger_than_tonics_4_mib_default_are_accepted_both_ways() -> TestResult {
    // Arrange: ~10 MiB of vectors in one upsert, read back in one scroll.
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("large", 1024, Distance::Dot).await?;
    let points = (0..2500u64)
        .map(|i| point(i, vec![i as f32; 1024], json!({})))
        .collect::<Result<Vec<_>, _>>()?;

    // Act
    qdrant.upsert(&name, points).await?;
    let page = qdrant
        .client
        .scroll(
            qdrant_client::qdrant::ScrollPointsBuilder::new(&name)
                .limit(2500)
                .with_vectors(true),
        )
        .await?;

    // Assert
    assert_eq!(page.result.len(), 2500);
    Ok(())
}
