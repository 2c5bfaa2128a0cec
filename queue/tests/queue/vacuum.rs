//! The queue table is compacted when the server's autovacuum leaves dead rows behind.

use std::time::{Duration, Instant};

use queue::maintenance::{vacuum_due, vacuum_if_bloated};
use queue::NewJob;
use serde_json::json;

use crate::helpers::{TestQueue, TestResult};

#[tokio::test]
async fn a_bloated_queue_table_is_vacuumed_and_its_bloated_indexes_rebuilt() -> TestResult {
    // Arrange: 200,000 dead row versions of this test's own queue, whose entries in the ready
    // index (over 8 MB) outlive a vacuum.
    let q = TestQueue::new(2).await?;
    let rows = vec![NewJob::new(json!({})); 1000];
    for _ in 0..200 {
        q.enqueue_many(&rows).await?;
    }
    q.purge().await?;
    let mut conn = q.pool.acquire().await?;

    // Act: statistics reach the server asynchronously, and another process may be compacting
    // the table at the same moment (then this one waits for it): wait until neither a vacuum is
    // due nor the ready index bloated.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut vacuumed_here = false;
    loop {
        vacuumed_here |= vacuum_if_bloated(&mut conn).await?;
        let ready_index: i64 =
            sqlx::query_scalar("SELECT pg_relation_size('queue_jobs_ready_idx')")
                .fetch_one(&mut *conn)
                .await?;
        if !vacuum_due(&mut conn).await? && ready_index <= 8 * 1024 * 1024 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 60 s queue_jobs is still due for a vacuum or its ready index holds \
             {ready_index} bytes (vacuumed here: {vacuumed_here})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert: compact now, so there is nothing left to do.
    assert!(
        !vacuum_if_bloated(&mut conn).await?,
        "compacted again although nothing was due"
    );
    Ok(())
}
