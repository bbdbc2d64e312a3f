//! Predictions of the auth profile: handshake tokens, re-authentication and
//! what the scopes then allow, invalid and expiring tokens.

use super::*;

impl Model {
    pub(super) fn apply_out_of_scope(&mut self, id: &str, coll: u8) {
        let rid = request_id(id.to_string());
        let name = format!("{id}-narrow");
        self.steps.push(json!({
            "step": "open",
            "conn": name,
            "subprotocols": ["tidewire.v1"],
            "query": {"token": "${token_narrow}"},
            "inject": false,
            "ignore": [{"type": "heartbeat"}],
        }));
        self.steps
            .push(json!({"step": "expect", "conn": name, "match": {"type": "welcome"}}));
        self.send_on(
            &name,
            typed(Create {
                id: rid,
                database: Some(coll_name(DATABASE.into())),
                collection: Some(coll_name(collection(coll))),
                record: Map::from_iter([("_id".to_string(), json!("narrow"))]),
                idempotency_key: None,
            }),
        );
        self.steps.push(
            json!({"step": "expect", "conn": name, "match": error(id, ErrorCode::Forbidden)}),
        );
        self.steps.push(json!({"step": "close", "conn": name}));
    }
}

/// The scopes the run variable `token_reader` stands for: reading every
/// collection and subscribing to every topic, joining only `public-*` rooms,
/// writing and publishing nothing.
const READER_SCOPES: [&str; 3] = [
    "read:collection:*",
    "subscribe:topic:*",
    "join:room:public-*",
];

/// How much later than the announced bound a close may come: scheduling on
/// the server and the runner, and a JWT's expiry counted in whole seconds.
const CLOSE_SLACK_MS: u64 = 1000;

/// Who a connection of an auth scenario acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identity {
    Anonymous,
    Reader,
    Admin,
}

/// The state of an auth scenario's connection: its identity, and whether
/// it is in the scenario's room (its topic and watch subscriptions stay, as
/// every identity may keep them).
struct AuthSide {
    identity: Identity,
    in_room: bool,
    created: Vec<u8>,
}

impl AuthSide {
    /// Anonymous connections act with every scope (optional mode), as the
    /// model's main connections do; the admin token has every scope too.
    fn writes(&self) -> bool {
        self.identity != Identity::Reader
    }
}

