//! Many clients at once, and many tenants in one collection.

use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateFieldIndexCollectionBuilder, DeletePointsBuilder,
    Distance, FieldType, Filter, KeywordIndexParamsBuilder, Query, QueryPointsBuilder,
    SearchPointsBuilder,
};
use serde_json::json;

use crate::helpers::{point, TestQdrant, TestResult};

async fn count(qdrant: &TestQdrant, name: &str, filter: Option<Filter>) -> anyhow::Result<u64> {
    let mut request = CountPointsBuilder::new(name).exact(true);
    if let Some(filter) = filter {
        request = request.filter(filter);
    }
    Ok(qdrant
        .client
        .count(request)
        .await?
        .result
        .map(|r| r.count)
        .unwrap_or_default())
}

fn project(name: &str) -> Filter {
    Filter::must([Condition::matches("project", name.to_string())])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_upserts_from_16_tasks_are_all_counted() -> TestResult {
    // Arrange
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("concurrent", 8, Distance::Cosine).await?;

    // Act: 16 tasks, each with its own id range, upserting in small batches.
    let tasks = (0..16u64).map(|task| {
        let client = qdrant.client.clone();
        let name = name.clone();
        tokio::spawn(async move {
            for batch in 0..5u64 {
                let points = (0..10u64)
                    .map(|i| {
                        let id = task * 1000 + batch * 10 + i;
                        point(id, vec![1.0 + id as f32; 8], json!({ "task": task }))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                client
                    .upsert_points(
                        qdrant_client::qdrant::UpsertPointsBuilder::new(&name, points).wait(true),
                    )
                    .await?;
            }
            Ok::<_, anyhow::Error>(())
        })
    });
    for result in futures::future::join_all(tasks).await {
        result??;
    }

    // Assert
    assert_eq!(count(&qdrant, &name, None).await?, 16 * 5 * 10);
    let one_task = Filter::must([Condition::matches("task", 7i64)]);
    assert_eq!(count(&qdrant, &name, Some(one_task)).await?, 50);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundreds_of_points_from_several_projects_are_filtered_apart() -> TestResult {
    // Arrange: one collection, tenant field indexed as Qdrant recommends.
    let qdrant = TestQdrant::start().await?;
    let name = qdrant.collection("tenants", 16, Distance::Cosine).await?;
    qdrant
        .client
        .create_field_index(
            CreateFieldIndexCollectionBuilder::new(&name, "project", FieldType::Keyword)
                .field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true))
                .wait(true),
        )
        .await?;
    let projects = ["red", "green", "blue"];
    let points = (0..450u64)
        .map(|i| {
            let project = projects[(i % 3) as usize];
            let mut vector = vec![0.1; 16];
            vector[(i % 16) as usize] = 1.0 + i as f32 / 100.0;
            point(i, vector, json!({ "project": project, "n": i }))
        })
        .collect::<Result<Vec<_>, _>>()?;
    qdrant.upsert(&name, points).await?;

    // Act / Assert: each project sees exactly its own points, in counts, search and query.
    for project_name in projects {
        assert_eq!(
            count(&qdrant, &name, Some(project(project_name))).await?,
            150
        );
        let found = qdrant
            .client
            .search_points(
                SearchPointsBuilder::new(&name, vec![0.5; 16], 50)
                    .filter(project(project_name))
                    .with_payload(true),
            )
            .await?;
        assert_eq!(found.result.len(), 50);
        let queried = qdrant
            .client
            .query(
                QueryPointsBuilder::new(&name)
                    .query(Query::new_nearest(vec![0.5; 16]))
                    .filter(project(project_name))
                    .limit(200)
                    .with_payload(true),
            )
            .await?;
        assert_eq!(queried.result.len(), 150);
        for point in found.result.iter().chain(&queried.result) {
            let tag = point.payload.get("project").and_then(|v| v.as_str());
            assert_eq!(tag.map(String::as_str), Some(project_name));
        }
    }

    // Deleting one project by filter leaves the others untouched.
    qdrant
        .client
        .delete_points(
            DeletePointsBuilder::new(&name)
                .points(project("green"))
                .wait(true),
        )
        .await?;
    assert_eq!(count(&qdrant, &name, Some(project("green"))).await?, 0);
    assert_eq!(count(&qdrant, &name, None).await?, 300);
    Ok(())
}
