//! Messages of the core profile: ping, unsubscribe, and what every connection
//! receives (welcome, heartbeats, notices, errors).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::names::{Name, RequestId};
use crate::types::*;

/// Asks for a `pong` with the same `id` and `payload` (profile core).
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ping {
    pub id: RequestId,
    /// Any JSON value; echoed unchanged in the `pong`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "proptest::option::of(crate::arbitrary::json_not_null())")
    )]
    pub payload: Option<Value>,
}

/// Ends a watch or topic subscription (profile core). Replied to with `unsubscribed`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Unsubscribe {
    pub id: RequestId,
    pub subscription: SubscriptionId,
}

/// The first message on every connection: who the server is and what it offers.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Welcome {
    pub connection_id: String,
    /// Always `tidewire.v1` for this version.
    pub protocol: String,
    pub server: ServerInfo,
    pub profiles: Vec<Profile>,
    /// A `heartbeat` is sent after this many milliseconds without other server messages.
    #[schemars(range(min = 1))]
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "1..=u64::MAX"))]
    pub heartbeat_ms: u64,
    pub limits: Limits,
    pub auth: AuthInfo,
    /// When the server sent this push, by its clock (section 14.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<Timestamp>,
    /// The names this connection's endpoint binds (section 2.7); absent on an
    /// endpoint that binds none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<BoundScope>,
    /// How long, in milliseconds, the server remembers a write's `idempotency_key`;
    /// absent when the server does not honour keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_window_ms: Option<u64>,
    /// How the server checks that the client is alive (section 5.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<Liveness>,
    /// The optional features the server supports on this connection
    /// (section 5.7.3); absent when it supports none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// The session parameters the handshake stated, as the server applies
    /// them (section 5.7); absent when the handshake stated none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionInfo>,
    /// How much of each stream is kept for resuming. Optional (section 22).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
}

/// The liveness check the server runs on the connection (section 5.8).
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Liveness {
    /// A WebSocket Ping is sent at the latest after this many milliseconds
    /// without a frame from the client.
    #[schemars(range(min = 1))]
    pub ping_interval_ms: u64,
    /// A client that sends no frame within this many milliseconds after a
    /// Ping is closed with 4006.
    #[schemars(range(min = 1))]
    pub ping_timeout_ms: u64,
}

/// The handshake's session parameters as the server applies them (section 5.7).
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SessionInfo {
    /// The largest message, in bytes of JSON text, the server sends on this
    /// connection; longer messages arrive as `part`s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_bytes: Option<u64>,
    /// The features the client stated that the server also supports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

/// One piece of a server message longer than the client's
/// `max_message_bytes` (section 5.7.2): the message's JSON text is the
/// concatenation of the `data` of its parts, which are sent one after the
/// other with no other message between them.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Part {
    /// The position of this part in its message, from 0.
    pub index: u32,
    /// Whether this part completes the message.
    pub last: bool,
    /// The next piece of the message's JSON text.
    pub data: String,
}

/// The reply to `ping`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Pong {
    pub id: RequestId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "proptest::option::of(crate::arbitrary::json_not_null())")
    )]
    pub payload: Option<Value>,
}

/// Keeps idle connections alive and shows the server is live.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Heartbeat {
    pub at: Timestamp,
    /// When the server sent this push, by its clock (section 14.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<Timestamp>,
    /// The position of every live subscription of the connection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub progress: Vec<Progress>,
}

/// The failure reply to a request, or a report of a frame that could not be tied to one.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorMessage {
    /// The failed request's id; absent when the frame carried no usable id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    pub error: ErrorBody,
    /// When the server sent this push, by its clock (section 14.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<Timestamp>,
}

/// Something the client should know before the server acts on it.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Notice {
    pub reason: NoticeReason,
    pub message: String,
    /// For `slow_consumer`: where each watch subscription can resume.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub positions: Vec<SubscriptionPosition>,
    /// When the server sent this push, by its clock (section 14.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<Timestamp>,
}

/// The reply to `unsubscribe`. No push for the subscription follows it.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Unsubscribed {
    pub id: RequestId,
    pub subscription: SubscriptionId,
}

/// A subscription or room membership the server ended without the client asking.
/// Nothing for it follows; `unsubscribe` or `leave` naming it answers `not_found`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ended {
    /// The ended watch or topic subscription; absent when a room membership ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<SubscriptionId>,
    /// The room whose membership ended; absent when a subscription ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<Name>,
    pub reason: EndReason,
    /// For a watch: resuming after this token misses no matching change that was
    /// not delivered before this message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_token: Option<ResumeToken>,
    /// For a watch: the journal position `resume_token` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}
