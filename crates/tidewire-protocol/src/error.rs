//! The error registry: the one closed set of error codes a Tidewire server may
//! put in an `error` message, and the close-code table.
//!
//! Both tables are data so that the specification, the schemas and the
//! conformance suites can be checked against them instead of restating them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a client should do after an error or a close: the class every code
/// in the registry belongs to, so that clients need no guesswork.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Recovery {
    /// Sending the same request again (or reconnecting), after a back-off, can succeed.
    Retryable,
    /// Repeating the request unchanged fails again; the client must change
    /// something first (its input, its token, its snapshot).
    Terminal,
}

/// A code from the closed error registry of Tidewire v1.
///
/// A server MUST NOT send codes outside this set; a client that receives one
/// (from a later protocol version) treats it as `internal`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not a JSON object, lacks `type` or `id`, has a field of the
    /// wrong type, exceeds the nesting limit, or carries an invalid filter.
    InvalidMessage,
    /// The `type` is not a client message of Tidewire v1.
    UnknownType,
    /// The connection has not authenticated and the server requires it, or the
    /// token offered is invalid or expired.
    Unauthorized,
    /// The principal is authenticated but its scopes do not allow the operation.
    Forbidden,
    /// The record, subscription, room membership or other target does not exist.
    NotFound,
    /// The request contradicts current state: a record id already taken, or an
    /// edit against a stale document version.
    Conflict,
    /// The connection exceeded its message rate; `details.retry_after_ms` says when to retry.
    RateLimited,
    /// A per-connection limit other than rate (e.g. subscriptions) would be exceeded.
    LimitExceeded,
    /// A resume token can no longer be honoured (aged out of the journal, or
    /// from another epoch); the client must re-read a snapshot.
    HistoryLost,
    /// The message belongs to a profile this server does not implement.
    NotSupported,
    /// The server failed; the request may or may not have taken effect.
    Internal,
}

impl ErrorCode {
    /// Every code of the registry, in the order of the specification's table.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::InvalidMessage,
        ErrorCode::UnknownType,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::RateLimited,
        ErrorCode::LimitExceeded,
        ErrorCode::HistoryLost,
        ErrorCode::NotSupported,
        ErrorCode::Internal,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::LimitExceeded => "limit_exceeded",
            ErrorCode::HistoryLost => "history_lost",
            ErrorCode::NotSupported => "not_supported",
            ErrorCode::Internal => "internal",
        }
    }

    pub fn recovery(self) -> Recovery {
        match self {
            ErrorCode::RateLimited | ErrorCode::Internal => Recovery::Retryable,
            ErrorCode::InvalidMessage
            | ErrorCode::UnknownType
            | ErrorCode::Unauthorized
            | ErrorCode::Forbidden
            | ErrorCode::NotFound
            | ErrorCode::Conflict
            | ErrorCode::LimitExceeded
            | ErrorCode::HistoryLost
            | ErrorCode::NotSupported => Recovery::Terminal,
        }
    }
}

/// A member of `error.details` that the registry defines for a code.
#[derive(Debug, Clone, Copy)]
pub struct DetailMember {
    pub name: &'static str,
    /// The member's JSON Schema.
    pub schema: fn() -> serde_json::Value,
}

const PATH: DetailMember = DetailMember {
    name: "path",
    schema: || serde_json::json!({"type": "string", "description": "The location of the bad member (section 4.3) or filter part (section 15.9)."}),
};
const CURRENT_VERSION: DetailMember = DetailMember {
    name: "current_version",
    schema: || serde_json::json!({"type": "integer", "minimum": 0, "description": "On a stale `edit`: the document's current version."}),
};
const RETRY_AFTER_MS: DetailMember = DetailMember {
    name: "retry_after_ms",
    schema: || serde_json::json!({"type": "integer", "minimum": 0, "description": "Milliseconds after which the request may be sent again."}),
};
const LIMIT: DetailMember = DetailMember {
    name: "limit",
    schema: || serde_json::json!({"type": "string", "description": "The `welcome.limits` member that would be exceeded."}),
};

