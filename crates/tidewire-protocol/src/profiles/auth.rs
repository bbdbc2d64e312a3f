//! Messages of the auth profile: in-band authentication.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::RequestId;
use crate::types::*;

/// Authenticates the connection, or refreshes its token without dropping
/// subscriptions (profile auth). Replied to with `authenticated`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Auth {
    pub id: RequestId,
    /// A static token or an HS256 JWT.
    pub token: String,
}

/// The reply to a successful `auth`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Authenticated {
    pub id: RequestId,
    pub principal: String,
    pub scopes: Vec<String>,
    /// When the token expires, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Milliseconds from this reply until the token expires, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
}
