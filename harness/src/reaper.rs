//! Removing what dead owners left: `Drop` does not run on SIGKILL or a nextest timeout kill, so
//! every new environment sweeps first.

use std::sync::Arc;

use qdrant_client::qdrant::{Condition, DeletePointsBuilder, Filter};
use qdrant_client::Qdrant;
use service::namespace::{self, GroupLock};
use sqlx::PgPool;

use crate::error::{boxed, HarnessError};
use crate::isolation::PROJECT_FIELD;
use crate::naming::PREFIX;

/// Reaps abandoned namespaces (their queue rows, their points or per-test collection), then the
/// per-slot collections of runs with no live environment. Returns how many namespaces it reaped.
pub(crate) async fn reap(
    pool: &PgPool,
    qdrant: &Arc<Qdrant>,
    own_run: Option<&str>,
) -> Result<usize, HarnessError> {
    let abandoned = namespace::reap_abandoned(pool, PREFIX)
        .await
        .map_err(|e| HarnessError::pg("reaping abandoned namespaces")(boxed(e)))?;
    for dead in &abandoned {
        let collection = dead.resources["collection"].as_str().unwrap_or_default();
        let project = dead.resources["project"].as_str().unwrap_or_default();
        if collection.is_empty() {
            continue;
        }
        // Best effort: the collection may be gone already, or on another Qdrant.
        let result = if dead.resources["mode"] == "per_test" {
            qdrant.delete_collection(collection).await.map(|_| ())
        } else {
            qdrant
                .delete_points(
                    DeletePointsBuilder::new(collection)
                        .points(Filter::must([Condition::matches(
                            PROJECT_FIELD,
                            project.to_owned(),
                        )]))
                        .wait(true),
                )
                .await
                .map(|_| ())
        };
        if let Err(err) = result {
            tracing::debug!(%collection, error = %err, "reaping a dead namespace's points");
        }
        tracing::info!(namespace = %dead.namespace, "reaped a namespace whose owner died");
    }
    reap_finished_runs(pool, qdrant, own_run).await?;
    Ok(abandoned.len())
}

/// Per-slot collections (`t_<run>_s<slot>d<dim>`) outlive their tests so the slot's next test reuses
/// them; once no environment of their run is alive, they go.
async fn reap_finished_runs(
    pool: &PgPool,
    qdrant: &Arc<Qdrant>,
    own_run: Option<&str>,
) -> Result<(), HarnessError> {
    let collections = qdrant
        .list_collections()
        .await
        .map_err(|e| HarnessError::qdrant("listing collections")(boxed(e)))?;
    for description in collections.collections {
        let Some(run) = slot_collection_run(&description.name) else {
            continue;
        };
        if Some(run) == own_run {
            continue;
        }
        let lock = GroupLock::try_acquire(pool, run)
            .await
            .map_err(|e| HarnessError::pg("locking a finished run")(boxed(e)))?;
        if let Some(lock) = lock {
            if let Err(err) = qdrant.delete_collection(&description.name).await {
                tracing::debug!(collection = %description.name, error = %err, "reaping a finished run's collection");
            }
            lock.release()
                .await
                .map_err(|e| HarnessError::pg("unlocking a finished run")(boxed(e)))?;
        }
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
