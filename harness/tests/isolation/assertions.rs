//! Assertions on what was enqueued.

use harness::queue::NewJob;
use harness::{Enqueued, HarnessError, TestEnv};
use serde_json::json;

use crate::helpers::{TestResult, DIM};

#[tokio::test]
async fn assert_enqueued_matches_a_payload_subset_priority_and_schedule() -> TestResult {
    // Arrange
    let env = TestEnv::builder("assert_enqueued")
        .vector_size(DIM)
        .build()
        .await?;
    let at = chrono::Utc::now() + chrono::Duration::minutes(5);
    let id = env
        .queue()
        .enqueue(
            NewJob::new(json!({ "to": "a@example.com", "template": { "name": "welcome" } }))
                .priority(5)
                .run_at(at),
        )
        .await?;
    env.enqueue(json!({ "to": "b@example.com" })).await?;

    // Act and assert
    let found = env
        .assert_enqueued(
            Enqueued::payload(json!({ "template": { "name": "welcome" } }))
                .priority(5)
                .scheduled_at(at),
        )
        .await?;
    assert_eq!(found.iter().map(|j| j.id).collect::<Vec<_>>(), vec![id]);
    env.refute_enqueued(Enqueued::payload(json!({ "to": "c@example.com" })))
        .await?;
    assert_eq!(env.jobs().await?.len(), 2);
    env.finish().await?;
    Ok(())
}

#[tokio::test]
async fn a_failed_assertion_lists_what_was_enqueued() -> TestResult {
    // Arrange
    let env = TestEnv::builder("assert_fails")
        .vector_size(DIM)
        .build()
        .await?;
    let id = env.enqueue(json!({ "to": "a@example.com" })).await?;

    // Act
    let missing = env
        .assert_enqueued(Enqueued::payload(json!({ "to": "a@example.com" })).priority(9))
        .await;
    let present = env
        .refute_enqueued(Enqueued::payload(json!({ "to": "a@example.com" })))
        .await;

    // Assert: both fail, naming the job that is there.
    for result in [missing.map(drop), present] {
        let Err(HarnessError::Assertion(message)) = result else {
            panic!("the assertion passed: {result:?}");
        };
        assert!(
            message.contains(&format!("#{id} pending priority 0")),
            "{message}"
        );
        assert!(message.contains("a@example.com"), "{message}");
    }
    env.finish().await?;
    Ok(())
}
