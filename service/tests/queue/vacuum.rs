//! The queue table is compacted when the server's autovacuum leaves dead rows behind.

use std::time::{Duration, Instant};

use serde_json::json;
use service::queue::{self, NewJob};

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

    // Act: statistics reach the server asynchronously; another process may vacuum first, which
    // ends the wait just as well.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut vacuumed_here = false;
    while queue::vacuum_due(&mut conn).await? {
        if queue::vacuum_if_bloated(&mut conn).await? {
            vacuumed_here = true;
            break;
        }
        assert!(
            Instant::now() < deadline,
            "queue_jobs stayed due for a vacuum for 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert
    assert!(
        !queue::vacuum_due(&mut conn).await?,
        "still due after a vacuum (vacuumed here: {vacuumed_here})"
    );
    assert!(
        !queue::vacuum_if_bloated(&mut conn).await?,
        "vacuumed although nothing was due"
    );
    let ready_index: i64 = sqlx::query_scalar("SELECT pg_relation_size('queue_jobs_ready_idx')")
        .fetch_one(&mut *conn)
        .await?;
    assert!(
        ready_index <= 8 * 1024 * 1024,
        "the ready index kept {ready_index} bytes (vacuumed here: {vacuumed_here})"
    );
    Ok(())
}
