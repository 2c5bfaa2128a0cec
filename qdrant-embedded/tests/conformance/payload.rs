//! Payload round trips and the with_payload / with_vectors selectors.

use qdrant_client::qdrant::{
    Distance, GetPointsBuilder, PayloadExcludeSelector, PayloadIncludeSelector, PointId,
    ScrollPointsBuilder, SearchPointsBuilder,
};
use serde_json::json;

use crate::helpers::{json_of, point, TestQdrant, TestResult};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_round_trips_nested_objects_arrays_null_and_unicode() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("round_trip", 2, Distance::Cosine).await?;
    let payload = json!({
        "text": "Grüße, 世界! 🚀",
        "count": 42,
        "negative": -7,
        "ratio": 0.25,
        "flag": true,
        "nothing": null,
        "tags": ["a", "b", "ç"],
        "mixed": [1, "two", null, { "three": 3 }],
        "meta": { "source": { "path": "docs/über.md", "line": 12 }, "empty": {} },
        "empty_list": [],
    });
    qdrant
        .upsert(&name, vec![point(1, vec![1.0, 0.0], payload.clone())?])
        .await?;

    // Act
    let got = qdrant
        .client
        .get_points(GetPointsBuilder::new(&name, vec![PointId::from(1)]).with_payload(true))
        .await?;

    // Assert
    let [record] = got.result.as_slice() else {
        anyhow::bail!("expected one point, got {}", got.result.len());
    };
    assert_eq!(json_of(record.payload.clone()), payload);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_payload_include_and_exclude_select_fields() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("selectors", 2, Distance::Cosine).await?;
    qdrant
        .upsert(
            &name,
            vec![point(
                1,
                vec![1.0, 0.0],
                json!({ "keep": 1, "drop": 2, "also": 3 }),
            )?],
        )
        .await?;
    let get = |selector: qdrant_client::qdrant::with_payload_selector::SelectorOptions| {
        let client = qdrant.client.clone();
        let name = name.clone();
        async move {
            let got = client
                .get_points(
                    GetPointsBuilder::new(&name, vec![PointId::from(1)]).with_payload(selector),
                )
                .await?;
            let payload = got
                .result
                .into_iter()
                .next()
                .map(|p| p.payload)
                .unwrap_or_default();
            Ok::<_, anyhow::Error>(json_of(payload))
        }
    };

    // Act
    let included = get(PayloadIncludeSelector::new(vec!["keep".to_string()]).into()).await?;
    let excluded = get(PayloadExcludeSelector::new(vec!["drop".to_string()]).into()).await?;
    let none = get(false.into()).await?;

    // Assert
    assert_eq!(included, json!({ "keep": 1 }));
    assert_eq!(excluded, json!({ "keep": 1, "also": 3 }));
    assert_eq!(none, json!({}));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_vectors_returns_vectors_only_when_asked() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("with_vectors", 3, Distance::Dot).await?;
    qdrant
        .upsert(&name, vec![point(1, vec![0.5, 1.5, 2.5], json!({}))?])
        .await?;

    // Act
    let without = qdrant
        .client
        .scroll(ScrollPointsBuilder::new(&name).with_vectors(false))
        .await?;
    let with = qdrant
        .client
        .scroll(ScrollPointsBuilder::new(&name).with_vectors(true))
        .await?;
    let searched = qdrant
        .client
        .search_points(
            SearchPointsBuilder::new(&name, vec![1.0, 1.0, 1.0], 1)
                .with_vectors(true)
                .with_payload(false),
        )
        .await?;

    // Assert
    assert!(without.result.iter().all(|p| p.vectors.is_none()));
    let vector_of = |vectors: Option<&qdrant_client::qdrant::VectorsOutput>| {
        #[allow(deprecated)]
        vectors.and_then(|v| v.get_vector())
    };
    let expected =
        qdrant_client::qdrant::vector_output::Vector::Dense(qdrant_client::qdrant::DenseVector {
            data: vec![0.5, 1.5, 2.5],
        });
    assert_eq!(
        vector_of(with.result[0].vectors.as_ref()),
        Some(expected.clone())
    );
    assert_eq!(
        vector_of(searched.result[0].vectors.as_ref()),
        Some(expected)
    );
    assert!(searched.result[0].payload.is_empty());
    Ok(())
}