impl Model {
    /// A connection that authenticates again and again (TW-AUTH-6, -7, -14,
    /// -15), with its scopes deciding what it may do next (TW-AUTH-11) and
    /// narrower scopes ending its room membership (TW-END-6), while another
    /// connection publishes to its topic and shares its room.
    pub(super) fn apply_reauth(&mut self, id: &str, handshake: bool, steps: &[AuthStep]) {
        let me = format!("{id}-auth");
        let peer = format!("{id}-peer");
        let topic_name = format!("{NONCE}-{id}-t");
        let room_name = format!("{NONCE}-{id}-room");
        // A database of its own: the main connections watch whole databases.
        let database = format!("{NONCE}-{id}-db");
        let coll = format!("{id}-auth");
        let reader = format!("{id}_reader");
        let admin = format!("{id}_admin");
        let mut known_reader = false;
        let mut known_admin = false;
        self.side_connection(
            &peer,
            json!([{"type": "heartbeat"}]),
            json!({"type": "welcome"}),
        );
        let mut open = json!({
            "step": "open",
            "conn": me,
            "subprotocols": ["tidewire.v1"],
            "inject": false,
            "ignore": [{"type": "heartbeat"}],
        });
        let mut welcome = json!({"type": "welcome"});
        if handshake {
            // TW-AUTH-2: the principal every later `authenticated` for the
            // same token must repeat.
            open["query"] = json!({"token": "${token_reader}"});
            // TW-SESSION-11: the welcome states the token's scopes.
            welcome["auth"] = json!({
                "principal": {"$type": "string", "$capture": reader},
                "scopes": {"$contains": READER_SCOPES},
            });
            known_reader = true;
        }
        self.steps.push(open);
        self.steps
            .push(json!({"step": "expect", "conn": me, "match": welcome}));
        let mut side = AuthSide {
            identity: if handshake {
                Identity::Reader
            } else {
                Identity::Anonymous
            },
            in_room: false,
            created: Vec::new(),
        };
        let topic_sub = format!("{id}_ts");
        let watch_sub = format!("{id}_ws");
        self.send_on(
            &me,
            typed(Subscribe {
                id: request_id(format!("{id}-s")),
                topic: name(topic_name.clone()),
                filter: None,
                start_after: None,
            }),
        );
        self.steps
            .push(json!({"step": "expect", "conn": me, "match": {
                "type": "subscribed", "id": format!("{id}-s"),
                "subscription": {"$type": "string", "$capture": topic_sub},
            }}));
        self.send_on(
            &me,
            watch_request(
                format!("{id}-w"),
                database.clone(),
                Some(coll.clone()),
                &None,
            ),
        );
        self.steps
            .push(json!({"step": "expect", "conn": me, "match": {
                "type": "watching", "id": format!("{id}-w"),
                "subscription": {"$type": "string", "$capture": watch_sub},
            }}));
        // The peer is in the room first, so that it sees the member come and go.
        self.send_on(
            &peer,
            participant_join(format!("{id}-pj"), room_name.clone()),
        );
        self.steps
            .push(json!({"step": "expect", "conn": peer, "match": {
                "type": "joined", "id": format!("{id}-pj"), "room": room_name,
            }}));
        let join = |model: &mut Model, side: &mut AuthSide, rid: String| {
            model.send_on(&me, participant_join(rid.clone(), room_name.clone()));
            if !side.writes() {
                model.steps.push(
                    json!({"step": "expect", "conn": me, "match": error(&rid, ErrorCode::Forbidden)}),
                );
                return;
            }
            model
                .steps
                .push(json!({"step": "expect", "conn": me, "match": {
                    "type": "joined", "id": rid, "room": room_name,
                }}));
            if !side.in_room {
                model
                    .steps
                    .push(json!({"step": "expect", "conn": peer, "match": {
                        "type": "presence", "room": room_name, "action": "joined",
                    }}));
            }
            side.in_room = true;
        };
        join(self, &mut side, format!("{id}-j"));
        for (i, step) in steps.iter().enumerate() {
            let rid = format!("{id}-{i}");
            match step {
                AuthStep::Reader | AuthStep::Admin => {
                    let (token, identity, var, known) = match step {
                        AuthStep::Reader => (
                            "${token_reader}",
                            Identity::Reader,
                            &reader,
                            &mut known_reader,
                        ),
                        _ => ("${token_admin}", Identity::Admin, &admin, &mut known_admin),
                    };
                    self.send_on(
                        &me,
                        typed(tidewire_protocol::Auth {
                            id: request_id(rid.clone()),
                            token: token.into(),
                        }),
                    );
                    if side.identity != Identity::Anonymous && side.identity != identity {
                        // TW-AUTH-15: another principal is refused, and the
                        // connection keeps what it was.
                        self.steps.push(json!({"step": "expect", "conn": me, "match": error(&rid, ErrorCode::Forbidden)}));
                        continue;
                    }
                    let principal = if *known {
                        json!(format!("${{{var}}}"))
                    } else {
                        json!({"$type": "string", "$capture": var})
                    };
                    *known = true;
                    let mut reply = json!({
                        "type": "authenticated", "id": rid, "principal": principal,
                        "expires_at": {"$absent": true}, "ttl_ms": {"$absent": true},
                    });
                    if identity == Identity::Reader {
                        reply["scopes"] = json!({"$contains": READER_SCOPES});
                    }
                    side.identity = identity;
                    if side.in_room && !side.writes() {
                        // TW-END-6: the reader may not join this room, so the
                        // membership ends, and the peer sees it end (section 5.9).
                        side.in_room = false;
                        self.steps
                            .push(json!({"step": "expect_all", "conn": me, "match": [
                                reply,
                                {"type": "ended", "room": room_name, "reason": "scopes_narrowed",
                                 "subscription": {"$absent": true}},
                            ]}));
                        self.steps.push(json!({"step": "expect", "conn": peer, "match": {
                            "type": "presence", "room": room_name, "action": "left", "reason": "ended",
                        }}));
                    } else {
                        self.steps
                            .push(json!({"step": "expect", "conn": me, "match": reply}));
                    }
                }
                AuthStep::Expired => {
                    self.send_on(
                        &me,
                        typed(tidewire_protocol::Auth {
                            id: request_id(rid.clone()),
                            token: "${jwt_expired}".into(),
                        }),
                    );
                    self.steps.push(json!({"step": "expect", "conn": me, "match": error(&rid, ErrorCode::Unauthorized)}));
                }
                AuthStep::Write { key: k } => {
                    let record_id = key(*k);
                    self.send_on(
                        &me,
                        typed(Create {
                            id: request_id(rid.clone()),
                            database: Some(coll_name(database.clone())),
                            collection: Some(coll_name(coll.clone())),
                            record: Map::from_iter([("_id".to_string(), json!(record_id))]),
                            idempotency_key: None,
                        }),
                    );
                    if !side.writes() {
                        self.steps.push(json!({"step": "expect", "conn": me, "match": error(&rid, ErrorCode::Forbidden)}));
                    } else if side.created.contains(k) {
                        self.steps.push(json!({"step": "expect", "conn": me, "match": error(&rid, ErrorCode::Conflict)}));
                    } else {
                        side.created.push(*k);
                        // The watch stays whatever the identity: every one of
                        // them may read the collection.
                        self.steps.push(json!({"step": "expect_all", "conn": me, "match": [
                            {"type": "created", "id": rid},
                            {"type": "change", "subscription": format!("${{{watch_sub}}}"),
                             "event": {"operation_type": "insert", "document_key": {"_id": record_id}}},
                        ]}));
                    }
                }
                AuthStep::Publish { n } => {
                    self.send_on(
                        &peer,
                        typed(Publish {
                            id: request_id(rid.clone()),
                            topic: name(topic_name.clone()),
                            data: json!({"n": n}),
                            idempotency_key: None,
                        }),
                    );
                    self.steps.push(json!({"step": "expect", "conn": peer, "match": {"type": "published", "id": rid}}));
                    self.steps
                        .push(json!({"step": "expect", "conn": me, "match": {
                            "type": "publication", "subscription": format!("${{{topic_sub}}}"),
                            "data": {"$literal": {"n": n}},
                        }}));
                }
                AuthStep::Join => join(self, &mut side, rid),
            }
        }
        for conn in [&me, &peer] {
            let fence = format!("{conn}-fence");
            self.send_on(conn, json!({"type": "ping", "id": fence}));
            self.steps.push(
                json!({"step": "expect", "conn": conn, "match": {"type": "pong", "id": fence}}),
            );
        }
        // The peer first: what its departure tells the other is not checked,
        // where the other's departure would reach the peer before its close.
        for conn in [&peer, &me] {
            self.steps.push(json!({"step": "close", "conn": conn}));
        }
    }

