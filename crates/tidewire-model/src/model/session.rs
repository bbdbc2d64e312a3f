//! Predictions about the connection and the session rather than a stream:
//! session parameters and what the `welcome` says of them, compression
//! offers, liveness, bound endpoints, required mode and an application's
//! own error codes (sections 2.6, 2.7, 5.7, 5.8, 6.1, 6.3 and 17.1).

use super::*;
use crate::{BadParameter, HandshakeCheck, Omitted};

/// The bound the session check states: far above any message its ping and
/// welcome produce, so that both must come whole (TW-SESSION-5), and over
/// the least a client may state.
const SESSION_BOUND: u64 = 65536;

/// A feature name in the namespace of implementations' own, which no server
/// of this revision supports: the `welcome` must not echo it (TW-SESSION-2).
const UNSUPPORTED_FEATURE: &str = "x-tidewire_prop";

/// How much longer than a connection-rate window a case waits for the
/// handshakes before it to leave the window.
const CONNECT_WINDOW_MARGIN_MS: u64 = 100;

/// The collection whose records the application of `xerr_url` validates.
const VALIDATED_COLLECTION: &str = "xerr-validated";

impl Model {
    /// Opens the side connection `name` with the handshake options `extra`
    /// (`url`, `query`, `headers`, ...) added to the usual ones.
    fn open_with(&mut self, name: &str, extra: Value) {
        let mut open = json!({
            "step": "open",
            "conn": name,
            "subprotocols": ["tidewire.v1"],
            "ignore": [{"type": "heartbeat"}],
        });
        open.as_object_mut()
            .expect("a step is an object")
            .extend(extra.as_object().expect("options are an object").clone());
        self.steps.push(open);
    }

    fn expect_on(&mut self, name: &str, pattern: Value) {
        self.steps
            .push(json!({"step": "expect", "conn": name, "match": pattern}));
    }

    pub(super) fn apply_handshake(&mut self, id: &str, check: HandshakeCheck) {
        let name = format!("{id}-session");
        match check {
            HandshakeCheck::Session => {
                self.open_with(
                    &name,
                    json!({
                        "query": {
                            "max_message_bytes": SESSION_BOUND.to_string(),
                            "features": format!("parts,{UNSUPPORTED_FEATURE}"),
                            "client": "tidewire-prop/1",
                        },
                        // No join: a part where the whole message is due fails.
                        "max_message_bytes": SESSION_BOUND,
                    }),
                );
                let at_least_one = json!({"$type": "integer", "$gte": 1});
                self.expect_on(
                    &name,
                    json!({
                        "type": "welcome",
                        "features": {"$contains": ["parts"]},
                        "session": {"max_message_bytes": SESSION_BOUND, "features": ["parts"]},
                        "liveness": {
                            "ping_interval_ms": at_least_one,
                            "ping_timeout_ms": at_least_one,
                        },
                    }),
                );
                self.send_on(
                    &name,
                    json!({"type": "ping", "id": id, "payload": "within the bound"}),
                );
                self.expect_on(
                    &name,
                    json!({"type": "pong", "id": id, "payload": "within the bound"}),
                );
                self.steps.push(json!({"step": "close", "conn": name}));
            }
            HandshakeCheck::Parts => {
                self.open_with(
                    &name,
                    json!({
                        "query": {"max_message_bytes": PARTS_BOUND.to_string(), "features": "parts"},
                        "max_message_bytes": PARTS_BOUND,
                        "join": {"match": {"type": "part"}, "data": "/data", "last": "/last"},
                    }),
                );
                self.expect_on(
                    &name,
                    json!({"type": "welcome", "session": {"max_message_bytes": PARTS_BOUND}}),
                );
                // The payload alone is longer than the bound, so the pong is too.
                let payload = "x".repeat(PARTS_BOUND as usize + 100);
                self.send_on(&name, json!({"type": "ping", "id": id, "payload": payload}));
                self.expect_on(&name, json!({"type": "pong", "id": id, "payload": payload}));
                self.steps.push(json!({"step": "close", "conn": name}));
            }
            HandshakeCheck::BadParameter(bad) => {
                let query = match bad {
                    BadParameter::BoundTooSmall => json!({
                        "max_message_bytes":
                            (tidewire_protocol::session::MIN_MAX_MESSAGE_BYTES - 1).to_string(),
                    }),
                    BadParameter::BoundNotDecimal => json!({"max_message_bytes": "4k"}),
                    BadParameter::FeatureNotAName => json!({"features": "parts,Not A Name"}),
                    BadParameter::EmptyClient => json!({"client": ""}),
                };
                self.steps.push(json!({
                    "step": "open",
                    "conn": name,
                    "subprotocols": ["tidewire.v1"],
                    "query": query,
                    "expect_refusal": {"status": 400},
                }));
            }
            HandshakeCheck::Deflate => {
                // The runner checks the answer at the handshake; it does not
                // compress, so the connection ends before any message.
                self.steps.push(json!({
                    "step": "open",
                    "conn": name,
                    "subprotocols": ["tidewire.v1"],
                    "headers": {"Sec-WebSocket-Extensions": "permessage-deflate"},
                }));
                self.steps.push(json!({"step": "close", "conn": name}));
            }
        }
    }

