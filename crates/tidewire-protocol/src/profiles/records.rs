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
    pub database: CollectionName,
    pub collection: CollectionName,
    /// The record. A string `_id` names it; without one the server assigns an id.
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::object()")
    )]
    pub record: Object,
}

/// Reads one record by id, or records by query (profile records). Replied to with `records`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Read {
    pub id: RequestId,
    pub database: CollectionName,
    pub collection: CollectionName,
    /// Read exactly this record; `not_found` when it does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Sort keys, most significant first; ties keep `_id` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sort: Vec<SortKey>,
    /// At most this many records (default 100; larger values are treated as 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Skip this many matching records first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
    /// Project each record to these dotted field paths; `_id` is always kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
}

/// Changes fields of a record (profile records). Replied to with `updated`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Update {
    pub id: RequestId,
    pub database: CollectionName,
    pub collection: CollectionName,
    pub record_id: String,
    /// Fields to set, by dotted path.
    #[serde(default, skip_serializing_if = "Object::is_empty")]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::object()")
    )]
    pub set: Object,
    /// Fields to remove, by dotted path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<String>,
}

/// Removes a record (profile records). Replied to with `deleted`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Delete {
    pub id: RequestId,
    pub database: CollectionName,
    pub collection: CollectionName,
    pub record_id: String,
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
