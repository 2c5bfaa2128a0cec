//! The rescuer: rows whose lease expired (their worker crashed or hung) become claimable again.

use crate::{JobId, Queue, QueueError};

/// Rescues one queue's expired leases; see [`Queue::rescue_expired`].
#[derive(Clone, Debug)]
pub struct Rescuer {
    queue: Queue,
}

impl Rescuer {
    /// The rescuer of `queue` (on its clock).
    pub fn new(queue: Queue) -> Self {
        Self { queue }
    }

    /// One rescue, unless another process is rescuing this queue right now (then `None`).
    pub async fn run_once(&self) -> Result<Option<Vec<JobId>>, QueueError> {
        let mut conn = self.queue.pool().acquire().await?;
        let key = format!("queue-rescue:{}", self.queue.id());
        if !super::try_lock(&mut conn, &key).await? {
            return Ok(None);
        }
        // On its lock's connection: a pool of one connection must not wait for a second.
        let rescued = self.queue.rescue_expired_with(&mut conn).await;
        super::unlock(&mut conn, &key).await?;
        rescued.map(Some)
    }
}
