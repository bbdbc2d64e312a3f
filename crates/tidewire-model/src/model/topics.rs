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
        self.publish(conn, id, t, n, None);
    }

    /// A subscription resumed after a publication (TW-RECOVER-1, TW-RECOVER-2):
    /// a first publication's position is captured, `ns` are published after
    /// it, and a `subscribe` with `start_after` set to it gets those of them
    /// its filter matches, in publish order, before anything live.
    pub(super) fn apply_resume_topic(
        &mut self,
        conn: usize,
        id: &str,
        t: u8,
        min: Option<i64>,
        ns: &[i64],
    ) {
        let start = self.fresh_var(conn, "tp");
        self.publish(conn, &format!("{id}-from"), t, 0, Some(&start));
        self.flush(conn);
        let mut after = Vec::new();
        for (i, n) in ns.iter().enumerate() {
            let position = self.fresh_var(conn, "tp");
            let vars = self.publish(conn, &format!("{id}-{i}"), t, *n, Some(&position));
            self.flush(conn);
            after.push((*n, vars, position));
        }
        let filter_json = min.map(|m| json!({"n": {"$gte": m}}));
        let mut request = typed(Subscribe {
            id: request_id(id.to_string()),
            topic: name(topic(t)),
            filter: wire_filter(&filter_json),
            start_after: None,
        });
        request["start_after"] = json!(format!("${{{start}}}"));
        self.send(conn, request, false);
        let var = self.fresh_var(conn, "s");
        self.expect(
            conn,
            json!({
                "type": "subscribed", "id": id, "recovered": true,
                "subscription": {"$type": "string", "$capture": var},
            }),
        );
        // The replayed publications name the subscription the reply captures.
        self.flush(conn);
        let filter = evaluator(&filter_json);
        // Each replayed publication carries what its `published` did, its
        // position included (TW-RECOVER-1).
        for (n, (id_var, at_var), position) in after {
            let data = json!({"n": n});
            if filter.matches(&data) {
                self.expect(
                    conn,
                    json!({
                        "type": "publication",
                        "subscription": format!("${{{var}}}"),
                        "topic": topic(t),
                        "message_id": format!("${{{id_var}}}"),
                        "publisher": ANY_STRING(),
                        "published_at": format!("${{{at_var}}}"),
                        "position": {
                            "epoch": format!("${{{position}_epoch}}"),
                            "seq": format!("${{{position}_seq}}"),
                        },
                        "data": {"$literal": data},
                    }),
                );
            }
        }
        self.subscriptions.push(Subscription {
            conn,
            var,
            kind: SubKind::Topic { topic: t, filter },
        });
    }

    /// Publishes `{"n": n}`, capturing its position in `position_var` when
    /// given, and its epoch and seq apart in `<position_var>_epoch` and
    /// `_seq` (a server may add members of its own to a position, which need
    /// not repeat); returns the variables of its `message_id` and `published_at`.
    fn publish(
        &mut self,
        conn: usize,
        id: &str,
        t: u8,
        n: i64,
        position_var: Option<&str>,
    ) -> (String, String) {
        let rid = request_id(id.to_string());
        let data = json!({"n": n});
        self.send(
            conn,
            typed(Publish {
                id: rid,
                topic: name(topic(t)),
                data: data.clone(),
                idempotency_key: None,
            }),
            false,
        );
        let id_var = self.fresh_var(conn, "pub");
        let at_var = self.fresh_var(conn, "pubat");
        let mut published = json!({
            "type": "published", "id": id, "topic": topic(t),
            "message_id": {"$type": "string", "$capture": id_var},
            "published_at": captured_timestamp(&at_var),
        });
        if let Some(var) = position_var {
            published["position"] = json!({
                "$type": "object", "$capture": var,
                "epoch": {"$type": "string", "$capture": format!("{var}_epoch")},
                "seq": {"$type": "integer", "$capture": format!("{var}_seq")},
            });
        }
        self.expect(conn, published);
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
        (id_var, at_var)
    }
}
