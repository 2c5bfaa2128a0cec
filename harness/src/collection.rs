//! An environment's Qdrant collection: per slot (reused) or per test, readied at provisioning
//! and emptied (or deleted) at cleanup.

use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, Distance, FieldType, Filter, KeywordIndexParamsBuilder,
    VectorParamsBuilder,
};
use qdrant_client::Qdrant;

use crate::error::{boxed, HarnessError};
use crate::isolation::PROJECT_FIELD;

/// How an environment gets its Qdrant collection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CollectionMode {
    /// One collection per nextest slot, reused by the slot's next test (its points removed at
    /// acquire); measured faster, see `docs/harness.md`. Outside nextest this falls back to
    /// [`CollectionMode::PerTest`].
    #[default]
    PerSlot,
    /// A collection of its own, deleted at the end.
    PerTest,
}

impl CollectionMode {
    /// The mode as registered with the namespace.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CollectionMode::PerSlot => "per_slot",
            CollectionMode::PerTest => "per_test",
        }
    }

    /// The mode a namespace registered.
    pub(crate) fn from_registered(mode: &serde_json::Value) -> Self {
        if mode == "per_test" {
            CollectionMode::PerTest
        } else {
            CollectionMode::PerSlot
        }
    }
}

/// Makes `collection` ready for a new environment: a slot's collection is emptied of what a
/// killed previous holder left; a missing one is created with the project index. Returns whether
/// it was created.
pub(crate) async fn prepare(
    client: &Qdrant,
    collection: &str,
    size: u64,
    mode: CollectionMode,
) -> Result<bool, HarnessError> {
    let exists = mode == CollectionMode::PerSlot
        && client
            .collection_exists(collection)
            .await
            .map_err(|e| HarnessError::qdrant("checking the collection")(boxed(e)))?;
    if exists {
        // The slot's previous test normally removed its points; a killed one did not.
        let left = client
            .count(CountPointsBuilder::new(collection).exact(true))
            .await
            .map_err(|e| HarnessError::qdrant("counting leftovers")(boxed(e)))?
            .result
            .map(|r| r.count)
            .unwrap_or(0);
        if left > 0 {
            client
                .delete_points(
                    DeletePointsBuilder::new(collection)
                        .points(Filter::default())
                        .wait(true),
                )
                .await
                .map_err(|e| HarnessError::qdrant("removing leftovers")(boxed(e)))?;
        }
        return Ok(false);
    }
    client
        .create_collection(
            CreateCollectionBuilder::new(collection)
                .vectors_config(VectorParamsBuilder::new(size, Distance::Cosine)),
        )
        .await
        .map_err(|e| HarnessError::qdrant("creating the collection")(boxed(e)))?;
    client
        .create_field_index(
            CreateFieldIndexCollectionBuilder::new(collection, PROJECT_FIELD, FieldType::Keyword)
                .field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true))
                .wait(true),
        )
        .await
        .map_err(|e| HarnessError::qdrant("indexing the project field")(boxed(e)))?;
    Ok(true)
}

/// Removes what an environment put in Qdrant: its per-test collection, or its project's points in
/// the slot's collection. Also used by the reaper for dead environments.
pub(crate) async fn remove_points(
    client: &Qdrant,
    collection: &str,
    project: &str,
    mode: CollectionMode,
) -> Result<(), qdrant_client::QdrantError> {
    match mode {
        CollectionMode::PerTest => client.delete_collection(collection).await.map(|_| ()),
        CollectionMode::PerSlot => client
            .delete_points(
                DeletePointsBuilder::new(collection)
                    .points(Filter::must([Condition::matches(
                        PROJECT_FIELD,
                        project.to_owned(),
                    )]))
                    .wait(true),
            )
            .await
            .map(|_| ()),
    }
}
