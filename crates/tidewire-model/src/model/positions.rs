//! Predictions of where reads, ended watches and quiet watches say a watch
//! may go on from (sections 5.9, 9.1 and 9.2), and of document versions
//! and their positions (section 12).

use super::*;
use crate::DocEdit;

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
        self.send(conn, read_by_id(&read, collection(coll), &None), false);
        let records = self.literal_records(coll);
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
        let mut request = watch_request(
            id.to_string(),
            DATABASE.into(),
            target.map(collection),
            &None,
        );
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
            watch_request(
                id.to_string(),
                DATABASE.into(),
                Some(collection(coll)),
                &None,
            ),
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

    /// A member of a room of its own edits its document, another member
    /// hears of every applied edit and its origin, and the editor reads the
    /// document: the version counts the applied edits only (TW-COLLAB-2,
    /// -3, -5, -6); a keyed edit repeated gets the original reply and
    /// applies nothing, another edit under its key is a `conflict`
    /// (TW-IDEM-1, -2, -3); with `positions` the read carries the position
    /// the last applied edit was given (section 9.1: the document at the
    /// version read).
    pub(super) fn apply_document_edits(&mut self, id: &str, edits: &[DocEdit], positions: bool) {
        let editor = format!("{id}-editor");
        let peer = format!("{id}-peer");
        let room_name = format!("{NONCE}-{id}-doc");
        let editor_id = self.fresh_var(0, "editor");
        let join = |model: &mut Model, conn: &str| {
            let rid = format!("{conn}-join");
            model.send_on(conn, participant_join(rid.clone(), room_name.clone()));
            model
                .steps
                .push(json!({"step": "expect", "conn": conn, "match": {
                    "type": "joined", "id": rid, "room": room_name,
                }}));
        };
        self.side_connection(
            &peer,
            json!([{"type": "heartbeat"}]),
            json!({"type": "welcome"}),
        );
        join(self, &peer);
        self.side_connection(
            &editor,
            json!([{"type": "heartbeat"}]),
            json!({"type": "welcome", "connection_id": {"$type": "string", "$capture": editor_id}}),
        );
        join(self, &editor);
        self.steps
            .push(json!({"step": "expect", "conn": peer, "match": {
                "type": "presence", "room": room_name, "action": "joined",
            }}));
        let mut version = 0u64;
        let mut content = String::new();
        let mut last_position: Option<String> = None;
        // Per key: the text and version of the edit that consumed it, and its reply.
        let mut consumed: BTreeMap<u8, (char, u64, Value)> = BTreeMap::new();
        for (i, edit) in edits.iter().enumerate() {
            let rid = format!("{id}-{i}");
            let key = edit.key.map(|k| format!("{NONCE}-{id}-e{k}"));
            let remembered = edit.key.and_then(|k| consumed.get(&k).cloned());
            let repeat = match (edit.text, &remembered) {
                (Some(text), Some((original, at, _))) if text == *original => Some(*at),
                _ => None,
            };
            let ops = match edit.text {
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
                    // The same edit again names the version it was first made against.
                    version: repeat.unwrap_or(version),
                    ops: ops.clone(),
                    idempotency_key: key.clone().map(IdempotencyKey),
                }),
            );
            let reply = match (edit.text, remembered, key.as_deref()) {
                (None, _, _) => error(&rid, ErrorCode::InvalidMessage),
                (Some(_), Some((_, _, mut reply)), Some(key)) => {
                    if repeat.is_some() {
                        reply["id"] = json!(rid);
                        reply
                    } else {
                        error_with(&rid, ErrorCode::Conflict, json!({ "idempotency_key": key }))
                    }
                }
                (Some(text), _, key) => {
                    version += 1;
                    content.insert(0, text);
                    let mut reply = json!({
                        "type": "edit_applied", "id": rid, "room": room_name,
                        "document": DOCUMENT, "version": version,
                    });
                    if positions {
                        let var = self.fresh_var(0, "docpos");
                        reply["position"] = captured_position(&var);
                        last_position = Some(var);
                    }
                    if let Some(k) = edit.key {
                        // A repeat's reply is this one, position included.
                        let mut remembered = reply.clone();
                        if let Some(var) = &last_position {
                            remembered["position"] = same_position(var);
                        }
                        consumed.insert(k, (text, version - 1, remembered));
                    }
                    let mut push = json!({
                        "type": "document_edit", "room": room_name,
                        "document": DOCUMENT, "version": version,
                        "ops": {"$literal": ops},
                        "origin": {
                            "connection_id": format!("${{{editor_id}}}"),
                            "idempotency_key": key.map_or(json!({"$absent": true}), |k| json!(k)),
                        },
                    });
                    if let Some(var) = &last_position {
                        push["position"] = same_position(var);
                    }
                    self.steps
                        .push(json!({"step": "expect", "conn": editor, "match": reply.clone()}));
                    self.steps
                        .push(json!({"step": "expect", "conn": peer, "match": push}));
                    continue;
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
        // Nothing more: a repeat or a refused edit pushes nothing.
        let fence = format!("{id}-fence");
        self.send_on(&peer, json!({"type": "ping", "id": fence}));
        self.steps
            .push(json!({"step": "expect", "conn": peer, "match": {"type": "pong", "id": fence}}));
        self.steps.push(json!({"step": "close", "conn": editor}));
        self.steps.push(json!({"step": "close", "conn": peer}));
    }

    /// Records with vectors in a collection no other operation writes, and
    /// searches of it, each predicted as any write and search is.
    pub(super) fn apply_search_batch(
        &mut self,
        conn: usize,
        id: &str,
        vectors: &[([i8; 2], Option<Tag>)],
        other_dimension: Option<[i8; 3]>,
        searches: &[Op],
    ) {
        for (k, (vector, tag)) in vectors.iter().enumerate() {
            let k = u8::try_from(k).unwrap_or(u8::MAX);
            let exists = self
                .records
                .get(&SEARCH_COLLECTION)
                .is_some_and(|records| records.contains_key(&key(k)));
            if !exists {
                self.apply_create(conn, &format!("{id}-c{k}"), SEARCH_COLLECTION, k, 0, *tag);
                self.flush(conn);
            }
            let set = Change::SetVec(*vector);
            self.apply_update(conn, &format!("{id}-v{k}"), SEARCH_COLLECTION, k, set);
            self.flush(conn);
        }
        if let Some(vector) = other_dimension {
            let k = u8::try_from(vectors.len()).unwrap_or(u8::MAX);
            if !self
                .records
                .get(&SEARCH_COLLECTION)
                .is_some_and(|records| records.contains_key(&key(k)))
            {
                self.apply_create(conn, &format!("{id}-c{k}"), SEARCH_COLLECTION, k, 0, None);
                self.flush(conn);
            }
            let set = Change::SetVecOtherDimension(vector);
            self.apply_update(conn, &format!("{id}-v{k}"), SEARCH_COLLECTION, k, set);
            self.flush(conn);
        }
        for (i, search) in searches.iter().enumerate() {
            if let Op::Search {
                vector,
                k,
                metric,
                tag,
                ..
            } = search
            {
                let sid = format!("{id}-s{i}");
                self.apply_search(conn, &sid, SEARCH_COLLECTION, *vector, *k, *metric, *tag);
                self.flush(conn);
            }
        }
    }

    /// A live view of the records of `coll` with `n` at least `threshold`,
    /// then writes of `n` to its keys (a create when the model knows no
    /// record, else an update; `None` deletes), which enter, stay in and
    /// leave it (TW-VIEW-1 to TW-VIEW-4).
    pub(super) fn apply_view_churn(
        &mut self,
        conn: usize,
        id: &str,
        coll: u8,
        threshold: i64,
        writes: &[(u8, Option<i64>)],
    ) {
        let filter = EventFilter::FullDocumentNGte(threshold);
        self.apply_watch(
            conn,
            &format!("{id}-view"),
            Some(coll),
            filter,
            false,
            (false, true),
        );
        self.flush(conn);
        for (i, (k, n)) in writes.iter().enumerate() {
            let wid = format!("{id}-{i}");
            let exists = self
                .records
                .get(&coll)
                .is_some_and(|records| records.contains_key(&key(*k)));
            match (n, exists) {
                (None, _) => self.apply_delete(conn, &wid, coll, *k),
                (Some(n), true) => self.apply_update(conn, &wid, coll, *k, Change::SetN(*n)),
                (Some(n), false) => self.apply_create(conn, &wid, coll, *k, *n, None),
            }
            self.flush(conn);
        }
    }
}

