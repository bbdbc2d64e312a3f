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
        self.expect(
            conn,
            json!({
                "type": "published", "id": id, "topic": topic(t),
                "message_id": ANY_STRING(), "published_at": ANY_STRING(),
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
                (
                    s.conn,
                    json!({
                        "$exact": true,
                        "type": "publication",
                        "subscription": format!("${{{}}}", s.var),
                        "topic": topic(t),
                        "message_id": ANY_STRING(),
                        "publisher": ANY_STRING(),
                        "published_at": ANY_STRING(),
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