impl ErrorCode {
    /// The members of `error.details` the registry defines for this code. Each is
    /// optional; other members may follow (section 22).
    pub fn details(self) -> &'static [DetailMember] {
        match self {
            ErrorCode::InvalidMessage | ErrorCode::UnknownType => &[PATH],
            ErrorCode::Conflict => &[CURRENT_VERSION],
            ErrorCode::RateLimited => &[RETRY_AFTER_MS],
            ErrorCode::LimitExceeded => &[LIMIT],
            ErrorCode::Unauthorized
            | ErrorCode::Forbidden
            | ErrorCode::NotFound
            | ErrorCode::HistoryLost
            | ErrorCode::NotSupported
            | ErrorCode::Internal => &[],
        }
    }
}

/// Types `details` by `code` in the schema of the error object: one `if`/`then`
/// per code that defines members, so that a validator checks `details.path` of an
/// `invalid_message` as a string and `details.retry_after_ms` of a `rate_limited`
/// as an integer, and leaves every other member open.
pub(crate) fn details_by_code(schema: &mut schemars::Schema) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let rules: Vec<serde_json::Value> = ErrorCode::ALL
        .into_iter()
        .filter(|code| !code.details().is_empty())
        .map(|code| {
            let members: serde_json::Map<String, serde_json::Value> = code
                .details()
                .iter()
                .map(|member| (member.name.to_string(), (member.schema)()))
                .collect();
            serde_json::json!({
                "if": {"properties": {"code": {"const": code.as_str()}}, "required": ["code"]},
                "then": {"properties": {"details": {"properties": members}}}
            })
        })
        .collect();
    object.insert("allOf".into(), serde_json::Value::Array(rules));
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A WebSocket close code with the one meaning Tidewire gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// The session ended normally, by either side.
    Normal,
    /// The server is shutting down or restarting.
    GoingAway,
    /// A binary frame arrived; Tidewire v1 is JSON text only.
    UnsupportedData,
    /// A text frame was not valid UTF-8.
    InvalidPayload,
    /// Policy: authentication failed or timed out, origin refused, or repeated abuse.
    PolicyViolation,
    /// A frame exceeded the announced maximum message size.
    MessageTooBig,
    /// The server failed in a way that ended the connection.
    InternalError,
    /// The server is at its connection capacity.
    TryAgainLater,
    /// The token authenticating the connection expired and was not refreshed.
    AuthExpired,
    /// The connection's outbound queue overflowed; resume from the positions in
    /// the preceding `notice`.
    SlowConsumer,
    /// A frame broke RFC 6455 (unmasked, reserved bits or opcode, a stray
    /// continuation), or the client's close frame carried a code that may not
    /// be sent.
    ProtocolError,
    /// In `required` mode the connection did not authenticate in time.
    AuthTimeout,
    /// The handshake's `Origin` is not in the allow-list.
    OriginNotAllowed,
    /// The connection kept sending past twice its message rate.
    RateAbuse,
    /// The client did not answer the server's liveness pings in time.
    Unresponsive,
}

