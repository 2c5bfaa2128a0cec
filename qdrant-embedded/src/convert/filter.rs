//! gRPC filters to engine filters, through Qdrant's REST JSON form of a filter.

use qdrant_client::qdrant::{self as grpc, condition::ConditionOneOf, r#match::MatchValue};
use qdrant_edge::Filter;
use serde_json::{json, Map, Value as Json};

use super::{from_rest_json, point_id_json};
use crate::error::ApiError;

pub(crate) fn filter_from_grpc(filter: Option<&grpc::Filter>) -> Result<Option<Filter>, ApiError> {
    filter
        .map(|filter| filter_json(filter).and_then(from_rest_json))
        .transpose()
}

fn filter_json(filter: &grpc::Filter) -> Result<Json, ApiError> {
    let mut object = Map::new();
    // gRPC cannot tell an empty list from an absent one; Qdrant treats empty as absent.
    for (key, conditions) in [
        ("must", &filter.must),
        ("should", &filter.should),
        ("must_not", &filter.must_not),
    ] {
        if !conditions.is_empty() {
            object.insert(key.to_owned(), conditions_json(conditions)?);
        }
    }
    if let Some(min_should) = &filter.min_should {
        object.insert(
            "min_should".to_owned(),
            json!({
                "conditions": conditions_json(&min_should.conditions)?,
                "min_count": min_should.min_count,
            }),
        );
    }
    Ok(Json::Object(object))
}

fn conditions_json(conditions: &[grpc::Condition]) -> Result<Json, ApiError> {
    conditions
        .iter()
        .map(condition_json)
        .collect::<Result<Vec<_>, _>>()
        .map(Json::Array)
}

fn condition_json(condition: &grpc::Condition) -> Result<Json, ApiError> {
    let Some(one_of) = &condition.condition_one_of else {
        return Err(ApiError::BadInput("Condition is empty".to_owned()));
    };
    Ok(match one_of {
        ConditionOneOf::Field(field) => field_json(field)?,
        ConditionOneOf::IsEmpty(is_empty) => json!({ "is_empty": { "key": is_empty.key } }),
        ConditionOneOf::IsNull(is_null) => json!({ "is_null": { "key": is_null.key } }),
        ConditionOneOf::HasId(has_id) => {
            let ids = has_id
                .has_id
                .iter()
                .map(point_id_json)
                .collect::<Result<Vec<_>, _>>()?;
            json!({ "has_id": ids })
        }
        ConditionOneOf::Filter(filter) => filter_json(filter)?,
        ConditionOneOf::Nested(nested) => {
            let inner = match &nested.filter {
                Some(filter) => filter_json(filter)?,
                None => json!({}),
            };
            json!({ "nested": { "key": nested.key, "filter": inner } })
        }
        ConditionOneOf::HasVector(has_vector) => json!({ "has_vector": has_vector.has_vector }),
        ConditionOneOf::Slice(_) => {
            return Err(ApiError::Unsupported("The slice condition".to_owned()))
        }
    })
}

fn field_json(field: &grpc::FieldCondition) -> Result<Json, ApiError> {
    let mut object = Map::new();
    object.insert("key".to_owned(), json!(field.key));
    if let Some(value) = field.r#match.as_ref().and_then(|m| m.match_value.as_ref()) {
        object.insert("match".to_owned(), match_json(value)?);
    }
    if let Some(range) = &field.range {
        object.insert(
            "range".to_owned(),
            json!({ "lt": range.lt, "gt": range.gt, "gte": range.gte, "lte": range.lte }),
        );
    }
    if field.datetime_range.is_some() {
        return Err(ApiError::Unsupported(
            "The datetime range condition".to_owned(),
        ));
    }
    if let Some(bbox) = &field.geo_bounding_box {
        object.insert(
            "geo_bounding_box".to_owned(),
            json!({
                "top_left": geo_point_json(bbox.top_left.as_ref())?,
                "bottom_right": geo_point_json(bbox.bottom_right.as_ref())?,
            }),
        );
    }
    if let Some(radius) = &field.geo_radius {
        object.insert(
            "geo_radius".to_owned(),
            json!({ "center": geo_point_json(radius.center.as_ref())?, "radius": radius.radius }),
        );
    }
    if let Some(polygon) = &field.geo_polygon {
        let interiors = polygon
            .interiors
            .iter()
            .map(line_json)
            .collect::<Result<Vec<_>, _>>()?;
        let exterior = match &polygon.exterior {
            Some(line) => line_json(line)?,
            None => return Err(ApiError::BadInput("Geo polygon has no exterior".to_owned())),
        };
        object.insert(
            "geo_polygon".to_owned(),
            json!({ "exterior": exterior, "interiors": interiors }),
        );
    }
    if let Some(count) = &field.values_count {
        object.insert(
            "values_count".to_owned(),
            json!({ "lt": count.lt, "gt": count.gt, "gte": count.gte, "lte": count.lte }),
        );
    }
    if let Some(is_empty) = field.is_empty {
        object.insert("is_empty".to_owned(), json!(is_empty));
    }
    if let Some(is_null) = field.is_null {
        object.insert("is_null".to_owned(), json!(is_null));
    }
    if object.len() == 1 {
        return Err(ApiError::BadInput(format!(
            "At least one field condition must be specified for key `{}`",
            field.key
        )));
    }
    Ok(Json::Object(object))
}

fn match_json(value: &MatchValue) -> Result<Json, ApiError> {
    Ok(match value {
        MatchValue::Keyword(keyword) => json!({ "value": keyword }),
        MatchValue::Integer(integer) => json!({ "value": integer }),
        MatchValue::Boolean(boolean) => json!({ "value": boolean }),
        MatchValue::Text(text) => json!({ "text": text }),
        MatchValue::TextAny(text) => json!({ "text_any": text }),
        MatchValue::Phrase(phrase) => json!({ "phrase": phrase }),
        MatchValue::Keywords(keywords) => json!({ "any": keywords.strings }),
        MatchValue::Integers(integers) => json!({ "any": integers.integers }),
        MatchValue::ExceptKeywords(keywords) => json!({ "except": keywords.strings }),
        MatchValue::ExceptIntegers(integers) => json!({ "except": integers.integers }),
        MatchValue::Prefix(_) | MatchValue::Substring(_) => {
            return Err(ApiError::Unsupported(
                "Prefix and substring matching".to_owned(),
            ))
        }
    })
}

fn geo_point_json(point: Option<&grpc::GeoPoint>) -> Result<Json, ApiError> {
    point
        .map(|p| json!({ "lon": p.lon, "lat": p.lat }))
        .ok_or_else(|| ApiError::BadInput("Geo point is missing".to_owned()))
}

fn line_json(line: &grpc::GeoLineString) -> Result<Json, ApiError> {
    let points = line
        .points
        .iter()
        .map(|p| geo_point_json(Some(p)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({ "points": points }))
}
