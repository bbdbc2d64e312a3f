//! Predictions of the watch profile: watch subscriptions and the change events they receive.

use super::*;

impl Model {
    pub(super) fn apply_watch(
        &mut self,
        conn: usize,
        id: &str,
        coll: Option<u8>,
        filter: EventFilter,
        pipeline: bool,
        full_document: bool,
    ) {
        let rid = request_id(id.to_string());
        let filter_json = filter.to_json();
        let pipeline_json =
            pipeline.then(|| json!([{"$match": {"operation_type": {"$ne": "delete"}}}]));
        self.send(
            conn,
            typed(Watch {
                id: rid,
                database: Some(coll_name(DATABASE.into())),
                collection: coll.map(|c| coll_name(collection(c))),
                filter: wire_filter(&filter_json),
                pipeline: pipeline_json.as_ref().map(|p| {
                    p.as_array()
                        .expect("an array")
                        .iter()
                        .map(|s| s.as_object().expect("an object").clone())
                        .collect()
                }),
                full_document,
                resume_after: None,
                start_after: None,
            }),
            false,
        );
        let var = self.fresh_var(conn, "w");
        self.expect(
            conn,
            json!({
                "type": "watching", "id": id,
                "subscription": {"$type": "string", "$capture": var},
                "resume_token": ANY_STRING(), "resumed": false,
            }),
        );
        self.subscriptions.push(Subscription {
            conn,
            var,
            kind: SubKind::Watch {
                coll,
                filter: evaluator(&filter_json),
                pipeline: pipeline_json
                    .as_ref()
                    .map(|p| Pipeline::parse(p).expect("model pipelines are valid")),
                full_document,
            },
        });
    }

    pub(super) fn change(
        &mut self,
        coll: u8,
        event: Map<String, Value>,
        full_document: Option<&Value>,
    ) {
        let mut pushes = Vec::new();
        for sub in &self.subscriptions {
            let SubKind::Watch {
                coll: target,
                filter,
                pipeline,
                full_document: wants_full,
            } = &sub.kind
            else {
                continue;
            };
            if target.is_some_and(|t| t != coll) {
                continue;
            }
            let mut sent = event.clone();
            let insert = event["operation_type"] == "insert";
            if let Some(doc) = full_document.filter(|_| insert || *wants_full) {
                sent.insert("full_document".into(), doc.clone());
            }
            let sent = Value::Object(sent);
            if !filter.matches(&sent) || pipeline.as_ref().is_some_and(|p| !p.matches(&sent)) {
                continue;
            }
            let sent = sent.as_object().expect("events are objects");
            // The server may add members to the event and to its own objects
            // in it (TW-CORE-6); the record is the client's data, as it was.
            let mut pattern: Map<String, Value> = sent
                .iter()
                .map(|(k, v)| match v {
                    Value::Object(inner) if k != "full_document" => (
                        k.clone(),
                        inner
                            .iter()
                            .map(|(ik, iv)| (ik.clone(), json!({"$literal": iv})))
                            .collect(),
                    ),
                    _ => (k.clone(), json!({"$literal": v})),
                })
                .collect();
            if !sent.contains_key("full_document") {
                // TW-WATCH-4: only inserts and updates of watches that asked carry it.
                pattern.insert("full_document".into(), json!({"$absent": true}));
            }
            pattern.insert("committed_at".into(), timestamp());
            pattern.insert("resume_token".into(), ANY_STRING());
            pushes.push((
                sub.conn,
                json!({
                    "type": "change",
                    "subscription": format!("${{{}}}", sub.var),
                    "event": pattern,
                }),
            ));
        }
        for (conn, pattern) in pushes {
            self.expect(conn, pattern);
        }
    }
}