impl CloseCode {
    /// Every close code, in the order of the specification's table.
    pub const ALL: [CloseCode; 15] = [
        CloseCode::Normal,
        CloseCode::GoingAway,
        CloseCode::ProtocolError,
        CloseCode::UnsupportedData,
        CloseCode::InvalidPayload,
        CloseCode::PolicyViolation,
        CloseCode::MessageTooBig,
        CloseCode::InternalError,
        CloseCode::TryAgainLater,
        CloseCode::AuthExpired,
        CloseCode::SlowConsumer,
        CloseCode::AuthTimeout,
        CloseCode::OriginNotAllowed,
        CloseCode::RateAbuse,
        CloseCode::Unresponsive,
    ];

    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::UnsupportedData => 1003,
            CloseCode::InvalidPayload => 1007,
            CloseCode::PolicyViolation => 1008,
            CloseCode::MessageTooBig => 1009,
            CloseCode::InternalError => 1011,
            CloseCode::TryAgainLater => 1013,
            CloseCode::AuthExpired => 4001,
            CloseCode::SlowConsumer => 4002,
            CloseCode::ProtocolError => 1002,
            CloseCode::AuthTimeout => 4003,
            CloseCode::OriginNotAllowed => 4004,
            CloseCode::RateAbuse => 4005,
            CloseCode::Unresponsive => 4006,
        }
    }

    pub fn from_code(code: u16) -> Option<CloseCode> {
        CloseCode::ALL.into_iter().find(|c| c.code() == code)
    }

    /// A short name, used in close reasons and reports.
    pub fn name(self) -> &'static str {
        match self {
            CloseCode::Normal => "normal",
            CloseCode::GoingAway => "going_away",
            CloseCode::UnsupportedData => "unsupported_data",
            CloseCode::InvalidPayload => "invalid_payload",
            CloseCode::PolicyViolation => "policy_violation",
            CloseCode::MessageTooBig => "message_too_big",
            CloseCode::InternalError => "internal_error",
            CloseCode::TryAgainLater => "try_again_later",
            CloseCode::AuthExpired => "auth_expired",
            CloseCode::SlowConsumer => "slow_consumer",
            CloseCode::ProtocolError => "protocol_error",
            CloseCode::AuthTimeout => "auth_timeout",
            CloseCode::OriginNotAllowed => "origin_not_allowed",
            CloseCode::RateAbuse => "rate_abuse",
            CloseCode::Unresponsive => "unresponsive",
        }
    }

    pub fn recovery(self) -> Recovery {
        match self {
            CloseCode::GoingAway
            | CloseCode::InternalError
            | CloseCode::TryAgainLater
            | CloseCode::AuthExpired
            | CloseCode::SlowConsumer
            | CloseCode::AuthTimeout
            | CloseCode::RateAbuse
            | CloseCode::Unresponsive => Recovery::Retryable,
            CloseCode::Normal
            | CloseCode::UnsupportedData
            | CloseCode::InvalidPayload
            | CloseCode::PolicyViolation
            | CloseCode::MessageTooBig
            | CloseCode::ProtocolError
            | CloseCode::OriginNotAllowed => Recovery::Terminal,
        }
    }

    /// Whether the close reason of this code starts with a delay
    /// (`retry_after_ms=<n>`, section 18.1): the codes whose cause lasts a
    /// known time, so that a client waits that long instead of guessing.
    pub fn carries_delay(self) -> bool {
        matches!(self, CloseCode::RateAbuse)
    }

    /// A close reason carrying `retry_after_ms` first, then the text for humans.
    pub fn reason_with_delay(delay_ms: u64, text: &str) -> String {
        format!("{RETRY_AFTER_PREFIX}{delay_ms}; {text}")
    }
}

const RETRY_AFTER_PREFIX: &str = "retry_after_ms=";

/// The delay a close reason states (section 18.1), if it states one.
pub fn close_reason_delay(reason: &str) -> Option<u64> {
    let digits = reason.strip_prefix(RETRY_AFTER_PREFIX)?;
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let rest = &digits[end..];
    if end == 0 || !(rest.is_empty() || rest.starts_with(';')) {
        return None;
    }
    digits[..end].parse().ok()
}

/// Whether RFC 6455 (section 7.4) allows `code` in a close frame on the
/// wire. A client's close frame with any other code is answered with 1002
/// (section 18.2).
pub fn close_code_allowed_on_wire(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1013 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for code in ErrorCode::ALL {
            let wire = serde_json::to_value(code).unwrap();
            assert_eq!(wire, serde_json::Value::String(code.as_str().into()));
        }
    }

    #[test]
    fn close_codes_round_trip_and_are_distinct() {
        for close in CloseCode::ALL {
            assert_eq!(CloseCode::from_code(close.code()), Some(close));
        }
        let mut codes: Vec<u16> = CloseCode::ALL.iter().map(|c| c.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), CloseCode::ALL.len());
    }

    #[test]
    fn delays_read_back_from_the_reasons_that_carry_them() {
        let reason = CloseCode::reason_with_delay(1500, "rate limit abuse");
        assert_eq!(close_reason_delay(&reason), Some(1500));
        assert_eq!(close_reason_delay("retry_after_ms=7"), Some(7));
        assert_eq!(close_reason_delay("retry_after_ms=; x"), None);
        assert_eq!(close_reason_delay("retry_after_ms=12x"), None);
        assert_eq!(close_reason_delay("at capacity"), None);
    }

    #[test]
    fn every_server_close_code_may_be_sent() {
        for close in CloseCode::ALL {
            assert!(close_code_allowed_on_wire(close.code()), "{close:?}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1014, 1015, 2999, 5000, u16::MAX] {
            assert!(!close_code_allowed_on_wire(code), "{code}");
        }
    }
}
