//! Project-scoped Qdrant access, and the record of reads and writes that broke isolation.

use std::sync::{Arc, Mutex};

use qdrant_client::qdrant::condition::ConditionOneOf;
use qdrant_client::qdrant::r#match::MatchValue;
use qdrant_client::qdrant::{
    Condition, CountPoints, Filter, PointStruct, QueryPoints, QueryPointsBuilder, ScoredPoint,
    ScrollPoints, UpsertPointsBuilder,
};
use qdrant_client::Qdrant;

use crate::error::{boxed, HarnessError};

/// The payload field that names a point's project.
pub const PROJECT_FIELD: &str = "project";

/// One isolation breach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsolationViolation(pub String);

/// The environment's collection, seen through its project: helpers always filter by project,
/// checked calls record a breach when the request does not.
#[derive(Clone)]
pub struct ScopedQdrant {
    client: Arc<Qdrant>,
    collection: String,
    project: String,
    violations: Arc<Mutex<Vec<IsolationViolation>>>,
}

impl std::fmt::Debug for ScopedQdrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedQdrant")
            .field("collection", &self.collection)
            .field("project", &self.project)
            .finish_non_exhaustive()
    }
}

impl ScopedQdrant {
    pub(crate) fn new(client: Arc<Qdrant>, collection: String, project: String) -> Self {
        Self {
            client,
            collection,
            project,
            violations: Arc::default(),
        }
    }

    /// The filter every read of this environment must carry.
    pub fn project_filter(&self) -> Filter {
        Filter::must([Condition::matches(PROJECT_FIELD, self.project.clone())])
    }

    /// Nearest points of this project to `vector`, with payloads.
    pub async fn search(
        &self,
        vector: Vec<f32>,
        limit: u64,
    ) -> Result<Vec<ScoredPoint>, HarnessError> {
        let request = QueryPointsBuilder::new(&self.collection)
            .query(vector)
            .filter(self.project_filter())
            .limit(limit)
            .with_payload(true);
        let response = self
            .client
            .query(request)
            .await
            .map_err(|e| HarnessError::qdrant("search")(boxed(e)))?;
        Ok(response.result)
    }

    /// A query as the test writes it; recorded as a breach unless filtered by this project.
    pub async fn query(
        &self,
        request: impl Into<QueryPoints>,
    ) -> Result<Vec<ScoredPoint>, HarnessError> {
        let request = request.into();
        self.check_read("query", &request.collection_name, request.filter.as_ref());
        let response = self
            .client
            .query(request)
            .await
            .map_err(|e| HarnessError::qdrant("query")(boxed(e)))?;
        Ok(response.result)
    }

    /// A scroll as the test writes it; recorded as a breach unless filtered by this project.
    pub async fn scroll(
        &self,
        request: impl Into<ScrollPoints>,
    ) -> Result<Vec<qdrant_client::qdrant::RetrievedPoint>, HarnessError> {
        let request = request.into();
        self.check_read("scroll", &request.collection_name, request.filter.as_ref());
        let response = self
            .client
            .scroll(request)
            .await
            .map_err(|e| HarnessError::qdrant("scroll")(boxed(e)))?;
        Ok(response.result)
    }

    /// A count as the test writes it; recorded as a breach unless filtered by this project.
    pub async fn count(&self, request: impl Into<CountPoints>) -> Result<u64, HarnessError> {
        let request = request.into();
        self.check_read("count", &request.collection_name, request.filter.as_ref());
        let response = self
            .client
            .count(request)
            .await
            .map_err(|e| HarnessError::qdrant("count")(boxed(e)))?;
        Ok(response.result.map(|r| r.count).unwrap_or(0))
    }

    /// Points of this project, exactly counted.
    pub async fn count_project(&self) -> Result<u64, HarnessError> {
        self.count(
            qdrant_client::qdrant::CountPointsBuilder::new(&self.collection)
                .filter(self.project_filter())
                .exact(true),
        )
        .await
    }

    /// Upserts points (waiting for them); a point without this project in its payload is a breach.
    pub async fn upsert(&self, points: Vec<PointStruct>) -> Result<(), HarnessError> {
        for point in &points {
            let project = point
                .payload
                .get(PROJECT_FIELD)
                .and_then(|v| v.as_str().cloned());
            if project.as_deref() != Some(self.project.as_str()) {
                self.record(format!(
                    "upsert of a point whose `{PROJECT_FIELD}` is {project:?}, not {:?}",
                    self.project
                ));
            }
        }
        self.client
            .upsert_points(UpsertPointsBuilder::new(&self.collection, points).wait(true))
            .await
            .map_err(|e| HarnessError::qdrant("upsert")(boxed(e)))?;
        Ok(())
    }

    /// The client, unchecked (reads through it are not recorded).
    pub fn raw(&self) -> &Qdrant {
        &self.client
    }

    pub(crate) fn violations(&self) -> Vec<IsolationViolation> {
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn record(&self, what: String) {
        tracing::warn!(%what, "isolation breach");
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(IsolationViolation(what));
    }

    fn check_read(&self, call: &str, collection: &str, filter: Option<&Filter>) {
        if collection != self.collection {
            self.record(format!(
                "{call} on collection {collection:?}, not this test's {:?}",
                self.collection
            ));
        } else if !filter.is_some_and(|f| requires_project(f, &self.project)) {
            self.record(format!(
                "{call} on {collection:?} without a `must` match on {PROJECT_FIELD} = {:?}",
                self.project
            ));
        }
    }
}

/// True when `filter` can only match points of `project`: a top-level `must` keyword match.
fn requires_project(filter: &Filter, project: &str) -> bool {
    filter
        .must
        .iter()
        .any(|condition| match &condition.condition_one_of {
            Some(ConditionOneOf::Field(field)) => {
                field.key == PROJECT_FIELD
                    && matches!(
                        field.r#match.as_ref().and_then(|m| m.match_value.as_ref()),
                        Some(MatchValue::Keyword(k)) if k == project
                    )
            }
            Some(ConditionOneOf::Filter(nested)) => requires_project(nested, project),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_must_match_on_the_own_project_counts_as_filtered() {
        let own = Filter::must([Condition::matches(PROJECT_FIELD, "p1".to_owned())]);
        let other = Filter::must([Condition::matches(PROJECT_FIELD, "p2".to_owned())]);
        let should = Filter::should([Condition::matches(PROJECT_FIELD, "p1".to_owned())]);
        let nested = Filter::must([Condition::from(own.clone())]);
        assert!(requires_project(&own, "p1"));
        assert!(requires_project(&nested, "p1"));
        assert!(!requires_project(&other, "p1"));
        assert!(!requires_project(&should, "p1"));
        assert!(!requires_project(&Filter::default(), "p1"));
    }
}
