//! One call gives a test its own queue on the shared database, removed when the test ends.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use queue::db;
use queue::{Clock, ManualClock, Queue, QueueConfig, QueueId};
use sqlx::{Connection, PgConnection, PgPool};

pub type TestResult = anyhow::Result<()>;

/// A queue of this test's own, with its rows deleted on drop (also after a panic).
pub struct TestQueue {
    pub queue: Queue,
    pub pool: PgPool,
    url: String,
    ids: Vec<QueueId>,
}

impl std::ops::Deref for TestQueue {
    type Target = Queue;
    fn deref(&self) -> &Queue {
        &self.queue
    }
}

pub async fn pool(max_connections: u32) -> anyhow::Result<(PgPool, String)> {
    let url = db::database_url_from_env();
    db::ensure_database(&url).await?;
    let pool = db::connect(&url, max_connections, Duration::from_secs(30)).await?;
    db::migrate(&pool).await?;
    Ok((pool, url))
}

pub fn unique_queue_id(label: &str) -> QueueId {
    let id = format!("t_{label}_{}", uuid::Uuid::new_v4().simple());
    QueueId::new(id).expect("generated queue ids are valid")
}

impl TestQueue {
    /// A fresh queue on the system clock.
    pub async fn new(max_connections: u32) -> anyhow::Result<Self> {
        let (pool, url) = pool(max_connections).await?;
        let id = unique_queue_id("q");
        Ok(Self {
            queue: Queue::new(pool.clone(), id.clone()),
            pool,
            url,
            ids: vec![id],
        })
    }

    /// A fresh queue on a manual clock, with the given config.
    pub async fn manual(config: QueueConfig) -> anyhow::Result<(Self, Arc<ManualClock>)> {
        let mut test = Self::new(4).await?;
        let (clock, handle) = Clock::manual(Utc::now());
        test.queue = test.queue.clone().with_clock(clock).with_config(config);
        Ok((test, handle))
    }

    /// Another queue on the same pool, also cleaned up.
    pub fn sibling(&mut self) -> Queue {
        let id = unique_queue_id("s");
        self.ids.push(id.clone());
        Queue::new(self.pool.clone(), id)
    }
}

impl Drop for TestQueue {
    fn drop(&mut self) {
        // Drop may run during unwinding inside the test's runtime: clean up on a thread of our own
        // with a plain connection.
        let url = self.url.clone();
        let ids: Vec<String> = self.ids.iter().map(|id| id.as_str().to_owned()).collect();
        let cleanup = std::thread::spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&url).await?;
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                queue::namespace::delete_queues(&mut conn, &ids).await?;
                conn.close().await?;
                anyhow::Ok(())
            })
        });
        if let Ok(Err(err)) = cleanup.join() {
            eprintln!("test queue cleanup failed: {err:#}");
        }
    }
}

/// Polls `check` every 20 ms until it is true; fails after a minute naming `what`.
pub async fn wait_until<F, Fut>(what: &str, mut check: F) -> TestResult
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !check().await? {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "timed out after 60 s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
