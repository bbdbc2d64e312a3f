//! Predictions of the topics profile: subscriptions and publications.

use super::*;

impl Model {
    pub(super) fn apply_subscribe(&mut self, conn: usize, id: &str, t: u8, min: Option<i64>) {
        let rid = request_id(id.to_string());
        let filter_json = min.map(|m| json!({"n": {"$gte": m}}));
        self.send(
            conn,
            typed(Subscribe {
                id: rid,
                topic: name(topic(t)),
                filter: wire_filter(&filter_json),
                start_after: None,
            }),
            false,
        );
        let var = self.fresh_var(conn, "s");
        self.expect(
            conn,
            json!({
                "type": "subscribed", "id": id,
                "subscription": {"$type": "string", "$capture": var},
            }),
        );
        self.subscriptions.push(Subscription {
            conn,
            var,
            kind: SubKind::Topic {
                topic: t,
                filter: evaluator(&filter_json),
            },
        });
    }

    pub(super) fn apply_publish(&mut self, conn: usize, id: &str, t: u8, n: i64) {
        let rid = request_id(id.to_string());
        let data = json!({"n": n});
        self.send(
            conn,
            typed(Publish {
                id: rid,
                topic: name(topic(t)),
                data: data.clone(),
            }),
            false,
        );
        let id_var = self.fresh_var(conn, "pub");
        let at_var = self.fresh_var(conn, "pubat");
        self.expect(
            conn,
            json!({
                "type": "published", "id": id, "topic": topic(t),
                "message_id": {"$type": "string", "$capture": id_var},
                "published_at": captured_timestamp(&at_var),
            }),
        );
        let pushes: Vec<(usize, Value)> = self
            .subscriptions
            .iter()
            .filter(|s| {
                matches!(&s.kind, SubKind::Topic { topic, filter }
                    if *topic == t && filter.matches(&data))
            })
            .map(|s| {
                // The publisher's own publication may arrive before the reply
                // that captures what it must repeat; its form is still checked.
                let (message_id, published_at) = if s.conn == conn {
                    (ANY_STRING(), timestamp())
                } else {
                    (
                        json!(format!("${{{id_var}}}")),
                        json!(format!("${{{at_var}}}")),
                    )
                };
                (
                    s.conn,
                    json!({
                        "type": "publication",
                        "subscription": format!("${{{}}}", s.var),
                        "topic": topic(t),
                        "message_id": message_id,
                        "publisher": ANY_STRING(),
                        "published_at": published_at,
                        "data": {"$literal": data},
                    }),
                )
            })
            .collect();
        for (c, p) in pushes {
            self.expect(c, p);
        }
    }
}
