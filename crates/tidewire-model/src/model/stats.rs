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
