//! Messages of the watch profile (and resume): subscriptions to record changes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::{CollectionName, RequestId};
use crate::types::*;

/// Subscribes to changes of every collection, one database, or one collection
/// (profiles watch and resume). Replied to with `watching`; `change` pushes follow.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Watch {
    pub id: RequestId,
    /// Absent: every database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<CollectionName>,
    /// Absent: every collection of `database`. Requires `database`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<CollectionName>,
    /// Evaluated against each change event as it appears on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// `$match` stages, all of which an event must pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(
            strategy = "proptest::option::of(proptest::collection::vec(crate::arbitrary::object(), 0..3))"
        )
    )]
    pub pipeline: Option<Vec<Object>>,
    /// Include the record after the change in update events.
    #[serde(
        default,
        deserialize_with = "crate::lenient::null_as_default",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub full_document: bool,
    /// Replay every matching change after this position, then continue live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_after: Option<ResumeToken>,
    /// Keep a live view of the records the filter and pipeline select: changes that
    /// move a record into, within or out of the selection, each labelled in
    /// `event.view`, with the record before the change where the client needs it.
    #[serde(
        default,
        deserialize_with = "crate::lenient::null_as_default",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub view: bool,
    /// Replay every matching change after this position, then continue live; the
    /// comparable form of `resume_after`, which it excludes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_after: Option<Position>,
}

/// The reply to `watch`. A barrier: every matching change committed after it is delivered.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Watching {
    pub id: RequestId,
    pub subscription: SubscriptionId,
    /// The journal position at the barrier; resuming from it misses nothing.
    pub resume_token: ResumeToken,
    /// True when `resume_after` or `start_after` was given and every change after it will
    /// be replayed without a gap. One that cannot be honoured is a `history_lost` error instead.
    pub resumed: bool,
    /// The journal position at the barrier; names the same point as `resume_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}

/// A change matching a watch subscription.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    pub subscription: SubscriptionId,
    pub event: ChangeEvent,
    /// When the server sent this push, by its clock (section 14.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<Timestamp>,
}
