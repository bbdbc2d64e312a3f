//! Messages of the collab profile: shared documents of a room.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::{Name, RequestId};
use crate::types::*;

/// Applies operations to a room's shared document at a known version (profile collab).
/// Replied to with `edit_applied`, or `conflict` when `version` is stale.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Edit {
    pub id: RequestId,
    pub room: Name,
    pub document: Name,
    /// The version the operations were made against.
    #[schemars(range(max = crate::lenient::MAX_INTEGER))]
    #[serde(deserialize_with = "crate::lenient::integer")]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "0..=crate::lenient::MAX_INTEGER")
    )]
    pub version: u64,
    /// The operations, applied in order; at least one.
    #[serde(deserialize_with = "crate::lenient::non_empty")]
    #[schemars(length(min = 1))]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(
            strategy = "proptest::collection::vec(proptest::arbitrary::any::<EditOp>(), 1..4)"
        )
    )]
    pub ops: Vec<EditOp>,
    /// Makes a retry safe: a repeat with the same key within the announced
    /// `welcome.idempotency_window_ms` gets the original reply and applies nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
}

/// Reads a room's shared document (profile collab). Replied to with `document`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GetDocument {
    pub id: RequestId,
    pub room: Name,
    pub document: Name,
}

/// The reply to an accepted `edit`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EditApplied {
    pub id: RequestId,
    pub room: Name,
    pub document: Name,
    /// The document's version after the edit.
    pub version: u64,
    /// The document's position after the edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}

/// An accepted edit; sent to the other members of the room.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DocumentEdit {
    pub room: Name,
    pub document: Name,
    /// The document's version after the edit.
    pub version: u64,
    pub author: Member,
    pub ops: Vec<EditOp>,
    /// When the server sent this push, by its clock (section 14.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<Timestamp>,
    /// The document's position after the edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// Who made the edit, so that a writer recognises its own edits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// The reply to `get_document`. A document never edited has version 0 and empty content.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Document {
    pub id: RequestId,
    pub room: Name,
    pub document: Name,
    pub version: u64,
    pub content: String,
    /// The document's position: the version read, in the document's epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}
