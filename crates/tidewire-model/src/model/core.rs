//! Predictions of the core profile: ping, unsubscribe, heartbeats, the message
//! rate, reconnects and unknown types.

use super::*;
use crate::ShutdownHeld;

/// How long each step of a shutdown may take: the server decides when it
/// shuts down (the embedded one does once both connections are open), and
/// a graceful shutdown may give other work time to finish.
const SHUTDOWN_WAIT_MS: u64 = 10_000;

impl Model {
    /// A server shutting down tells every connection (`notice` with reason
    /// `shutting_down`), ends each subscription and membership with its own
    /// `ended` (a watch's with its `resume_token`), then closes with 1001
    /// (TW-CORE-33, TW-END-1, TW-END-2).
    pub(super) fn apply_shutdown(&mut self, id: &str, held: ShutdownHeld) {
        let holder = format!("{id}-holder");
        let other = format!("{id}-other");
        let scope = format!("{NONCE}-{id}-shutdown");
        self.side_connection_at(&holder, Some("shutdown_url"), json!({"type": "welcome"}));
        let mut ended = Vec::new();
        for i in 0..held.watches {
            let rid = format!("{id}-w{i}");
            let var = self.fresh_var(0, "sdw");
            self.exchange(
                &holder,
                json!({"type": "watch", "id": rid, "database": scope, "collection": format!("c{i}")}),
                json!({"type": "watching", "id": rid, "subscription": {"$type": "string", "$capture": var}}),
            );
            ended.push(json!({
                "type": "ended", "id": {"$absent": true}, "subscription": format!("${{{var}}}"),
                "room": {"$absent": true}, "reason": "shutting_down", "resume_token": {"$type": "string"},
            }));
        }
        for i in 0..held.subscriptions {
            let rid = format!("{id}-s{i}");
            let var = self.fresh_var(0, "sds");
            self.exchange(
                &holder,
                json!({"type": "subscribe", "id": rid, "topic": format!("{scope}-{i}")}),
                json!({"type": "subscribed", "id": rid, "subscription": {"$type": "string", "$capture": var}}),
            );
            ended.push(json!({
                "type": "ended", "id": {"$absent": true}, "subscription": format!("${{{var}}}"),
                "room": {"$absent": true}, "reason": "shutting_down",
            }));
        }
        for i in 0..held.rooms {
            let rid = format!("{id}-j{i}");
            let room_name = format!("{scope}-{i}");
            self.exchange(
                &holder,
                participant_join(rid.clone(), room_name.clone()),
                json!({"type": "joined", "id": rid}),
            );
            ended.push(json!({
                "type": "ended", "id": {"$absent": true}, "subscription": {"$absent": true},
                "room": room_name, "reason": "shutting_down",
            }));
        }
        self.side_connection_at(&other, Some("shutdown_url"), json!({"type": "welcome"}));
        let notice =
            json!({"type": "notice", "reason": "shutting_down", "message": {"$type": "string"}});
        for (conn, ended) in [(&holder, ended), (&other, Vec::new())] {
            self.steps.push(json!({"step": "expect", "conn": conn, "timeout_ms": SHUTDOWN_WAIT_MS, "match": notice}));
            if !ended.is_empty() {
                self.steps.push(json!({"step": "expect_all", "conn": conn, "timeout_ms": SHUTDOWN_WAIT_MS, "match": ended}));
            }
            self.steps.push(json!({"step": "expect_close", "conn": conn, "code": 1001, "within_ms": SHUTDOWN_WAIT_MS}));
        }
    }

    pub(super) fn apply_await_heartbeat(&mut self, id: &str, heartbeat_ms: u64) {
        // Heartbeats are not ignored here, and nothing else is sent:
        // the first frame after the welcome must be one, on time.
        let name = format!("{id}-idle");
        self.side_connection(
            &name,
            json!([]),
            json!({"type": "welcome", "heartbeat_ms": heartbeat_ms}),
        );
        self.steps.push(json!({
            "step": "expect",
            "conn": name,
            "timeout_ms": heartbeat_ms + HEARTBEAT_SLACK_MS,
            "match": {"type": "heartbeat", "at": timestamp()},
        }));
        self.steps.push(json!({"step": "close", "conn": name}));
    }

