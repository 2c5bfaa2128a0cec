//! A worker that hung past its lease wakes up and tries to complete the job it had: the lease
//! check must refuse it (or, under `--sabotage complete-without-lease-check`, fails to).

use std::time::Duration;

use queue::Lease;

use super::Engine;

/// Sleeps `how_long`, then tries to complete `lease`'s job as `worker` would have.
pub(super) async fn wake_later(engine: Engine, lease: Lease, how_long: Duration, worker: String) {
    engine.counters.add_n("stalled_workers", 1);
    tokio::time::sleep(how_long).await;
    let result: Result<(), sqlx::Error> = async {
        let mut tx = engine.ops.workers_queue().pool().begin().await?;
        let accepted = engine.ops.complete_in(&mut tx, &[lease]).await?;
        if accepted.is_empty() {
            engine.counters.add_n("zombie_completion_rejected", 1);
        } else {
            engine.counters.add("zombie_completion_accepted", || {
                format!(
                    "job {} completed by {worker} after its lease had expired",
                    lease.id
                )
            });
            engine
                .record_done(&mut tx, &accepted, &["done".to_owned()], &worker)
                .await?;
        }
        tx.commit().await
    }
    .await;
    if let Err(err) = result {
        engine.count_error("zombie", &err);
    }
}
