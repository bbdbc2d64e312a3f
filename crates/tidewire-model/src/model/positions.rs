//! Predictions of where reads, ended watches and quiet watches say a watch
//! may go on from (sections 5.9, 9.1 and 9.2), and of document versions
//! and their positions (section 12).

use super::*;

/// A position pattern capturing its members into `{var}_epoch` and `{var}_seq`.
fn captured_position(var: &str) -> Value {
    json!({
        "epoch": {"$type": "string", "$capture": format!("{var}_epoch")},
        "seq": {"$type": "integer", "$capture": format!("{var}_seq")},
    })
}

/// The position captured by [`captured_position`] under `var`, again.
fn same_position(var: &str) -> Value {
    json!({"epoch": format!("${{{var}_epoch}}"), "seq": format!("${{{var}_seq}}")})
}

impl Model {
    /// A write, so that the journal's last commit is the collection's; a
    /// read; and a watch from the read's position, which must replay
    /// nothing: together they show every commit once (section 9.1, TW-POS-2,
    /// TW-POS-3). The watch stays, and sees what later operations write.
    pub(super) fn apply_read_then_watch(
        &mut self,
        conn: usize,
        id: &str,
        coll: u8,
        (k, n): (u8, i64),
        whole_database: bool,
    ) {
        let exists = self
            .records
            .get(&coll)
            .is_some_and(|records| records.contains_key(&key(k)));
        let write = format!("{id}-write");
        if exists {
            self.apply_update(conn, &write, coll, k, Change::SetN(n));
        } else {
            self.apply_create(conn, &write, coll, k, n, None);
        }
        self.flush(conn);
        let read = format!("{id}-read");
        self.send(
            conn,
            typed(Read {
                id: request_id(read.clone()),
                database: Some(coll_name(DATABASE.into())),
                collection: Some(coll_name(collection(coll))),
                record_id: None,
                filter: None,
                sort: vec![SortKey {
                    field: "_id".into(),
                    order: SortOrder::Asc,
                }],
                limit: None,
                offset: None,
                fields: None,
            }),
            false,
        );
        // `records` is keyed by `_id`, so in the order the read sorts by.
        let records: Vec<Value> = self
            .records
            .entry(coll)
            .or_default()
            .values()
            .map(|r| json!({"$literal": r}))
            .collect();
        let position = self.fresh_var(conn, "readpos");
        let total = records.len();
        self.expect(
            conn,
            json!({
                "type": "records", "id": read, "records": records, "total": total, "count": total,
                "position": {"$type": "object", "$capture": position},
            }),
        );
        self.flush(conn);
        let target = (!whole_database).then_some(coll);
        let mut request = typed(Watch {
            id: request_id(id.to_string()),
            database: Some(coll_name(DATABASE.into())),
            collection: target.map(|c| coll_name(collection(c))),
            filter: None,
            pipeline: None,
            full_document: false,
            resume_after: None,
            view: false,
            start_after: None,
        });
        request["start_after"] = json!(format!("${{{position}}}"));
        self.send(conn, request, false);
        let var = self.fresh_var(conn, "w");
        self.expect(
            conn,
            json!({
                "type": "watching", "id": id, "resumed": true,
                "subscription": {"$type": "string", "$capture": var},
            }),
        );
        self.subscriptions.push(Subscription {
            conn,
            var,
            kind: SubKind::Watch {
                coll: target,
                filter: Filter::match_all(),
                pipeline: None,
                full_document: false,
                view: false,
            },
        });
    }

