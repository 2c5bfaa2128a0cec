//! Tenant checks for Qdrant requests.
//!
//! Multi-tenant collections keep every tenant's points together and tell them apart by a payload
//! field (the project); every read, count, scroll and delete-by-filter must then carry a `must`
//! match on that field, or it sees (or deletes) other tenants' points. A query that forgets it
//! passes when tests run one at a time and fails when they run in parallel.
//!
//! - [`Tenancy`]: what a Points request reads or deletes by filter: its collection and filters.
//!   Implemented for every request message of Qdrant's gRPC API that takes a filter; requests by
//!   point ids (get, upsert, delete by ids) have nothing to check.
//! - [`pinned_tenant`]: the tenant a filter pins, if it does.
//! - [`check_grpc`]: the same for an encoded gRPC request, by method path (for a proxy).
#![warn(missing_docs)]
#![forbid(unsafe_code)]

use prost::Message;
use qdrant_client::qdrant::condition::ConditionOneOf;
use qdrant_client::qdrant::points_selector::PointsSelectorOneOf;
use qdrant_client::qdrant::r#match::MatchValue;
use qdrant_client::qdrant::{
    ClearPayloadPoints, CountPoints, DeletePayloadPoints, DeletePointVectors, DeletePoints,
    DiscoverBatchPoints, DiscoverPoints, FacetCounts, Filter, PointsSelector, PrefetchQuery,
    QueryBatchPoints, QueryPointGroups, QueryPoints, RecommendBatchPoints, RecommendPointGroups,
    RecommendPoints, ScrollPoints, SearchBatchPoints, SearchMatrixPoints, SearchPointGroups,
    SearchPoints, SetPayloadPoints, UpdatePointVectors,
};

/// A request that reads or deletes points by filter.
pub trait Tenancy {
    /// The collection it works on.
    fn collection(&self) -> &str;
    /// Every filter that selects points (a batch has one per query, a query one per prefetch
    /// too); `None` where a query selects without a filter.
    fn filters(&self) -> Vec<Option<&Filter>>;
}

/// The tenant `filter` pins through `field`: the value of a top-level `must` keyword match on
/// it (or of a nested filter under `must`). A `should`, a `must_not` or another field does not
/// pin a tenant.
pub fn pinned_tenant<'f>(filter: Option<&'f Filter>, field: &str) -> Option<&'f str> {
    filter?
        .must
        .iter()
        .find_map(|condition| match &condition.condition_one_of {
            Some(ConditionOneOf::Field(f)) if f.key == field => {
                match f.r#match.as_ref().and_then(|m| m.match_value.as_ref()) {
                    Some(MatchValue::Keyword(value)) => Some(value.as_str()),
                    _ => None,
                }
            }
            Some(ConditionOneOf::Filter(nested)) => pinned_tenant(Some(nested), field),
            _ => None,
        })
}

/// What a request that does not pin a tenant is missing, or `None` when every filter pins one.
pub fn missing_tenant(request: &dyn Tenancy, field: &str) -> Option<String> {
    let unpinned = request
        .filters()
        .into_iter()
        .filter(|filter| pinned_tenant(*filter, field).is_none())
        .count();
    (unpinned > 0).then(|| {
        format!(
            "collection `{}` is tenant-scoped by `{field}`: every read, count, scroll and \
             delete by filter needs a `must` match on `{field}`, and {unpinned} filter(s) of \
             this request have none",
            request.collection()
        )
    })
}

macro_rules! single_filter {
    ($($request:ty),* $(,)?) => {$(
        impl Tenancy for $request {
            fn collection(&self) -> &str {
                &self.collection_name
            }
            fn filters(&self) -> Vec<Option<&Filter>> {
                vec![self.filter.as_ref()]
            }
        }
    )*};
}

single_filter!(
    SearchPoints,
    SearchPointGroups,
    ScrollPoints,
    CountPoints,
    RecommendPoints,
    RecommendPointGroups,
    DiscoverPoints,
    FacetCounts,
    SearchMatrixPoints,
);

macro_rules! batch {
    ($($request:ty => $field:ident),* $(,)?) => {$(
        impl Tenancy for $request {
            fn collection(&self) -> &str {
                &self.collection_name
            }
            fn filters(&self) -> Vec<Option<&Filter>> {
                self.$field.iter().flat_map(|query| query.filters()).collect()
            }
        }
    )*};
}

batch!(
    SearchBatchPoints => search_points,
    RecommendBatchPoints => recommend_points,
    DiscoverBatchPoints => discover_points,
    QueryBatchPoints => query_points,
);

fn with_prefetches<'q>(
    filter: Option<&'q Filter>,
    prefetch: &'q [PrefetchQuery],
) -> Vec<Option<&'q Filter>> {
    let mut filters = vec![filter];
    let mut stack: Vec<&PrefetchQuery> = prefetch.iter().collect();
    while let Some(query) = stack.pop() {
        filters.push(query.filter.as_ref());
        stack.extend(query.prefetch.iter());
    }
    filters
}

impl Tenancy for QueryPoints {
    fn collection(&self) -> &str {
        &self.collection_name
    }
    fn filters(&self) -> Vec<Option<&Filter>> {
        with_prefetches(self.filter.as_ref(), &self.prefetch)
    }
}

impl Tenancy for QueryPointGroups {
    fn collection(&self) -> &str {
        &self.collection_name
    }
    fn filters(&self) -> Vec<Option<&Filter>> {
        with_prefetches(self.filter.as_ref(), &self.prefetch)
    }
}

