use harness::queue::{NewJob, Queue};
use harness::TestEnv;
use serde_json::json;

use crate::helpers::{docs, indexer, vector, TestResult, DIM, WAIT};

#[tokio::test]
async fn two_environments_with_their_own_workers_each_find_only_their_own_results() -> TestResult {
    // Arrange: two tests' environments on the same servers, each with its own worker.
    let a = TestEnv::builder("seed_race_a")
        .vector_size(DIM)
        .build()
        .await?;
    let b = TestEnv::builder("seed_race_b")
        .vector_size(DIM)
        .build()
        .await?;
    let worker_a = a
        .spawn_workers(indexer(a.qdrant().clone(), a.project().to_owned()), 2)
        .await?;
    let worker_b = b
        .spawn_workers(indexer(b.qdrant().clone(), b.project().to_owned()), 2)
        .await?;

    // Act: both enqueue at once.
    let jobs = |who: &str| -> Vec<NewJob> {
        (0..10)
            .map(|i| NewJob::new(json!({ "doc": format!("{who}-{i}") })))
            .collect()
    };
    let (jobs_a, jobs_b) = (jobs("a"), jobs("b"));
    let (ids_a, ids_b) = tokio::try_join!(
        a.queue().enqueue_many(&jobs_a),
        b.queue().enqueue_many(&jobs_b)
    )?;
    tokio::try_join!(a.wait_idle(WAIT), b.wait_idle(WAIT))?;

    // Assert: each sees exactly its own ten documents.
    let found_a = docs(&a.search(vector("a-1"), 100).await?);
    let found_b = docs(&b.search(vector("b-1"), 100).await?);
    assert_eq!(found_a.len(), 10, "{found_a:?}");
    assert!(found_a.iter().all(|d| d.starts_with("a-")), "{found_a:?}");
    assert_eq!(found_b.len(), 10, "{found_b:?}");
    assert!(found_b.iter().all(|d| d.starts_with("b-")), "{found_b:?}");
    assert_eq!((ids_a.len(), ids_b.len()), (10, 10));
    worker_a.shutdown().await;
    worker_b.shutdown().await;
    a.finish().await?;
    b.finish().await?;
    Ok(())
}

#[tokio::test]
async fn a_shared_queue_id_lets_another_tests_worker_take_your_jobs() -> TestResult {
    // The seed bug, on purpose: test B's worker consumes test A's queue (as when both used one
    // global queue), and A's documents land in B's project.
    let a = TestEnv::builder("shared_queue_a")
        .vector_size(DIM)
        .build()
        .await?;
    let b = TestEnv::builder("shared_queue_b")
        .vector_size(DIM)
        .build()
        .await?;
    a.queue()
        .enqueue_many(
            &(0..5)
                .map(|i| NewJob::new(json!({ "doc": format!("a-{i}") })))
                .collect::<Vec<_>>(),
        )
        .await?;

    let shared = Queue::new(b.pool().clone(), a.queue_id().clone());
    let handler = indexer(b.qdrant().clone(), b.project().to_owned());
    loop {
        let Some(job) = shared.claim(1, "b-worker").await?.pop() else {
            break;
        };
        let lease = job.lease();
        handler(job).await.map_err(|f| anyhow::anyhow!(f.message))?;
        shared.complete(&lease).await?;
    }

    let in_b = docs(&b.search(vector("a-1"), 100).await?);
    let in_a = docs(&a.search(vector("a-1"), 100).await?);
    assert_eq!(
        in_b,
        ["a-0", "a-1", "a-2", "a-3", "a-4"],
        "cross-talk: B's worker stored A's jobs"
    );
    assert!(in_a.is_empty(), "A never got its own results: {in_a:?}");
    a.finish().await?;
    // And the isolation check names the culprit: B claimed and completed another test's rows.
    let err = b
        .finish()
        .await
        .expect_err("B's claims of A's rows must fail B");
    assert!(
        err.to_string().contains("update(s) of queue rows of queue"),
        "{err}"
    );
    Ok(())
}
