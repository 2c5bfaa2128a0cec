//! Points: upsert, get, re-upsert, delete by ids and by filter, count, scroll, payload indexes.

use qdrant_client::qdrant::{
    payload_index_params::IndexParams, point_id::PointIdOptions, Condition, CountPointsBuilder,
    CreateFieldIndexCollectionBuilder, DeleteFieldIndexCollectionBuilder, DeletePointsBuilder,
    Distance, FieldType, Filter, GetPointsBuilder, KeywordIndexParamsBuilder, PointId,
    PointsIdsList, ScrollPointsBuilder,
};
use serde_json::json;

use crate::helpers::{json_of, num_ids, point, wait_until, TestQdrant, TestResult};

async fn count(qdrant: &TestQdrant, name: &str, filter: Option<Filter>) -> anyhow::Result<u64> {
    let mut request = CountPointsBuilder::new(name).exact(true);
    if let Some(filter) = filter {
        request = request.filter(filter);
    }
    let response = qdrant.client.count(request).await?;
    Ok(response.result.map(|r| r.count).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upserted_points_are_fetched_by_numeric_and_uuid_ids() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("get", 2, Distance::Cosine).await?;
    let uuid = "5C56C793-69F3-4FBF-87E6-C4BF54C28C26";
    qdrant
        .upsert(
            &name,
            vec![
                point(7, vec![1.0, 0.0], json!({ "kind": "numeric" }))?,
                point(uuid, vec![0.0, 1.0], json!({ "kind": "uuid" }))?,
            ],
        )
        .await?;

    // Act
    let got = qdrant
        .client
        .get_points(
            GetPointsBuilder::new(&name, vec![PointId::from(7), PointId::from(uuid)])
                .with_payload(true),
        )
        .await?;

    // Assert
    assert_eq!(got.result.len(), 2);
    let ids: Vec<_> = got
        .result
        .iter()
        .filter_map(|p| p.id.as_ref().and_then(|id| id.point_id_options.clone()))
        .collect();
    assert!(ids.contains(&PointIdOptions::Num(7)));
    // UUIDs come back lower-case and hyphenated, whatever case was sent.
    assert!(ids.contains(&PointIdOptions::Uuid(uuid.to_lowercase())));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetching_unknown_ids_returns_only_the_known_points() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant
        .collection("get_unknown", 2, Distance::Cosine)
        .await?;
    qdrant
        .upsert(&name, vec![point(1, vec![1.0, 0.0], json!({}))?])
        .await?;

    // Act
    let got = qdrant
        .client
        .get_points(GetPointsBuilder::new(
            &name,
            vec![PointId::from(1), PointId::from(2)],
        ))
        .await?;

    // Assert
    assert_eq!(num_ids(got.result.iter().map(|p| p.id.as_ref())), vec![1]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_upserting_an_id_replaces_its_vector_and_payload() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("replace", 2, Distance::Euclid).await?;
    qdrant
        .upsert(
            &name,
            vec![point(1, vec![1.0, 2.0], json!({ "a": 1, "b": 2 }))?],
        )
        .await?;

    // Act
    qdrant
        .upsert(&name, vec![point(1, vec![3.0, 4.0], json!({ "a": 3 }))?])
        .await?;

    // Assert
    let got = qdrant
        .client
        .get_points(
            GetPointsBuilder::new(&name, vec![PointId::from(1)])
                .with_payload(true)
                .with_vectors(true),
        )
        .await?;
    let [record] = got.result.as_slice() else {
        anyhow::bail!("expected one point, got {}", got.result.len());
    };
    assert_eq!(json_of(record.payload.clone()), json!({ "a": 3 }));
    #[allow(deprecated)]
    let vector = record
        .vectors
        .as_ref()
        .and_then(|v| v.get_vector())
        .ok_or_else(|| anyhow::anyhow!("no vector"))?;
    assert_eq!(
        vector,
        qdrant_client::qdrant::vector_output::Vector::Dense(qdrant_client::qdrant::DenseVector {
            data: vec![3.0, 4.0]
        })
    );
    assert_eq!(count(&qdrant, &name, None).await?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_are_deleted_by_ids() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("delete_ids", 2, Distance::Cosine).await?;
    let points = (1..=5)
        .map(|i| point(i, vec![1.0, i as f32], json!({})))
        .collect::<Result<Vec<_>, _>>()?;
    qdrant.upsert(&name, points).await?;

    // Act
    qdrant
        .client
        .delete_points(
            DeletePointsBuilder::new(&name)
                .points(PointsIdsList {
                    ids: vec![2.into(), 4.into()],
                })
                .wait(true),
        )
        .await?;

    // Assert
    let scrolled = qdrant
        .client
        .scroll(ScrollPointsBuilder::new(&name).limit(100))
        .await?;
    assert_eq!(
        num_ids(scrolled.result.iter().map(|p| p.id.as_ref())),
        vec![1, 3, 5]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_are_deleted_by_filter() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant
        .collection("delete_filter", 2, Distance::Cosine)
        .await?;
    let points = (1..=6)
        .map(|i| {
            let project = if i % 2 == 0 { "even" } else { "odd" };
            point(i, vec![1.0, i as f32], json!({ "project": project }))
        })
        .collect::<Result<Vec<_>, _>>()?;
    qdrant.upsert(&name, points).await?;

    // Act
    qdrant
        .client
        .delete_points(
            DeletePointsBuilder::new(&name)
                .points(Filter::must([Condition::matches(
                    "project",
                    "even".to_string(),
                )]))
                .wait(true),
        )
        .await?;

    // Assert
    assert_eq!(count(&qdrant, &name, None).await?, 3);
    let even = Filter::must([Condition::matches("project", "even".to_string())]);
    assert_eq!(count(&qdrant, &name, Some(even)).await?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_is_exact_with_and_without_a_filter() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("count", 2, Distance::Dot).await?;
    let points = (0..37)
        .map(|i| point(i, vec![1.0, 0.0], json!({ "tens": i / 10 })))
        .collect::<Result<Vec<_>, _>>()?;
    qdrant.upsert(&name, points).await?;

    // Act
    let all = count(&qdrant, &name, None).await?;
    let thirties = count(
        &qdrant,
        &name,
        Some(Filter::must([Condition::matches("tens", 3i64)])),
    )
    .await?;

    // Assert
    assert_eq!(all, 37);
    assert_eq!(thirties, 7);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scroll_pages_through_every_point_to_the_end() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("scroll", 2, Distance::Cosine).await?;
    let points = (1..=25)
        .map(|i| point(i, vec![1.0, i as f32], json!({ "i": i })))
        .collect::<Result<Vec<_>, _>>()?;
    qdrant.upsert(&name, points).await?;

    // Act
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut offset: Option<PointId> = None;
    loop {
        let mut request = ScrollPointsBuilder::new(&name).limit(10).with_payload(true);
        if let Some(offset) = offset.take() {
            request = request.offset(offset);
        }
        let page = qdrant.client.scroll(request).await?;
        pages += 1;
        assert!(page.result.len() <= 10);
        seen.extend(num_ids(page.result.iter().map(|p| p.id.as_ref())));
        match page.next_page_offset {
            Some(next) => offset = Some(next),
            None => break,
        }
        anyhow::ensure!(pages < 10, "scroll did not end");
    }

    // Assert
    assert_eq!(pages, 3);
    assert_eq!(seen, (1..=25).collect::<Vec<u64>>());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyword_index_with_is_tenant_is_created_and_deleted() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("index", 2, Distance::Cosine).await?;
    qdrant
        .upsert(
            &name,
            vec![point(1, vec![1.0, 0.0], json!({ "project": "a" }))?],
        )
        .await?;

    // Act
    qdrant
        .client
        .create_field_index(
            CreateFieldIndexCollectionBuilder::new(&name, "project", FieldType::Keyword)
                .field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true))
                .wait(true),
        )
        .await?;

    // Assert
    let schema = |qdrant: &TestQdrant| {
        let name = name.clone();
        let client = qdrant.client.clone();
        async move {
            let info = client.collection_info(&name).await?;
            Ok::<_, anyhow::Error>(info.result.map(|r| r.payload_schema).unwrap_or_default())
        }
    };
    let indexed = schema(&qdrant).await?;
    let project = indexed
        .get("project")
        .ok_or_else(|| anyhow::anyhow!("no index on project: {indexed:?}"))?;
    assert_eq!(
        project.data_type,
        qdrant_client::qdrant::PayloadSchemaType::Keyword as i32
    );
    match project
        .params
        .as_ref()
        .and_then(|p| p.index_params.as_ref())
    {
        Some(IndexParams::KeywordIndexParams(params)) => assert_eq!(params.is_tenant, Some(true)),
        other => anyhow::bail!("expected keyword params, got {other:?}"),
    }
    let filtered = count(
        &qdrant,
        &name,
        Some(Filter::must([Condition::matches(
            "project",
            "a".to_string(),
        )])),
    )
    .await?;
    assert_eq!(filtered, 1);

    qdrant
        .client
        .delete_field_index(DeleteFieldIndexCollectionBuilder::new(&name, "project").wait(true))
        .await?;
    wait_until("the project index to disappear", || async {
        Ok(!schema(&qdrant).await?.contains_key("project"))
    })
    .await?;
    Ok(())
}