/// The filter of a selector that selects by filter; nothing to check for one by ids.
fn selector_filter(selector: Option<&PointsSelector>) -> Vec<Option<&Filter>> {
    match selector.and_then(|s| s.points_selector_one_of.as_ref()) {
        Some(PointsSelectorOneOf::Filter(filter)) => vec![Some(filter)],
        _ => Vec::new(),
    }
}

macro_rules! by_selector {
    ($($request:ty => $field:ident),* $(,)?) => {$(
        impl Tenancy for $request {
            fn collection(&self) -> &str {
                &self.collection_name
            }
            fn filters(&self) -> Vec<Option<&Filter>> {
                selector_filter(self.$field.as_ref())
            }
        }
    )*};
}

by_selector!(
    DeletePoints => points,
    ClearPayloadPoints => points,
    SetPayloadPoints => points_selector,
    DeletePayloadPoints => points_selector,
    DeletePointVectors => points_selector,
);

impl Tenancy for UpdatePointVectors {
    fn collection(&self) -> &str {
        &self.collection_name
    }
    fn filters(&self) -> Vec<Option<&Filter>> {
        // By ids; an update filter narrows them further and pins nothing on its own.
        Vec::new()
    }
}

/// A decoded gRPC request to check.
pub type Checked = Box<dyn Tenancy + Send>;

/// Decodes the request of gRPC method `path` (e.g. `/qdrant.Points/Search`) from its message
/// bytes (the frame's payload, after the 5-byte header) when it is one that reads or deletes by
/// filter; `Ok(None)` for every other method.
pub fn check_grpc(path: &str, message: &[u8]) -> Result<Option<Checked>, prost::DecodeError> {
    fn decode<T: Message + Default + Tenancy + Send + 'static>(
        message: &[u8],
    ) -> Result<Option<Checked>, prost::DecodeError> {
        Ok(Some(Box::new(T::decode(message)?)))
    }
    let Some(method) = path.strip_prefix("/qdrant.Points/") else {
        return Ok(None);
    };
    match method {
        "Search" => decode::<SearchPoints>(message),
        "SearchBatch" => decode::<SearchBatchPoints>(message),
        "SearchGroups" => decode::<SearchPointGroups>(message),
        "Scroll" => decode::<ScrollPoints>(message),
        "Count" => decode::<CountPoints>(message),
        "Recommend" => decode::<RecommendPoints>(message),
        "RecommendBatch" => decode::<RecommendBatchPoints>(message),
        "RecommendGroups" => decode::<RecommendPointGroups>(message),
        "Discover" => decode::<DiscoverPoints>(message),
        "DiscoverBatch" => decode::<DiscoverBatchPoints>(message),
        "Query" => decode::<QueryPoints>(message),
        "QueryBatch" => decode::<QueryBatchPoints>(message),
        "QueryGroups" => decode::<QueryPointGroups>(message),
        "Facet" => decode::<FacetCounts>(message),
        "SearchMatrixPairs" | "SearchMatrixOffsets" => decode::<SearchMatrixPoints>(message),
        "Delete" => decode::<DeletePoints>(message),
        "SetPayload" | "OverwritePayload" => decode::<SetPayloadPoints>(message),
        "DeletePayload" => decode::<DeletePayloadPoints>(message),
        "ClearPayload" => decode::<ClearPayloadPoints>(message),
        "DeleteVectors" => decode::<DeletePointVectors>(message),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qdrant_client::qdrant::{Condition, PointsIdsList};

    #[test]
    fn only_a_must_match_on_the_field_pins_a_tenant() {
        let own = Filter::must([Condition::matches("project", "p1".to_owned())]);
        let nested = Filter::must([Condition::from(own.clone())]);
        let should = Filter::should([Condition::matches("project", "p1".to_owned())]);
        let other = Filter::must([Condition::matches("lang", "rust".to_owned())]);
        assert_eq!(pinned_tenant(Some(&own), "project"), Some("p1"));
        assert_eq!(pinned_tenant(Some(&nested), "project"), Some("p1"));
        assert_eq!(pinned_tenant(Some(&should), "project"), None);
        assert_eq!(pinned_tenant(Some(&other), "project"), None);
        assert_eq!(pinned_tenant(None, "project"), None);
    }

    #[test]
    fn a_query_is_checked_with_its_prefetches_and_a_delete_by_ids_needs_nothing() {
        let own = Filter::must([Condition::matches("project", "p1".to_owned())]);
        let query = QueryPoints {
            collection_name: "c".into(),
            filter: Some(own.clone()),
            prefetch: vec![PrefetchQuery::default()],
            ..Default::default()
        };
        assert!(missing_tenant(&query, "project").is_some_and(|m| m.contains("1 filter(s)")));
        let by_ids = DeletePoints {
            collection_name: "c".into(),
            points: Some(PointsSelector {
                points_selector_one_of: Some(PointsSelectorOneOf::Points(PointsIdsList::default())),
            }),
            ..Default::default()
        };
        assert_eq!(missing_tenant(&by_ids, "project"), None);
        let encoded = query.encode_to_vec();
        let decoded = check_grpc("/qdrant.Points/Query", &encoded)
            .expect("decodes")
            .expect("checked");
        assert_eq!(decoded.collection(), "c");
        assert!(check_grpc("/qdrant.Points/Upsert", &[])
            .expect("ok")
            .is_none());
    }
}