    /// The client answers Pings while it reads: over twice the announced
    /// bound it must stay (TW-LIVE-4). Once its answers are lost, the close
    /// must come within the bound, with half that again for timers (TW-LIVE-3).
    pub(super) fn apply_liveness(&mut self, id: &str) {
        let name = format!("{id}-live");
        let (interval, timeout) = (format!("{id}interval"), format!("{id}timeout"));
        self.open_with(&name, json!({"url": "${liveness_url}"}));
        self.expect_on(
            &name,
            json!({"type": "welcome", "liveness": {
                "ping_interval_ms": {"$type": "integer", "$gte": 1, "$capture": interval},
                "ping_timeout_ms": {"$type": "integer", "$gte": 1, "$capture": timeout},
            }}),
        );
        let bound = format!("${{{interval}}} + ${{{timeout}}}");
        self.steps.push(json!({
            "step": "expect_silence", "conn": name, "for_ms": format!("({bound}) * 2"),
        }));
        self.send_on(&name, json!({"type": "ping", "id": id}));
        self.expect_on(&name, json!({"type": "pong", "id": id}));
        self.steps
            .push(json!({"step": "stop_writing", "conn": name}));
        self.steps.push(json!({
            "step": "expect_close", "conn": name, "code": 4006,
            "within_ms": format!("({bound}) * 3 / 2"),
        }));
    }

    /// A connection bound to a collection of its own (TW-ENDPOINT-1..3).
    pub(super) fn apply_bound_endpoint(&mut self, id: &str) {
        let name = format!("{id}-bound");
        // A collection of the operation's own: the first create is its first.
        let bound = format!("{NONCE}-{id}-lib");
        self.open_with(&name, json!({"url": format!("${{libraries_url}}/{bound}")}));
        self.expect_on(
            &name,
            json!({"type": "welcome", "bound": {"database": ANY_STRING(), "collection": bound}}),
        );
        let create = format!("{id}-c");
        self.send_on(
            &name,
            json!({"type": "create", "id": create, "record": {"_id": "k", "n": 1}}),
        );
        self.expect_on(
            &name,
            json!({"type": "created", "id": create, "record": {"_id": "k", "n": 1}}),
        );
        let read = format!("{id}-r");
        self.send_on(&name, json!({"type": "read", "id": read, "record_id": "k"}));
        self.expect_on(
            &name,
            json!({
                "type": "records", "id": read,
                "records": [{"$literal": {"_id": "k", "n": 1}}], "total": 1, "count": 1,
            }),
        );
        self.send_on(
            &name,
            json!({
                "type": "create", "id": id, "collection": format!("{NONCE}-elsewhere"),
                "record": {"_id": "k"},
            }),
        );
        self.expect_on(
            &name,
            error_with(id, ErrorCode::InvalidMessage, json!({"path": "collection"})),
        );
        self.steps.push(json!({"step": "close", "conn": name}));
    }

    /// A `create` without the names a connection that is not bound must give
    /// (TW-ENDPOINT-4): refused, naming `database` when both are left out.
    pub(super) fn apply_unnamed_create(&mut self, conn: usize, id: &str, coll: u8, omit: Omitted) {
        let (database, collection_name, path) = match omit {
            Omitted::Database => (None, Some(coll_name(collection(coll))), "database"),
            Omitted::Collection => (Some(coll_name(DATABASE.into())), None, "collection"),
            Omitted::Both => (None, None, "database"),
        };
        self.send(
            conn,
            typed(Create {
                id: request_id(id.to_string()),
                database,
                collection: collection_name,
                record: Map::from_iter([("_id".to_string(), json!("unnamed"))]),
                idempotency_key: None,
            }),
            false,
        );
        self.expect(
            conn,
            error_with(id, ErrorCode::InvalidMessage, json!({"path": path})),
        );
    }

