//! Messages of the core profile: ping, unsubscribe, and what every connection
//! receives (welcome, heartbeats, notices, errors).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::names::RequestId;
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
    pub heartbeat_ms: u64,
    pub limits: Limits,
    pub auth: AuthInfo,
    /// How much of each stream is kept for resuming. Optional (section 22).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
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
}

/// The reply to `unsubscribe`. No push for the subscription follows it.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Unsubscribed {
    pub id: RequestId,
    pub subscription: SubscriptionId,
}
