//! Filters: match keyword / integer / any, must / should / must_not, ranges, nested keys,
//! has_id, is_null.

use qdrant_client::qdrant::{Condition, Distance, Filter, Range, ScrollPointsBuilder};
use serde_json::json;

use crate::helpers::{num_ids, point, TestQdrant, TestResult};

/// Six documents with a spread of payload shapes.
async fn library(qdrant: &TestQdrant) -> anyhow::Result<String> {
    let name = qdrant.collection("filters", 2, Distance::Cosine).await?;
    let docs = [
        json!({ "project": "alpha", "lang": "rust", "stars": 5,  "score": 0.5, "meta": { "kind": "code", "depth": 1 }, "tags": ["fast", "safe"] }),
        json!({ "project": "alpha", "lang": "go",   "stars": 12, "score": 1.5, "meta": { "kind": "doc",  "depth": 2 }, "tags": ["simple"] }),
        json!({ "project": "beta",  "lang": "rust", "stars": 20, "score": 2.5, "meta": { "kind": "code", "depth": 3 }, "tags": ["safe"] }),
        json!({ "project": "beta",  "lang": "py",   "stars": 1,  "score": 3.5, "meta": { "kind": "doc",  "depth": 1 }, "note": null }),
        json!({ "project": "gamma", "lang": "rust", "stars": 50, "score": 4.5, "meta": { "kind": "code", "depth": 2 } }),
        json!({ "project": "gamma", "lang": "c",    "stars": 8,  "score": 5.5, "meta": { "kind": "test", "depth": 5 } }),
    ];
    let points = docs
        .into_iter()
        .enumerate()
        .map(|(i, doc)| point(i as u64 + 1, vec![1.0, i as f32], doc))
        .collect::<Result<Vec<_>, _>>()?;
    qdrant.upsert(&name, points).await?;
    Ok(name)
}

async fn matching(qdrant: &TestQdrant, name: &str, filter: Filter) -> anyhow::Result<Vec<u64>> {
    let page = qdrant
        .client
        .scroll(ScrollPointsBuilder::new(name).filter(filter).limit(100))
        .await?;
    Ok(num_ids(page.result.iter().map(|p| p.id.as_ref())))
}

fn keyword(key: &str, value: &str) -> Condition {
    Condition::matches(key, value.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_keyword_selects_equal_values() -> TestResult {
    let qdrant = TestQdrant::start().await?;
    let name = library(&qdrant).await?;

    let found = matching(&qdrant, &name, Filter::must([keyword("lang", "rust")])).await?;

    assert_eq!(found, vec![1, 3, 5]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_keyword_matches_any_element_of_an_array() -> TestResult {
    let qdrant = TestQdrant::start().await?;
    let name = library(&qdrant).await?;

    let found = matching(&qdrant, &name, Filter::must([keyword("tags", "safe")])).await?;

    assert_eq!(found, vec![1, 3]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_integer_selects_equal_values() -> TestResult {
    let qdrant = TestQdrant::start().await?;
    let name = library(&qdrant).await?;

    let found = matching(
        &qdrant,
        &name,
        Filter::must([Condition::matches("stars", 12i64)]),
    )
    .await?;

    assert_eq!(found, vec![2]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_any_selects_any_of_several_keywords_or_integers() -> TestResult {
    let qdrant = TestQdrant::start().await?;
    let name = library(&qdrant).await?;

    let keywords = matching(
        &qdrant,
        &name,
        Filter::must([Condition::matches(
            "project",
            vec!["alpha".to_string(), "gamma".to_string()],
        )]),
    )
    .await?;
    let integers = matching(
        &qdrant,
        &name,
        Filter::must([Condition::matches("stars", vec![1i64, 50, 999])]),
    )
    .await?;

    assert_eq!(keywords, vec![1, 2, 5, 6]);
    assert_eq!(integers, vec![4, 5]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn must_should_and_must_not_combine() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = library(&qdrant).await?;
    let filter = Filter {
        must: vec![keyword("meta.kind", "code")],
        should: vec![keyword("project", "alpha"), keyword("project", "gamma")],
        must_not: vec![Condition::matches("stars", 50i64)],
        ..Default::default()
    };

    // Act
    let found = matching(&qdrant, &name, filter).await?;

    // Assert
    assert_eq!(found, vec![1]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_filters_combine_as_conditions() -> TestResult {
    let qdrant = TestQdrant::start().await?;
    let name = library(&qdrant).await?;
    // (project = beta) OR (lang = c AND stars >= 5)
    let filter = Filter::should([
        Condition::from(Filter::must([keyword("project", "beta")])),
        Condition::from(Filter::must([
            keyword("lang", "c"),
            Condition::range(
                "stars",
                Range {
                    gte: Some(5.0),
                    ..Default::default()
                },
            ),
        ])),
    ]);

    let found = matching(&qdrant, &name, filter).await?;

    assert_eq!(found, vec![3, 4, 6]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integer_and_float_ranges_bound_values() -> TestResult {
    let qdrant = TestQdrant::start().await?;
    let name = library(&qdrant).await?;

    let stars = matching(
        &qdrant,
        &name,
        Filter::must([Condition::range(
            "stars",
            Range {
                gte: Some(8.0),
                lt: Some(50.0),
                ..Default::default()
            },
        )]),
    )
    .await?;
    let score = matching(
        &qdrant,
        &name,
        Filter::must([Condition::range(
            "score",
            Range {
                gt: Some(1.5),
                lte: Some(4.5),
                ..Default::default()
            },
        )]),
    )
    .await?;

    assert_eq!(stars, vec![2, 3, 6]);
    assert_eq!(score, vec![3, 4, 5]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotted_keys_reach_into_nested_objects() -> TestResult {
    let qdrant = TestQdrant::start().await?;
    let name = library(&qdrant).await?;

    let docs = matching(&qdrant, &name, Filter::must([keyword("meta.kind", "doc")])).await?;
    let deep = matching(
        &qdrant,
        &name,
        Filter::must([Condition::range(
            "meta.depth",
            Range {
                gte: Some(3.0),
                ..Default::default()
            },
        )]),
    )
    .await?;

    assert_eq!(docs, vec![2, 4]);
    assert_eq!(deep, vec![3, 6]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn has_id_and_is_null_select_points() -> TestResult {
    let qdrant = TestQdrant::start().await?;
    let name = library(&qdrant).await?;

    let by_id = matching(
        &qdrant,
        &name,
        Filter::must([Condition::has_id([2u64, 6, 99])]),
    )
    .await?;
    let null_note = matching(&qdrant, &name, Filter::must([Condition::is_null("note")])).await?;

    assert_eq!(by_id, vec![2, 6]);
    assert_eq!(null_note, vec![4]);
    Ok(())
}
