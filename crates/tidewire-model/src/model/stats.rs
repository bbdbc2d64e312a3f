//! Predictions of the stats profile: a connection's own gauges and counters
//! exactly, the server's bounded below by what the case holds open.

use super::*;

impl Model {
    pub(super) fn apply_stats(&mut self, conn: usize, id: &str) {
        self.send(
            conn,
            typed(tidewire_protocol::GetStats {
                id: request_id(id.to_string()),
            }),
            false,
        );
        let own_subscriptions = self.subscriptions.iter().filter(|s| s.conn == conn).count();
        let own_rooms = self
            .rooms
            .values()
            .filter(|members| members.iter().any(|(c, _)| *c == conn))
            .count();
        let rooms = self.rooms.values().filter(|m| !m.is_empty()).count();
        let at_least = |n: u64| json!({"$type": "integer", "$gte": n});
        // `messages_in` counts every text frame this connection sent, this
        // one included; `messages_out` everything predicted for it since its
        // welcome, but heartbeats come when they are due, so only as a bound.
        // Other clients of the server only add to its totals.
        let messages_in = self.sent[conn];
        let messages_out = self.received[conn];
        self.expect(
            conn,
            json!({
                "type": "stats",
                "id": id,
                "server": {
                    "connections": at_least(self.connections as u64),
                    "subscriptions": at_least(self.subscriptions.len() as u64),
                    "rooms": at_least(rooms as u64),
                    "messages_in": at_least(messages_in),
                    "messages_out": at_least(messages_out),
                    "uptime_ms": at_least(0),
                },
                "connection": {
                    "subscriptions": own_subscriptions,
                    "rooms": own_rooms,
                    "messages_in": messages_in,
                    "messages_out": at_least(messages_out),
                },
            }),
        );
    }
}

impl Model {
    /// Gauges of a server no other client uses (`stats_url`): each reading is
    /// exact relative to the first, taken on the same connection, since this
    /// connection makes every change in between. Connections are only
    /// bounded: a connection of an earlier case may still be closing.
    pub(super) fn apply_server_gauges(&mut self, id: &str, subscriptions: u8, rooms: u8) {
        let name = format!("{id}-gauges");
        self.steps.push(json!({
            "step": "open",
            "conn": name,
            "url": "${stats_url}",
            "subprotocols": ["tidewire.v1"],
            "ignore": [{"type": "heartbeat"}],
        }));
        // TW-METRICS-2: `stats.server.limits` are those a connection opened
        // now without a token gets, as this one was.
        let limit_vars = [
            "max_message_bytes",
            "max_nesting_depth",
            "max_subscriptions",
        ]
        .map(|limit| (limit, format!("{id}{limit}")));
        let captured_limits: Map<String, Value> = limit_vars
            .iter()
            .map(|(limit, var)| {
                (
                    limit.to_string(),
                    json!({"$type": "integer", "$capture": var}),
                )
            })
            .collect();
        let same_limits: Map<String, Value> = limit_vars
            .iter()
            .map(|(limit, var)| (limit.to_string(), json!({"$eq": format!("${{{var}}}")})))
            .collect();
        self.steps
            .push(json!({"step": "expect", "conn": name, "match": {
                "type": "welcome", "limits": captured_limits,
            }}));
        self.needs_stats_url = true;
        let (subs_var, rooms_var) = (format!("{id}subs"), format!("{id}rooms"));
        let total_var = format!("{id}total");
        let mut sent = 0u64;
        let mut request = |model: &mut Model, message: Value, reply: Value| {
            sent += 1;
            model.send_on(&name, message);
            model
                .steps
                .push(json!({"step": "expect", "conn": name, "match": reply}));
        };
        let reading = |tag: &str, subs: u8, rooms: u8, sent: u64| {
            let gauge = |var: &str, n: u8| {
                if tag == "base" {
                    json!({"$type": "integer", "$gte": 0, "$capture": var})
                } else {
                    json!({"$eq": format!("${{{var}}} + {n}")})
                }
            };
            // TW-METRICS-1: every connection that got a welcome counts,
            // the one opened and closed after the first reading too.
            let total = if tag == "base" {
                json!({"$type": "integer", "$gte": 1, "$capture": total_var})
            } else {
                json!({"$type": "integer", "$gte": format!("${{{total_var}}} + 1")})
            };
            json!({
                "type": "stats",
                "id": format!("{id}-{tag}"),
                "server": {
                    "connections": {"$type": "integer", "$gte": 1},
                    "subscriptions": gauge(&subs_var, subs),
                    "rooms": gauge(&rooms_var, rooms),
                    "connections_total": total,
                    "limits": same_limits,
                },
                "connection": {
                    "subscriptions": subs,
                    "rooms": rooms,
                    "messages_in": sent,
                },
            })
        };
        let get = |tag: &str| json!({"type": "get_stats", "id": format!("{id}-{tag}")});
        request(self, get("base"), reading("base", 0, 0, 1));
        let churn = format!("{id}-churn");
        self.steps.push(json!({
            "step": "open",
            "conn": churn,
            "url": "${stats_url}",
            "subprotocols": ["tidewire.v1"],
            "ignore": [{"type": "heartbeat"}],
        }));
        self.steps
            .push(json!({"step": "expect", "conn": churn, "match": {"type": "welcome"}}));
        self.steps.push(json!({"step": "close", "conn": churn}));
        let mut captured = Vec::new();
        for i in 0..subscriptions {
            let var = format!("{id}g{i}");
            request(
                self,
                json!({"type": "subscribe", "id": format!("{id}-s{i}"), "topic": format!("{NONCE}-g{i}")}),
                json!({"type": "subscribed", "id": format!("{id}-s{i}"), "subscription": {"$type": "string", "$capture": var}}),
            );
            captured.push(var);
        }
        for r in 0..rooms {
            request(
                self,
                json!({"type": "join", "id": format!("{id}-j{r}"), "room": format!("{NONCE}-g{r}")}),
                json!({"type": "joined", "id": format!("{id}-j{r}"), "room": format!("{NONCE}-g{r}")}),
            );
        }
        let held = 2 + u64::from(subscriptions) + u64::from(rooms);
        request(
            self,
            get("held"),
            reading("held", subscriptions, rooms, held),
        );
        for (i, var) in captured.iter().enumerate() {
            let subscription = format!("${{{var}}}");
            request(
                self,
                json!({"type": "unsubscribe", "id": format!("{id}-u{i}"), "subscription": subscription}),
                json!({"type": "unsubscribed", "id": format!("{id}-u{i}"), "subscription": subscription}),
            );
        }
        for r in 0..rooms {
            request(
                self,
                json!({"type": "leave", "id": format!("{id}-l{r}"), "room": format!("{NONCE}-g{r}")}),
                json!({"type": "left", "id": format!("{id}-l{r}"), "room": format!("{NONCE}-g{r}")}),
            );
        }
        request(
            self,
            get("released"),
            reading("released", 0, 0, 2 * held - 1),
        );
        self.steps.push(json!({"step": "close", "conn": name}));
    }
}
