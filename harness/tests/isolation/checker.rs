use harness::queue::{NewJob, Queue};
use harness::{HarnessError, TestEnv};
use qdrant_client::qdrant::{CountPointsBuilder, QueryPointsBuilder};
use serde_json::json;

use crate::helpers::{vector, TestResult, DIM};

#[tokio::test]
async fn the_checker_catches_a_search_without_the_project_filter() -> TestResult {
    let env = TestEnv::builder("unfiltered_search")
        .vector_size(DIM)
        .build()
        .await?;

    // A filtered read is fine; an unfiltered one would see other tests' points.
    env.search(vector("x"), 3).await?;
    env.assert_isolated().await?;
    env.qdrant()
        .query(
            QueryPointsBuilder::new(env.collection())
                .query(vector("x"))
                .limit(3),
        )
        .await?;

    let err = env
        .finish()
        .await
        .expect_err("an unfiltered query must fail the test");
    assert!(
        matches!(&err, HarnessError::Isolation(m) if m.contains("without a `must` match on project")),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn the_checker_catches_a_count_on_another_tests_collection() -> TestResult {
    let a = TestEnv::builder("foreign_collection_a")
        .vector_size(DIM)
        .build()
        .await?;
    let b = TestEnv::builder("foreign_collection_b")
        .vector_size(DIM)
        .build()
        .await?;

    a.qdrant()
        .count(CountPointsBuilder::new(b.collection()).filter(a.qdrant().project_filter()))
        .await?;

    let err = a
        .finish()
        .await
        .expect_err("reading another test's collection must fail");
    assert!(err.to_string().contains("not this test's"), "{err}");
    b.finish().await?;
    Ok(())
}

#[tokio::test]
async fn the_checker_catches_a_write_into_another_tests_queue() -> TestResult {
    let a = TestEnv::builder("foreign_write_a")
        .vector_size(DIM)
        .build()
        .await?;
    let b = TestEnv::builder("foreign_write_b")
        .vector_size(DIM)
        .build()
        .await?;

    // A enqueues, through its own pool, into B's queue.
    Queue::new(a.pool().clone(), b.queue_id().clone())
        .enqueue(NewJob::new(json!({})))
        .await?;

    let err = a
        .finish()
        .await
        .expect_err("a foreign-queue write must fail the test");
    assert!(
        err.to_string()
            .contains(&format!("written to queue {:?}", b.queue_id().as_str())),
        "{err}"
    );
    b.finish().await?; // B itself did nothing wrong
    Ok(())
}

#[tokio::test]
async fn the_tenant_recorder_catches_an_unfiltered_read_by_a_client_of_the_environments_url(
) -> TestResult {
    // Arrange: the recorder between the environment and Qdrant, and a client such as the
    // service under test builds from the environment's URL.
    let env = TestEnv::builder("tenant_recorder")
        .vector_size(DIM)
        .record_tenant_reads()
        .build()
        .await?;
    // The exempt key (set by the run's strict-tenant embedded Qdrant) makes the server behave as
    // a real Qdrant does, which has no strict-tenant mode: the recorder alone must notice.
    let service_client = qdrant_client::Qdrant::from_url(env.qdrant_url())
        .api_key(std::env::var("QDRANT_EMBEDDED_EXEMPT_KEY").ok())
        .skip_compatibility_check()
        .build()?;

    // Act: a read pinned to this test's project passes; a count without the filter and a query
    // pinned to another project do not.
    service_client
        .query(
            QueryPointsBuilder::new(env.collection())
                .query(vector("x"))
                .filter(env.qdrant().project_filter())
                .limit(3),
        )
        .await?;
    env.assert_isolated().await?;
    service_client
        .count(CountPointsBuilder::new(env.collection()))
        .await?;
    service_client
        .query(
            QueryPointsBuilder::new(env.collection())
                .query(vector("x"))
                .filter(qdrant_client::qdrant::Filter::must([
                    qdrant_client::qdrant::Condition::matches("project", "someone_else".to_owned()),
                ]))
                .limit(3),
        )
        .await?;

    // Assert
    let err = env
        .finish()
        .await
        .expect_err("unpinned reads must fail the test");
    let message = err.to_string();
    assert!(
        message.contains("Count on") && message.contains("seen by the tenant recorder"),
        "{message}"
    );
    assert!(
        message.contains("pinned to project \"someone_else\""),
        "{message}"
    );
    Ok(())
}
