//! Messages of the stats profile: server and connection counters.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::RequestId;
use crate::types::*;

/// Asks for server and connection counters (profile stats). Replied to with `stats`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GetStats {
    pub id: RequestId,
}

/// The reply to `get_stats`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Stats {
    pub id: RequestId,
    pub server: ServerStats,
    pub connection: ConnectionStats,
}