    /// A member whose `join` gives no display name shows the one its token
    /// names (TW-PRESENCE-2), and the welcome states the token's scopes
    /// (TW-SESSION-11).
    pub(super) fn apply_token_display_name(&mut self, id: &str) {
        let name = format!("{id}-named");
        let cid = format!("{id}_named_id");
        let room_name = format!("{NONCE}-{id}-named");
        self.open_with(
            &name,
            json!({"query": {"token": "${token_named}"}, "inject": false}),
        );
        self.expect_on(
            &name,
            json!({
                "type": "welcome",
                "connection_id": {"$capture": cid},
                "auth": {"principal": ANY_STRING(), "scopes": {"$type": "array"}},
            }),
        );
        self.send_on(
            &name,
            typed(Join {
                id: request_id(id.to_string()),
                room: super::name(room_name.clone()),
                role: Role::Participant,
                display_name: None,
                metadata: None,
                start_after: None,
            }),
        );
        self.expect_on(
            &name,
            json!({
                "type": "joined", "id": id, "room": room_name,
                "members": [{
                    "connection_id": format!("${{{cid}}}"),
                    "display_name": "${token_named_display_name}",
                }],
            }),
        );
        self.steps.push(json!({"step": "close", "conn": name}));
    }

    /// A server in `required` mode lists and serves `auth` (TW-SESSION-10),
    /// and states the timeout and the (empty) scopes of a connection that has
    /// not authenticated (TW-AUTH-8, TW-SESSION-11).
    pub(super) fn apply_required_mode(&mut self, id: &str) {
        let name = format!("{id}-required");
        self.open_with(
            &name,
            json!({"url": "${auth_required_url}", "inject": false}),
        );
        self.expect_on(
            &name,
            json!({
                "type": "welcome",
                "profiles": {"$contains": ["auth"]},
                "auth": {
                    "mode": "required",
                    "timeout_ms": {"$type": "integer", "$gte": 1},
                    "scopes": {"$type": "array"},
                },
            }),
        );
        self.send_on(
            &name,
            typed(tidewire_protocol::Auth {
                id: request_id(id.to_string()),
                token: "${token_admin}".into(),
            }),
        );
        self.expect_on(
            &name,
            json!({"type": "authenticated", "id": id, "principal": ANY_STRING(), "scopes": {"$type": "array"}}),
        );
        let ping = format!("{id}-p");
        self.send_on(&name, json!({"type": "ping", "id": ping}));
        self.expect_on(&name, json!({"type": "pong", "id": ping}));
        self.steps.push(json!({"step": "close", "conn": name}));
    }

    /// An application's refusal carries a code in the `x-` namespace and a
    /// retry class (TW-XERR-1, TW-XERR-2); which code and class are its own.
    pub(super) fn apply_application_error(&mut self, id: &str) {
        let name = format!("{id}-xerr");
        self.open_with(&name, json!({"url": "${xerr_url}"}));
        self.expect_on(&name, json!({"type": "welcome"}));
        self.send_on(
            &name,
            json!({
                "type": "create", "id": id, "database": DATABASE,
                "collection": VALIDATED_COLLECTION, "record": {"_id": "r", "name": 7},
            }),
        );
        self.expect_on(
            &name,
            json!({"type": "error", "id": id, "error": {
                "code": {"$type": "string", "$regex": "^x-[a-z0-9][a-z0-9_.-]{0,61}$"},
                "message": ANY_STRING(),
                "retry": {"$one_of": ["retryable", "terminal"]},
            }}),
        );
        self.steps.push(json!({"step": "close", "conn": name}));
    }

    /// A server no other client uses, after a pause of its window: its
    /// `attempts` handshakes are accepted, and the next one, within the same
    /// window, refused with 429 (TW-QUOTA-1, TW-QUOTA-2).
    pub(super) fn apply_connect_rate(&mut self, id: &str, attempts: u32, window_ms: u64) {
        // Every earlier handshake, refused ones included, then lies before
        // the window; the margin covers the two clocks' granularity.
        self.steps
            .push(json!({"step": "wait", "ms": window_ms + CONNECT_WINDOW_MARGIN_MS}));
        for i in 0..attempts {
            let name = format!("{id}-attempt{i}");
            self.open_with(&name, json!({"url": "${connect_burst_url}"}));
            self.expect_on(
                &name,
                json!({"type": "welcome", "limits": {"connect_rate": {
                    "attempts": attempts, "window_ms": window_ms,
                }}}),
            );
            self.steps.push(json!({"step": "close", "conn": name}));
        }
        self.steps.push(json!({
            "step": "open",
            "conn": format!("{id}-refused"),
            "url": "${connect_burst_url}",
            "subprotocols": ["tidewire.v1"],
            "expect_refusal": {"status": 429},
        }));
    }
}
