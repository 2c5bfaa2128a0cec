//! Removing what dead owners left: `Drop` does not run on SIGKILL or a nextest timeout kill, so
//! every new environment sweeps first.

use crate::env::{remove_points, CollectionMode};
use crate::error::{boxed, HarnessError};
use crate::naming::PREFIX;
use crate::session::Session;

/// Reaps abandoned namespaces: their queue rows, and their points or per-test collection.
/// Returns how many namespaces it reaped. Runs on the harness's runtime.
pub(crate) async fn reap(session: &Session) -> Result<usize, HarnessError> {
    let abandoned = session.reap_abandoned().await?;
    let qdrant = session.qdrant();
    for dead in &abandoned {
        let collection = dead.resources["collection"].as_str().unwrap_or_default();
        let project = dead.resources["project"].as_str().unwrap_or_default();
        if collection.is_empty() {
            continue;
        }
        let mode = if dead.resources["mode"] == "per_test" {
            CollectionMode::PerTest
        } else {
            CollectionMode::PerSlot
        };
        // Best effort: the collection may be gone already, or on another Qdrant.
        if let Err(err) = remove_points(qdrant, collection, project, mode).await {
            tracing::debug!(%collection, error = %err, "reaping a dead namespace's points");
        }
        tracing::info!(namespace = %dead.namespace, "reaped a namespace whose owner died");
    }
    Ok(abandoned.len())
}

/// Per-slot collections (`t_<run>_s<slot>d<dim>`) outlive their tests so the slot's next test reuses
/// them; once no environment of their run is alive, they go. Once per process is enough: runs
/// end far less often than tests start.
pub(crate) async fn sweep_finished_runs(session: &Session) -> Result<(), HarnessError> {
    let qdrant = session.qdrant();
    let collections = qdrant
        .list_collections()
        .await
        .map_err(|e| HarnessError::qdrant("listing collections")(boxed(e)))?;
    for description in collections.collections {
        let Some(run) = slot_collection_run(&description.name) else {
            continue;
        };
        session
            .with_finished_run(run, || async {
                if let Err(err) = qdrant.delete_collection(&description.name).await {
                    tracing::debug!(collection = %description.name, error = %err, "reaping a finished run's collection");
                }
            })
            .await?;
    }
    Ok(())
}
/// `t_<run>` for a per-slot collection name `t_<run>_s<slot>[x<n>]d<dim>`.
pub(crate) fn slot_collection_run(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(PREFIX)?;
    let (run, slot) = rest.split_once("_s")?;
    let valid = !run.is_empty()
        && run.chars().all(|c| c.is_ascii_alphanumeric())
        && !slot.is_empty()
        && slot.starts_with(|c: char| c.is_ascii_digit())
        && slot
            .chars()
            .all(|c| c.is_ascii_digit() || c == 'x' || c == 'd');
    valid.then(|| &name[..PREFIX.len() + run.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_collections_are_recognised_and_others_are_not() {
        assert_eq!(
            slot_collection_run("t_6f1c0a4e92b14c3e_s12"),
            Some("t_6f1c0a4e92b14c3e")
        );
        assert_eq!(slot_collection_run("t_6f1c0a4e92b14c3e_s12_cabc"), None);
        assert_eq!(slot_collection_run("t_0a1b2c3d4e5f_c1234"), None);
        assert_eq!(slot_collection_run("code_chunks"), None);
        assert_eq!(slot_collection_run("t__s1"), None);
        assert_eq!(
            slot_collection_run("t_6f1c0a4e92b14c3e_s3x2"),
            Some("t_6f1c0a4e92b14c3e")
        );
    }
}
