//! Messages of the topics profile: publish and subscribe.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::names::{Name, RequestId};
use crate::types::*;

/// Subscribes to a topic (profile topics). Replied to with `subscribed`; `publication` pushes follow.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Subscribe {
    pub id: RequestId,
    pub topic: Name,
    /// Evaluated against each publication's `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Replay every matching publication after this position, then continue live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_after: Option<Position>,
}

/// Publishes data to a topic (profile topics). Replied to with `published`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Publish {
    pub id: RequestId,
    pub topic: Name,
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::json()")
    )]
    pub data: Value,
    /// Makes a retry safe: a repeat with the same key within the announced
    /// `welcome.idempotency_window_ms` gets the original reply and publishes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
}

/// The reply to `subscribe`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Subscribed {
    pub id: RequestId,
    pub subscription: SubscriptionId,
    /// The topic's position at the barrier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// Present when `start_after` was given: true, the publications after it follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
}

/// The reply to `publish`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Published {
    pub id: RequestId,
    pub topic: Name,
    pub message_id: String,
    pub published_at: Timestamp,
    /// The publication's position in the topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}

/// Data published to a topic, sent to each subscription whose filter matches it.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Publication {
    pub subscription: SubscriptionId,
    pub topic: Name,
    pub message_id: String,
    pub publisher: String,
    pub published_at: Timestamp,
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::json()")
    )]
    pub data: Value,
    /// When the server sent this push, by its clock (section 14.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<Timestamp>,
    /// Who published it, so that a publisher recognises its own publications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// The publication's position in the topic, as in `published`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}
