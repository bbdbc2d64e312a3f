//! Messages of the vector profile: similarity search over vectors stored in records.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::{CollectionName, RequestId};
use crate::types::*;

/// The most components a query vector may have (section 24).
pub const MAX_VECTOR_DIMENSIONS: usize = 4096;
/// The largest `k` of a `search` (section 24).
pub const MAX_SEARCH_K: u32 = 1000;
/// The largest magnitude of a vector component; beyond it scores could overflow.
pub const MAX_VECTOR_COMPONENT: f64 = 1e15;

/// Finds the `k` records whose vector at `field` is nearest to `vector` (profile vector).
/// Replied to with `search_results`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Search {
    pub id: RequestId,
    /// Required, except on an endpoint that binds the database (section 2.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<CollectionName>,
    /// Required, except on an endpoint that binds the collection (section 2.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<CollectionName>,
    /// The dotted path of the vector in each record.
    pub field: String,
    /// The query vector: 1 to 4096 numbers, each at most 1e15 in magnitude.
    #[schemars(length(min = 1, max = 4096), inner(range(min = -1e15, max = 1e15)))]
    #[serde(deserialize_with = "query_vector")]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::vector()")
    )]
    pub vector: Vec<f64>,
    /// How many records to return at most: 1 to 1000.
    #[schemars(range(min = 1, max = 1000))]
    #[serde(deserialize_with = "crate::lenient::small_integer")]
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "1u32..=1000"))]
    pub k: u32,
    pub metric: Metric,
    /// Only records that match are ranked; absent ranks every record with a vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Project each returned record to these dotted paths, as `read` does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
}

/// The reply to `search`: the nearest records, best first.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchResults {
    pub id: RequestId,
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "proptest::collection::vec(crate::arbitrary::scored_record(), 0..3)")
    )]
    pub results: Vec<ScoredRecord>,
}

/// Reads a query vector within the bounds its schema states (1 to
/// [`MAX_VECTOR_DIMENSIONS`] numbers, each at most [`MAX_VECTOR_COMPONENT`] in
/// magnitude), so that the decoder refuses exactly what the schema refuses; a
/// component out of bounds is reported at its own path (`vector[3]`).
fn query_vector<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
    use serde::de::Error;
    let vector = Vec::<Component>::deserialize(deserializer)?;
    if vector.is_empty() || vector.len() > MAX_VECTOR_DIMENSIONS {
        return Err(D::Error::invalid_length(vector.len(), &"1 to 4096 numbers"));
    }
    Ok(vector.into_iter().map(|c| c.0).collect())
}

struct Component(f64);

impl<'de> Deserialize<'de> for Component {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Component, D::Error> {
        let value = f64::deserialize(deserializer)?;
        if value.abs() > MAX_VECTOR_COMPONENT {
            return Err(serde::de::Error::invalid_value(
                serde::de::Unexpected::Float(value),
                &"a number at most 1e15 in magnitude",
            ));
        }
        Ok(Component(value))
    }
}