    /// A handshake with an invalid token: the upgrade completes and the
    /// server closes with 1008 `invalid token`, no `welcome` (TW-AUTH-3).
    pub(super) fn apply_invalid_handshake(&mut self, id: &str) {
        let name = format!("{id}-invalid");
        self.steps.push(json!({
            "step": "open",
            "conn": name,
            "subprotocols": ["tidewire.v1"],
            "query": {"token": "${jwt_expired}"},
            "inject": false,
        }));
        self.steps.push(json!({
            "step": "expect_close", "conn": name, "code": 1008,
            "reason": "^invalid token$", "within_ms": CLOSE_SLACK_MS,
        }));
    }

    /// A connection whose handshake token expires: `notice` token_expiring
    /// (TW-AUTH-16), `ended` token_expired for its subscription, then close
    /// 4001 (TW-AUTH-17, TW-END-2), each within the `ttl_ms` its `welcome`
    /// announced.
    pub(super) fn apply_expiry(&mut self, id: &str) {
        let conn = format!("{id}-expiring");
        let ttl = format!("{id}_ttl");
        let sub = format!("{id}_sub");
        self.steps.push(json!({
            "step": "open",
            "conn": conn,
            "subprotocols": ["tidewire.v1"],
            "query": {"token": "${jwt_expiring}"},
            "inject": false,
            "ignore": [{"type": "heartbeat"}],
        }));
        self.steps
            .push(json!({"step": "expect", "conn": conn, "match": {
                "type": "welcome",
                "auth": {
                    "principal": ANY_STRING(),
                    "expires_at": timestamp(),
                    "ttl_ms": {"$type": "integer", "$gte": 0, "$capture": ttl},
                },
            }}));
        self.send_on(
            &conn,
            typed(Subscribe {
                id: request_id(format!("{id}-s")),
                topic: name(format!("{NONCE}-{id}-t")),
                filter: None,
                start_after: None,
            }),
        );
        // The notice is due at once when less than the notice lead is left:
        // before or after the reply, as it comes.
        let bound = format!("${{{ttl}}} + {CLOSE_SLACK_MS}");
        self.steps.push(
            json!({"step": "expect_all", "conn": conn, "timeout_ms": bound, "match": [
                {"type": "subscribed", "id": format!("{id}-s"),
                 "subscription": {"$type": "string", "$capture": sub}},
                {"type": "notice", "reason": "token_expiring"},
            ]}),
        );
        self.steps.push(
            json!({"step": "expect", "conn": conn, "timeout_ms": bound, "match": {
                "type": "ended", "subscription": format!("${{{sub}}}"), "reason": "token_expired",
            }}),
        );
        self.steps.push(json!({
            "step": "expect_close", "conn": conn, "code": 4001, "within_ms": CLOSE_SLACK_MS,
        }));
    }

    /// A connection to a server in `required` mode that never authenticates
    /// is closed with 4003 once the `auth.timeout_ms` of its `welcome` has
    /// passed (TW-AUTH-8, TW-AUTH-10).
    pub(super) fn apply_auth_timeout(&mut self, id: &str) {
        let name = format!("{id}-unauthenticated");
        let timeout = format!("{id}_auth_timeout");
        self.steps.push(json!({
            "step": "open",
            "conn": name,
            "url": "${auth_required_url}",
            "subprotocols": ["tidewire.v1"],
            "inject": false,
            "ignore": [{"type": "heartbeat"}],
        }));
        self.steps.push(json!({"step": "expect", "conn": name, "match": {
            "type": "welcome",
            "auth": {"mode": "required", "timeout_ms": {"$type": "integer", "$gte": 1, "$capture": timeout}},
        }}));
        self.steps.push(json!({
            "step": "expect_close", "conn": name, "code": 4003,
            "within_ms": format!("${{{timeout}}} + {CLOSE_SLACK_MS}"),
        }));
    }
}
