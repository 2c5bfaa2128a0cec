//! Removing what dead owners left: `Drop` does not run on SIGKILL or a nextest timeout kill, so
//! every new environment sweeps first.

use crate::collection::{remove_points, CollectionMode};
use crate::error::HarnessError;
use crate::naming::PREFIX;
use crate::session::Session;

/// Reaps abandoned namespaces: their queue rows and registered data, and their points or
/// per-test collection. Returns how many namespaces it reaped. Runs on the harness's runtime.
pub(crate) async fn reap(session: &Session) -> Result<usize, HarnessError> {
    let abandoned = session.reap_abandoned().await?;
    let qdrant = session.qdrant();
    for dead in &abandoned {
        let collection = dead.resources["collection"].as_str().unwrap_or_default();
        let project = dead.resources["project"].as_str().unwrap_or_default();
        if collection.is_empty() {
            continue;
        }
        let mode = CollectionMode::from_registered(&dead.resources["mode"]);
        // Best effort: the collection may be gone already, or on another Qdrant.
        if let Err(err) = remove_points(qdrant, collection, project, mode).await {
            tracing::debug!(%collection, error = %err, "reaping a dead namespace's points");
        }
        tracing::info!(namespace = %dead.namespace, "reaped a namespace whose owner died");
    }
    Ok(abandoned.len())
}

/// Per-slot collections (`t_<run>_s<slot>d<dim>`) outlive their tests so the slot's next test
/// reuses them; once no environment of their run is alive, they go. Only collections this
/// database registered are candidates: another database sharing the Qdrant has its own runs,
/// whose liveness this database's locks cannot tell. Returns how many were deleted.
pub(crate) async fn sweep_finished_runs(session: &Session) -> Result<usize, HarnessError> {
    let qdrant = session.qdrant();
    let mut deleted = 0;
    for (collection, run) in session.collections_of_other_runs().await? {
        debug_assert!(run.starts_with(PREFIX));
        let removed = session
            .with_finished_run(&run, &collection, || async {
                match qdrant.delete_collection(&collection).await {
                    Ok(_) => true,
                    Err(err) => {
                        tracing::debug!(%collection, error = %err, "reaping a finished run's collection");
                        false
                    }
                }
            })
            .await?;
        deleted += usize::from(removed);
    }
    Ok(deleted)
}