    pub(super) fn apply_flood(&mut self, id: &str, messages: u32) {
        // The replies to the allowed frames are ignored, not counted:
        // the frame one over the limit is the one that must be refused.
        let name = format!("{id}-flood");
        let allowed = format!("{id}-ok");
        self.side_connection(
            &name,
            json!([{"type": "heartbeat"}, {"type": "pong", "id": allowed}]),
            json!({"type": "welcome", "limits": {"rate": {"messages": messages}}}),
        );
        self.steps.push(json!({
            "step": "send", "conn": name, "repeat": messages,
            "json": {"type": "ping", "id": allowed},
        }));
        self.steps.push(json!({
            "step": "send", "conn": name, "json": {"type": "ping", "id": id},
        }));
        self.steps.push(json!({
            "step": "expect",
            "conn": name,
            "match": error_with(
                id,
                ErrorCode::RateLimited,
                json!({"retry_after_ms": {"$type": "integer", "$gte": 1}}),
            ),
        }));
        self.steps.push(json!({"step": "close", "conn": name}));
    }

    pub(super) fn apply_ping(&mut self, conn: usize, id: &str, payload: i64) {
        let rid = request_id(id.to_string());
        let mut ping = typed(Ping {
            id: rid,
            payload: Some(json!(payload)),
        });
        // TW-EXT-1: an extension member the server does not implement
        // changes nothing about the answer.
        ping["x-prop_trace"] = json!({"n": payload});
        self.send(conn, ping, false);
        self.expect(conn, json!({"type": "pong", "id": id, "payload": payload}));
    }

    pub(super) fn apply_unsubscribe(&mut self, conn: usize, id: &str, nth: u8) {
        let rid = request_id(id.to_string());
        let own: Vec<usize> = self
            .subscriptions
            .iter()
            .enumerate()
            .filter(|(_, s)| s.conn == conn)
            .map(|(i, _)| i)
            .collect();
        if own.is_empty() {
            self.send(
                conn,
                typed(Unsubscribe {
                    id: rid,
                    subscription: "no-such-subscription".into(),
                }),
                false,
            );
            self.expect(conn, error(id, ErrorCode::NotFound));
            return;
        }
        let sub = self.subscriptions.remove(own[nth as usize % own.len()]);
        let reference = format!("${{{}}}", sub.var);
        self.send(
            conn,
            typed(Unsubscribe {
                id: rid,
                subscription: reference.clone(),
            }),
            false,
        );
        self.expect(
            conn,
            json!({"type": "unsubscribed", "id": id, "subscription": reference}),
        );
    }

    pub(super) fn apply_reconnect(&mut self, conn: usize, id: &str) {
        self.subscriptions.retain(|s| s.conn != conn);
        let rooms: Vec<(u8, Role)> = self
            .rooms
            .iter()
            .filter_map(|(r, m)| {
                m.iter()
                    .find(|(c, _)| *c == conn)
                    .map(|(_, role)| (*r, *role))
            })
            .collect();
        // No other member sees a lone member's departure, so no frame would
        // show when the server has processed it, and a join right after the
        // reconnect could rightly still list the old connection. Leaving
        // first, before the connection closes, makes the membership known.
        let (alone, shared): (Vec<_>, Vec<_>) = rooms
            .into_iter()
            .partition(|(r, _)| self.members(*r).len() == 1);
        for (r, _) in alone {
            self.apply_leave(conn, &format!("{id}-leave{r}"), r);
        }
        if !self.expected[conn].is_empty() {
            self.flush(conn);
        }
        for (r, role) in shared {
            self.rooms.entry(r).or_default().retain(|(c, _)| *c != conn);
            self.presence(r, conn, role, "left", Some("disconnected"));
        }
        self.generation[conn] += 1;
        self.open(conn, true);
    }

    pub(super) fn apply_unknown_type(&mut self, conn: usize, id: &str) {
        self.send(conn, json!({"type": "no_such_type", "id": id}), true);
        self.expect(conn, error(id, ErrorCode::UnknownType));
    }
}