/// The collection of [`Op::SearchBatch`], beside those of the other operations.
const SEARCH_COLLECTION: u8 = crate::COLLECTIONS;

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(op: Op) -> Vec<Value> {
        crate::model::tests::case_steps(1, &[(0, op)])
    }

    #[test]
    fn a_watch_starts_after_the_position_its_read_captured() {
        let steps = steps(Op::ReadThenWatch {
            coll: 0,
            key: 1,
            n: 2,
            whole_database: true,
        });
        let read = steps
            .iter()
            .find(|s| s["match"][0]["type"] == "records")
            .unwrap();
        let var = read["match"][0]["position"]["$capture"].as_str().unwrap();
        let watch = steps.iter().find(|s| s["json"]["type"] == "watch").unwrap();
        assert_eq!(watch["json"]["start_after"], format!("${{{var}}}"));
        assert_eq!(watch["json"].get("collection"), None);
    }

    #[test]
    fn a_repeated_keyed_edit_gets_the_reply_and_pushes_nothing() {
        let edit = |text, key| DocEdit { text, key };
        let steps = steps(Op::DocumentEdits {
            edits: vec![
                edit(Some('a'), Some(0)),
                edit(Some('b'), None),
                edit(Some('a'), Some(0)),
                edit(Some('b'), Some(0)),
                edit(None, None),
            ],
            positions: true,
        });
        let sent = |id: &str| steps.iter().find(|s| s["json"]["id"] == id).unwrap();
        // The repeat names the version the original was made against.
        assert_eq!(sent("q0-2")["json"]["version"], 0);
        let pushes = steps
            .iter()
            .filter(|s| s["conn"] == "q0-peer" && s["match"]["type"] == "document_edit")
            .count();
        assert_eq!(pushes, 2);
        let reply = |id: &str| {
            steps
                .iter()
                .find(|s| s["conn"] == "q0-editor" && s["match"]["id"] == id)
                .map(|s| s["match"].clone())
                .unwrap()
        };
        let captured = |id: &str| {
            let var = reply(id)["position"]["seq"]["$capture"].clone();
            format!("${{{}}}", var.as_str().unwrap())
        };
        // The repeat's reply is the original's, position included.
        assert_eq!(reply("q0-2")["version"], 1);
        assert_eq!(reply("q0-2")["position"]["seq"], captured("q0-0"));
        assert_eq!(reply("q0-3")["error"]["code"], "conflict");
        assert_eq!(reply("q0-4")["error"]["code"], "invalid_message");
        let document = reply("q0-read");
        assert_eq!(document["version"], 2);
        assert_eq!(document["content"], "ba");
        assert_eq!(document["position"]["seq"], captured("q0-1"));
    }
}
