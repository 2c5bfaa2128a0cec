//! Behaviour of the embedded server itself: these tests always start their own embedded
//! server, even when `QDRANT_URL` points elsewhere, because they restart it or probe the RPCs
//! it leaves unimplemented.

use qdrant_client::qdrant::vectors_config;
use qdrant_client::qdrant::{
    CountPointsBuilder, CreateAliasBuilder, CreateCollectionBuilder, Distance, GetPointsBuilder,
    PointId, UpsertPointsBuilder, VectorParamsBuilder, VectorParamsMap, VectorsConfig,
    VectorsConfigBuilder,
};
use qdrant_client::Qdrant;
use qdrant_embedded::Config;
use serde_json::json;
use tonic::Code;

use crate::helpers::{json_of, point, status_of, TestResult};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_on_the_same_data_dir_keeps_collections_and_points() -> TestResult {
    // Arrange
    let data_dir = tempfile::tempdir()?;
    let name = format!("conformance_restart_{}", uuid::Uuid::new_v4().simple());
    let server = qdrant_embedded::start(Config::default().with_data_dir(data_dir.path())).await?;
    let client = Qdrant::from_url(&server.url()).build()?;
    client
        .create_collection(
            CreateCollectionBuilder::new(&name)
                .vectors_config(VectorParamsBuilder::new(2, Distance::Cosine)),
        )
        .await?;
    let points = (1..=20u64)
        .map(|i| point(i, vec![1.0, i as f32], json!({ "i": i, "word": "müde" })))
        .collect::<Result<Vec<_>, _>>()?;
    client
        .upsert_points(UpsertPointsBuilder::new(&name, points).wait(true))
        .await?;
    drop(client);

    // Act
    server.stop().await;
    let server = qdrant_embedded::start(Config::default().with_data_dir(data_dir.path())).await?;
    let client = Qdrant::from_url(&server.url()).build()?;

    // Assert
    assert!(client.collection_exists(&name).await?);
    let count = client
        .count(CountPointsBuilder::new(&name).exact(true))
        .await?;
    assert_eq!(count.result.map(|r| r.count), Some(20));
    let got = client
        .get_points(GetPointsBuilder::new(&name, vec![PointId::from(7)]).with_payload(true))
        .await?;
    assert_eq!(
        got.result.first().map(|p| json_of(p.payload.clone())),
        Some(json!({ "i": 7, "word": "müde" }))
    );
    assert!(client.delete_collection(&name).await?.result);
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_rpcs_answer_unimplemented_naming_the_rpc() -> TestResult {
    // Arrange
    let server = qdrant_embedded::start(Config::default()).await?;
    let client = Qdrant::from_url(&server.url()).build()?;

    // Act
    let status = status_of(
        client
            .create_alias(CreateAliasBuilder::new("some_collection", "some_alias"))
            .await,
    )?;

    // Assert
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert!(status.message().contains("UpdateAliases"), "{status:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_reports_the_pinned_clients_version() -> TestResult {
    let server = qdrant_embedded::start(Config::default()).await?;
    let client = Qdrant::from_url(&server.url()).build()?;

    let reply = client.health_check().await?;

    // Within one minor of qdrant-client 1.20, so the client logs no compatibility warning.
    assert_eq!(reply.version, qdrant_embedded::REPORTED_VERSION);
    assert!(reply.version.starts_with("1.20."));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vector_names_that_are_not_a_safe_folder_name_are_refused() -> TestResult {
    // Arrange: named vectors become folders on disk (`vector_storage-{name}`).
    let server = qdrant_embedded::start(Config::default()).await?;
    let client = Qdrant::from_url(&server.url()).build()?;
    let long = "v".repeat(201);
    let unsafe_names = [
        "",
        "../../escape",
        "a/b",
        "a\\b",
        "..",
        "tab\there",
        "nul\0",
        "new\nline",
        &long,
    ];

    for vector_name in unsafe_names {
        let name = format!("conformance_vector_name_{}", uuid::Uuid::new_v4().simple());
        // Built by hand: the client's builder turns a lone "" into the unnamed vector.
        let vectors = VectorsConfig {
            config: Some(vectors_config::Config::ParamsMap(VectorParamsMap {
                map: [(
                    vector_name.to_owned(),
                    VectorParamsBuilder::new(2, Distance::Dot).build(),
                )]
                .into(),
            })),
        };

        // Act
        let status = status_of(
            client
                .create_collection(CreateCollectionBuilder::new(&name).vectors_config(vectors))
                .await,
        )?;

        // Assert
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{vector_name:?}: {status:?}"
        );
        assert!(
            status.message().starts_with("Wrong input: Vector name"),
            "{vector_name:?}: {status:?}"
        );
        assert!(!client.collection_exists(&name).await?, "{vector_name:?}");
    }

    // A plain name still works.
    let name = format!("conformance_vector_name_{}", uuid::Uuid::new_v4().simple());
    let mut vectors = VectorsConfigBuilder::default();
    vectors.add_named_vector_params(
        "text-dense_1.v2",
        VectorParamsBuilder::new(2, Distance::Dot),
    );
    client
        .create_collection(CreateCollectionBuilder::new(&name).vectors_config(vectors))
        .await?;
    assert!(client.delete_collection(&name).await?.result);
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_tenant_mode_refuses_unpinned_reads_of_a_tenant_scoped_collection() -> TestResult {
    use qdrant_client::qdrant::{
        Condition, CreateFieldIndexCollectionBuilder, DeletePointsBuilder, FieldType, Filter,
        KeywordIndexParamsBuilder, QueryPointsBuilder,
    };
    // Arrange: a strict server, a collection with a tenant index, and one without.
    let server = qdrant_embedded::start(
        Config {
            tenant_exempt_key: Some("upkeep".into()),
            ..Config::default()
        }
        .with_strict_tenants(true),
    )
    .await?;
    let client = Qdrant::from_url(&server.url()).build()?;
    let (scoped, plain) = ("strict_scoped", "strict_plain");
    for name in [scoped, plain] {
        client
            .create_collection(
                CreateCollectionBuilder::new(name)
                    .vectors_config(VectorParamsBuilder::new(2, Distance::Cosine)),
            )
            .await?;
    }
    client
        .create_field_index(
            CreateFieldIndexCollectionBuilder::new(scoped, "project", FieldType::Keyword)
                .field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true))
                .wait(true),
        )
        .await?;
    let pinned = Filter::must([Condition::matches("project", "p1".to_owned())]);

    // Act
    let unpinned_count = client.count(CountPointsBuilder::new(scoped)).await;
    let unpinned_query = client
        .query(QueryPointsBuilder::new(scoped).query(vec![1.0, 0.0]))
        .await;
    let unpinned_delete = client
        .delete_points(DeletePointsBuilder::new(scoped).points(Filter::default()))
        .await;
    let pinned_count = client
        .count(CountPointsBuilder::new(scoped).filter(pinned))
        .await;
    let plain_count = client.count(CountPointsBuilder::new(plain)).await;
    let upkeep = Qdrant::from_url(&server.url())
        .api_key("upkeep")
        .build()?
        .count(CountPointsBuilder::new(scoped))
        .await;

    // Assert: the unpinned calls fail naming the collection and the field; the rest pass.
    for refused in [
        unpinned_count.map(drop),
        unpinned_query.map(drop),
        unpinned_delete.map(drop),
    ] {
        let status = status_of(refused)?;
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("strict tenant mode")
                && status.message().contains("`strict_scoped`")
                && status.message().contains("`must` match on `project`"),
            "{}",
            status.message()
        );
    }
    pinned_count?;
    plain_count?;
    upkeep?;
    server.stop().await;
    Ok(())
}
