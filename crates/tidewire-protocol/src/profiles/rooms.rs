//! Messages of the rooms profile: membership, presence, posts, typing and history.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::member_info::{DisplayName, MemberMetadata};
use crate::names::{Name, RequestId};
use crate::types::*;

/// Joins a room (profile rooms). Replied to with `joined`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Join {
    pub id: RequestId,
    pub room: Name,
    #[serde(default, deserialize_with = "crate::lenient::null_as_default")]
    pub role: Role,
    /// The name to show for this member; absent: the token's, if it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<DisplayName>,
    /// Application metadata to show with this member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MemberMetadata>,
    /// Replay every room message after this position, then continue live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_after: Option<Position>,
}

/// Leaves a room (profile rooms). Replied to with `left`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Leave {
    pub id: RequestId,
    pub room: Name,
}

/// Posts a message to a room the connection has joined (profile rooms). Replied to with `posted`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Post {
    pub id: RequestId,
    pub room: Name,
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::json()")
    )]
    pub body: Value,
    /// Makes a retry safe: a repeat with the same key within the announced
    /// `welcome.idempotency_window_ms` gets the original reply and applies nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
}

/// Shows or clears this member's typing indicator (profile rooms). Replied to with `ack`.
/// Typing is ephemeral: it is not kept in history.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Typing {
    pub id: RequestId,
    pub room: Name,
    pub active: bool,
}

/// Pages back through a room's history (profile rooms). Replied to with `history_page`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct History {
    pub id: RequestId,
    pub room: Name,
    /// At most this many messages (default 50; larger values are treated as 500).
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
    /// Only messages older than this `message_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// Only messages before this position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_position: Option<Position>,
    /// Only messages after this position; the page is then the oldest of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_position: Option<Position>,
    /// Only messages sent at or after this instant; the page is then the oldest of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// Only messages sent before this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

/// The reply to `join`: the membership, with every member including this one.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Joined {
    pub id: RequestId,
    pub room: Name,
    pub role: Role,
    pub members: Vec<Member>,
    /// The room's position at the barrier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// Present when `start_after` was given: true, the messages after it follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
}

/// The reply to `leave`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Left {
    pub id: RequestId,
    pub room: Name,
}

/// A member joined or left a room; sent to the other members.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Presence {
    pub room: Name,
    pub action: PresenceAction,
    pub member: Member,
    /// On `left`: whether the member left or its connection dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<LeaveReason>,
    /// When the server sent this push, by its clock (section 14.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<Timestamp>,
}

/// The reply to `post`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Posted {
    pub id: RequestId,
    pub room: Name,
    pub message_id: String,
    pub sent_at: Timestamp,
    /// The message's position in the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}

/// A message posted to a room; sent to every member, the author included.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoomMessage {
    pub room: Name,
    pub message: ChatMessage,
    /// When the server sent this push, by its clock (section 14.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<Timestamp>,
}

/// A member's typing indicator changed; sent to the other members.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TypingNotice {
    pub room: Name,
    pub member: Member,
    pub active: bool,
    /// When the server sent this push, by its clock (section 14.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<Timestamp>,
}

/// The reply to a request that has nothing to return (`typing`).
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ack {
    pub id: RequestId,
}

/// The reply to `history`: messages oldest first.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HistoryPage {
    pub id: RequestId,
    pub room: Name,
    pub messages: Vec<ChatMessage>,
    /// True when older messages exist; page on with `before` set to the first `message_id`.
    pub has_more: bool,
}
