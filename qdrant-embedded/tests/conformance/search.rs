//! Search and query: ranking, filters, limits, fusion of prefetches.

use qdrant_client::qdrant::{
    Condition, Distance, Filter, Fusion, PrefetchQueryBuilder, Query, QueryPointsBuilder,
    SearchPointsBuilder,
};
use serde_json::json;

use crate::helpers::{num_ids, point, TestQdrant, TestResult};

/// Four points on the unit circle's axes, tagged by project.
async fn compass(qdrant: &TestQdrant, distance: Distance) -> anyhow::Result<String> {
    let name = qdrant.collection("compass", 2, distance).await?;
    qdrant
        .upsert(
            &name,
            vec![
                point(1, vec![1.0, 0.0], json!({ "project": "east" }))?,
                point(2, vec![0.0, 1.0], json!({ "project": "north" }))?,
                point(3, vec![-1.0, 0.0], json!({ "project": "west" }))?,
                point(4, vec![0.0, -1.0], json!({ "project": "south" }))?,
            ],
        )
        .await?;
    Ok(name)
}

fn first_id(points: &[qdrant_client::qdrant::ScoredPoint]) -> Vec<u64> {
    num_ids(points.iter().take(1).map(|p| p.id.as_ref()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_ranks_the_nearest_point_first_for_every_distance() -> TestResult {
    let qdrant = TestQdrant::start().await?;
    for distance in [Distance::Cosine, Distance::Dot, Distance::Euclid] {
        // Arrange
        let name = compass(&qdrant, distance).await?;

        // Act
        let found = qdrant
            .client
            .search_points(SearchPointsBuilder::new(&name, vec![0.1, 0.9], 4))
            .await?;

        // Assert
        assert_eq!(first_id(&found.result), vec![2], "{distance:?}");
        assert_eq!(found.result.len(), 4, "{distance:?}");
        let scores: Vec<f32> = found.result.iter().map(|p| p.score).collect();
        match distance {
            // Euclid scores are distances: ascending. The others are similarities: descending.
            Distance::Euclid => assert!(scores.windows(2).all(|w| w[0] <= w[1]), "{scores:?}"),
            _ => assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}"),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_respects_limit_filter_and_payload_selection() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = compass(&qdrant, Distance::Cosine).await?;

    // Act
    let found = qdrant
        .client
        .search_points(
            SearchPointsBuilder::new(&name, vec![0.0, 1.0], 1)
                .filter(Filter::must_not([Condition::matches(
                    "project",
                    "north".to_string(),
                )]))
                .with_payload(true),
        )
        .await?;

    // Assert
    assert_eq!(found.result.len(), 1);
    let best = &found.result[0];
    assert_ne!(num_ids([best.id.as_ref()]), vec![2]);
    assert!(best.payload.contains_key("project"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_by_vector_with_filter_returns_the_nearest_match() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = compass(&qdrant, Distance::Cosine).await?;

    // Act
    let found = qdrant
        .client
        .query(
            QueryPointsBuilder::new(&name)
                .query(Query::new_nearest(vec![0.9, 0.1]))
                .filter(Filter::should([
                    Condition::matches("project", "west".to_string()),
                    Condition::matches("project", "north".to_string()),
                ]))
                .limit(10)
                .with_payload(true),
        )
        .await?;

    // Assert
    assert_eq!(
        num_ids(found.result.iter().map(|p| p.id.as_ref())),
        vec![2, 3]
    );
    assert_eq!(first_id(&found.result), vec![2]);
    assert!(found.result[0].payload.contains_key("project"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_fuses_prefetches_with_reciprocal_rank_fusion() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = compass(&qdrant, Distance::Cosine).await?;

    // Act
    let found = qdrant
        .client
        .query(
            QueryPointsBuilder::new(&name)
                .add_prefetch(
                    PrefetchQueryBuilder::default()
                        .query(Query::new_nearest(vec![1.0, 0.0]))
                        .limit(1u64),
                )
                .add_prefetch(
                    PrefetchQueryBuilder::default()
                        .query(Query::new_nearest(vec![0.0, 1.0]))
                        .limit(1u64),
                )
                .query(Query::new_fusion(Fusion::Rrf))
                .limit(10),
        )
        .await?;

    // Assert
    assert_eq!(
        num_ids(found.result.iter().map(|p| p.id.as_ref())),
        vec![1, 2]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_without_a_query_lists_points_in_id_order() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = compass(&qdrant, Distance::Cosine).await?;

    // Act
    let found = qdrant
        .client
        .query(QueryPointsBuilder::new(&name).limit(3))
        .await?;

    // Assert
    let ids: Vec<u64> = found
        .result
        .iter()
        .flat_map(|p| num_ids([p.id.as_ref()]))
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
    Ok(())
}