    /// Narrower scopes end a watch with `ended` (TW-END-6), which names
    /// where to resume (TW-END-5); resuming there replays nothing, as
    /// nothing was written since.
    pub(super) fn apply_narrowed_watch(&mut self, id: &str, coll: u8) {
        let narrowed = format!("{id}-narrowed");
        self.steps.push(json!({
            "step": "open",
            "conn": narrowed,
            "subprotocols": ["tidewire.v1"],
            "inject": false,
            "ignore": [{"type": "heartbeat"}],
        }));
        self.steps
            .push(json!({"step": "expect", "conn": narrowed, "match": {"type": "welcome"}}));
        let watch = |rid: &str| Watch {
            id: request_id(rid.to_string()),
            database: Some(coll_name(DATABASE.into())),
            collection: Some(coll_name(collection(coll))),
            filter: None,
            pipeline: None,
            full_document: false,
            resume_after: None,
            view: false,
            start_after: None,
        };
        let first = format!("{id}-w");
        self.send_on(&narrowed, typed(watch(&first)));
        let sub = self.fresh_var(0, "nw");
        let token = self.fresh_var(0, "nwtok");
        self.steps
            .push(json!({"step": "expect", "conn": narrowed, "match": {
                "type": "watching", "id": first,
                "subscription": {"$type": "string", "$capture": sub},
            }}));
        let auth = format!("{id}-auth");
        self.send_on(
            &narrowed,
            typed(tidewire_protocol::Auth {
                id: request_id(auth.clone()),
                token: "${token_narrow}".into(),
            }),
        );
        self.steps
            .push(json!({"step": "expect_all", "conn": narrowed, "match": [
                {"type": "authenticated", "id": auth},
                {
                    "type": "ended", "subscription": format!("${{{sub}}}"),
                    "reason": "scopes_narrowed", "room": {"$absent": true},
                    "resume_token": {"$type": "string", "$capture": token},
                },
            ]}));
        self.steps.push(json!({"step": "close", "conn": narrowed}));
        let resumed = format!("{id}-resumed");
        self.side_connection(
            &resumed,
            json!([{"type": "heartbeat"}]),
            json!({"type": "welcome"}),
        );
        let mut request = typed(watch(id));
        request["resume_after"] = json!(format!("${{{token}}}"));
        self.send_on(&resumed, request);
        self.steps
            .push(json!({"step": "expect", "conn": resumed, "match": {
                "type": "watching", "id": id, "resumed": true,
            }}));
        let fence = format!("{id}-fence");
        self.send_on(&resumed, json!({"type": "ping", "id": fence}));
        self.steps.push(
            json!({"step": "expect", "conn": resumed, "match": {"type": "pong", "id": fence}}),
        );
        self.steps.push(json!({"step": "close", "conn": resumed}));
    }

    /// A watch nothing matches, on the `quiet_url` server: the heartbeat
    /// due once the connection idles names where it stands (TW-POS-8).
    pub(super) fn apply_quiet_progress(&mut self, id: &str, coll: u8, heartbeat_ms: u64) {
        let quiet = format!("{id}-quiet");
        // Heartbeats before the watch stands have nothing to report.
        self.steps.push(json!({
            "step": "open",
            "conn": quiet,
            "url": "${quiet_url}",
            "subprotocols": ["tidewire.v1"],
            "ignore": [
                {"type": "heartbeat", "progress": {"$absent": true}},
                {"type": "heartbeat", "progress": {"$length": 0}},
            ],
        }));
        self.steps
            .push(json!({"step": "expect", "conn": quiet, "match": {"type": "welcome"}}));
        self.send_on(
            &quiet,
            typed(Watch {
                id: request_id(id.to_string()),
                database: Some(coll_name(DATABASE.into())),
                collection: Some(coll_name(collection(coll))),
                filter: None,
                pipeline: None,
                full_document: false,
                resume_after: None,
                view: false,
                start_after: None,
            }),
        );
        let sub = self.fresh_var(0, "qw");
        self.steps
            .push(json!({"step": "expect", "conn": quiet, "match": {
                "type": "watching", "id": id,
                "subscription": {"$type": "string", "$capture": sub},
            }}));
        self.steps.push(json!({
            "step": "expect",
            "conn": quiet,
            "timeout_ms": heartbeat_ms + HEARTBEAT_SLACK_MS,
            "match": {
                "type": "heartbeat",
                "at": timestamp(),
                "progress": [{
                    "subscription": format!("${{{sub}}}"),
                    "position": {"epoch": {"$type": "string"}, "seq": {"$type": "integer"}},
                }],
            },
        }));
        self.steps.push(json!({"step": "close", "conn": quiet}));
    }

