//! The queue table is compacted when the server's autovacuum leaves dead rows behind.

use std::time::{Duration, Instant};

use serde_json::json;
use service::queue::{self, NewJob};

use crate::helpers::{TestQueue, TestResult};

#[tokio::test]
async fn a_bloated_queue_table_is_vacuumed_and_is_then_no_longer_due() -> TestResult {
    // Arrange: 60,000 dead row versions of this test's own queue.
    let q = TestQueue::new(2).await?;
    let rows = vec![NewJob::new(json!({})); 1000];
    for _ in 0..60 {
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
    Ok(())
}
