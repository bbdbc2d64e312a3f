//! Messages of the records profile: creating, reading, updating and deleting records.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::{CollectionName, RequestId};
use crate::types::*;

/// Inserts a record (profile records). Replied to with `created`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Create {
    pub id: RequestId,
    /// Required, except on an endpoint that binds the database (section 2.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<CollectionName>,
    /// Required, except on an endpoint that binds the collection (section 2.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<CollectionName>,
    /// The record. A string `_id` names it; without one the server assigns an id.
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::object()")
    )]
    pub record: Object,
    /// Makes a retry safe: a repeat with the same key within the announced
    /// `welcome.idempotency_window_ms` gets the original reply and applies nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
}

/// Reads one record by id, or records by query (profile records). Replied to with `records`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Read {
    pub id: RequestId,
    /// Required, except on an endpoint that binds the database (section 2.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<CollectionName>,
    /// Required, except on an endpoint that binds the collection (section 2.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<CollectionName>,
    /// Read exactly this record; `not_found` when it does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Sort keys, most significant first; ties keep `_id` order.
    #[serde(
        default,
        deserialize_with = "crate::lenient::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sort: Vec<SortKey>,
    /// At most this many records (default 100; larger values are treated as 1000).
    #[schemars(range(max = crate::lenient::MAX_INTEGER))]
    #[serde(
        default,
        deserialize_with = "crate::lenient::optional_integer",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "proptest::option::of(0..=crate::lenient::MAX_INTEGER)")
    )]
    pub limit: Option<u64>,
    /// Skip this many matching records first.
    #[schemars(range(max = crate::lenient::MAX_INTEGER))]
    #[serde(
        default,
        deserialize_with = "crate::lenient::optional_integer",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "proptest::option::of(0..=crate::lenient::MAX_INTEGER)")
    )]
    pub offset: Option<u64>,
    /// Project each record to these dotted field paths; `_id` is always kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
}

/// Changes fields of a record (profile records). Replied to with `updated`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Update {
    pub id: RequestId,
    /// Required, except on an endpoint that binds the database (section 2.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<CollectionName>,
    /// Required, except on an endpoint that binds the collection (section 2.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<CollectionName>,
    pub record_id: String,
    /// Fields to set, by dotted path.
    #[serde(
        default,
        deserialize_with = "crate::lenient::null_as_default",
        skip_serializing_if = "Object::is_empty"
    )]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::object()")
    )]
    pub set: Object,
    /// Fields to remove, by dotted path.
    #[serde(
        default,
        deserialize_with = "crate::lenient::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub unset: Vec<String>,
    /// Makes a retry safe: a repeat with the same key within the announced
    /// `welcome.idempotency_window_ms` gets the original reply and applies nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
}

/// Removes a record (profile records). Replied to with `deleted`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Delete {
    pub id: RequestId,
    /// Required, except on an endpoint that binds the database (section 2.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<CollectionName>,
    /// Required, except on an endpoint that binds the collection (section 2.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<CollectionName>,
    pub record_id: String,
    /// Makes a retry safe: a repeat with the same key within the announced
    /// `welcome.idempotency_window_ms` gets the original reply and applies nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
}

/// The reply to `create`: the stored record, with its `_id`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Created {
    pub id: RequestId,
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::object()")
    )]
    pub record: Object,
    /// The commit's position in the journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}

/// The reply to `read`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Records {
    pub id: RequestId,
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "proptest::collection::vec(crate::arbitrary::object(), 0..3)")
    )]
    pub records: Vec<Object>,
    /// How many records matched before `offset` and `limit`.
    pub total: u64,
    /// How many records this reply carries.
    pub count: u64,
    /// The journal position the read reflects: every commit up to it and none after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}

/// The reply to `update`: the record after the change.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Updated {
    pub id: RequestId,
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::object()")
    )]
    pub record: Object,
    /// The commit's position in the journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}

/// The reply to `delete`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Deleted {
    pub id: RequestId,
    pub record_id: String,
    /// The commit's position in the journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}
