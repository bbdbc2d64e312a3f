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
        (full_document, view): (bool, bool),
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
                view,
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
                view,
            },
        });
    }

    /// Predicts the `change` pushes of one commit. `images` are the record
    /// before the change (`None` for an insert) and after it (`None` for a delete).
    pub(super) fn change(
        &mut self,
        coll: u8,
        mut event: Map<String, Value>,
        images: (Option<&Value>, Option<&Value>),
    ) {
        // A pattern already (TW-IDEM-3), which filters never look at.
        let origin = event.remove("origin");
        let (before, after) = images;
        let insert = event["operation_type"] == "insert";
        let update = event["operation_type"] == "update";
        let with_document = |record: Option<&Value>| {
            record.map(|doc| {
                let mut probe = event.clone();
                probe.insert("full_document".into(), doc.clone());
                Value::Object(probe)
            })
        };
        let before_probe = with_document(before);
        let after_probe = with_document(after);
        let mut pushes = Vec::new();
        for sub in &self.subscriptions {
            let SubKind::Watch {
                coll: target,
                filter,
                pipeline,
                full_document: wants_full,
                view,
            } = &sub.kind
            else {
                continue;
            };
            if target.is_some_and(|t| t != coll) {
                continue;
            }
            let passes = |probe: &Option<Value>| {
                probe.as_ref().is_some_and(|e| {
                    filter.matches(e) && pipeline.as_ref().is_none_or(|p| p.matches(e))
                })
            };
            let mut sent = event.clone();
            // TW-VIEW-3 leaves the pre-image of enter and stay updates to the server.
            let mut pre_image_free = false;
            if *view {
                let transition = match (passes(&before_probe), passes(&after_probe)) {
                    (false, false) => continue,
                    (false, true) => "enter",
                    (true, true) => "stay",
                    (true, false) => "leave",
                };
                if let Some(doc) = after {
                    sent.insert("full_document".into(), doc.clone());
                }
                match (transition, before) {
                    ("leave", Some(doc)) => {
                        sent.insert("full_document_before_change".into(), doc.clone());
                    }
                    _ => pre_image_free = update,
                }
                sent.insert("view".into(), json!(transition));
            } else {
                if let Some(doc) = after.filter(|_| insert || *wants_full) {
                    sent.insert("full_document".into(), doc.clone());
                }
                if !filter.matches(&Value::Object(sent.clone()))
                    || pipeline
                        .as_ref()
                        .is_some_and(|p| !p.matches(&Value::Object(sent.clone())))
                {
                    continue;
                }
            }
            // The server may add members to the event and to its own objects
            // in it (TW-CORE-6); the records are the client's data, as they were.
            let mut pattern: Map<String, Value> = sent
                .iter()
                .map(|(k, v)| match v {
                    Value::Object(inner)
                        if k != "full_document" && k != "full_document_before_change" =>
                    {
                        (
                            k.clone(),
                            inner
                                .iter()
                                .map(|(ik, iv)| (ik.clone(), json!({"$literal": iv})))
                                .collect(),
                        )
                    }
                    _ => (k.clone(), json!({"$literal": v})),
                })
                .collect();
            for member in ["full_document", "full_document_before_change", "view"] {
                let free = member == "full_document_before_change" && pre_image_free;
                if !sent.contains_key(member) && !free {
                    // TW-WATCH-4, TW-VIEW-3, TW-VIEW-4: absent unless required or allowed.
                    pattern.insert(member.into(), json!({"$absent": true}));
                }
            }
            pattern.insert("committed_at".into(), timestamp());
            if let Some(origin) = &origin {
                pattern.insert("origin".into(), origin.clone());
            }
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