    /// An edit without operations is `invalid_message` before anything
    /// else is looked at, membership and version included (section 4.4,
    /// TW-COLLAB-5, TW-CORE-23), and changes nothing.
    pub(super) fn apply_empty_edit(&mut self, conn: usize, id: &str, r: u8, stale: bool) {
        let (version, _) = self.documents.get(&r).cloned().unwrap_or_default();
        let version = if stale { version + 1 } else { version };
        self.send(
            conn,
            typed(Edit {
                id: request_id(id.to_string()),
                room: name(room(r)),
                document: name(DOCUMENT.into()),
                version,
                ops: Vec::new(),
                idempotency_key: None,
            }),
            false,
        );
        self.expect(conn, error(id, ErrorCode::InvalidMessage));
    }

    /// A member alone in a room of its own edits its document and reads it:
    /// the version counts the applied edits only (TW-COLLAB-2, TW-COLLAB-5,
    /// TW-COLLAB-6), and with `positions` the read carries the position the
    /// last applied edit was given (section 9.1: the document at the version read).
    pub(super) fn apply_document_edits(
        &mut self,
        id: &str,
        edits: &[Option<char>],
        positions: bool,
    ) {
        let editor = format!("{id}-editor");
        let room_name = format!("{NONCE}-{id}-doc");
        self.side_connection(
            &editor,
            json!([{"type": "heartbeat"}]),
            json!({"type": "welcome"}),
        );
        let join = format!("{id}-join");
        self.send_on(
            &editor,
            typed(Join {
                id: request_id(join.clone()),
                room: name(room_name.clone()),
                role: Role::Participant,
                display_name: None,
                metadata: None,
                start_after: None,
            }),
        );
        self.steps
            .push(json!({"step": "expect", "conn": editor, "match": {
                "type": "joined", "id": join, "room": room_name,
            }}));
        let mut version = 0u64;
        let mut content = String::new();
        let mut last_position: Option<String> = None;
        for (i, edit) in edits.iter().enumerate() {
            let rid = format!("{id}-{i}");
            let ops = match edit {
                Some(text) => vec![EditOp::Insert {
                    position: 0,
                    text: text.to_string(),
                }],
                None => Vec::new(),
            };
            self.send_on(
                &editor,
                typed(Edit {
                    id: request_id(rid.clone()),
                    room: name(room_name.clone()),
                    document: name(DOCUMENT.into()),
                    version,
                    ops,
                    idempotency_key: None,
                }),
            );
            let reply = match edit {
                None => error(&rid, ErrorCode::InvalidMessage),
                Some(text) => {
                    version += 1;
                    content.insert(0, *text);
                    let mut reply = json!({
                        "type": "edit_applied", "id": rid, "room": room_name,
                        "document": DOCUMENT, "version": version,
                    });
                    if positions {
                        let var = self.fresh_var(0, "docpos");
                        reply["position"] = captured_position(&var);
                        last_position = Some(var);
                    }
                    reply
                }
            };
            self.steps
                .push(json!({"step": "expect", "conn": editor, "match": reply}));
        }
        let read = format!("{id}-read");
        self.send_on(
            &editor,
            typed(GetDocument {
                id: request_id(read.clone()),
                room: name(room_name.clone()),
                document: name(DOCUMENT.into()),
            }),
        );
        let mut document = json!({
            "type": "document", "id": read, "room": room_name,
            "document": DOCUMENT, "version": version, "content": content,
        });
        if let Some(var) = last_position {
            document["position"] = same_position(&var);
        }
        self.steps
            .push(json!({"step": "expect", "conn": editor, "match": document}));
        self.steps.push(json!({"step": "close", "conn": editor}));
    }
}
