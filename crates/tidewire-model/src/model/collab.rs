//! Predictions of the collab profile: edits of a room's shared document and reading it.

use super::*;

impl Model {
    pub(super) fn apply_edit(&mut self, conn: usize, id: &str, r: u8, stale: bool, text: char) {
        let rid = request_id(id.to_string());
        let (version, content) = self.documents.get(&r).cloned().unwrap_or_default();
        let sent_version = match (stale, version) {
            (false, v) => v,
            (true, 0) => 1,
            (true, v) => v - 1,
        };
        let ops = vec![EditOp::Insert {
            position: 0,
            text: text.to_string(),
        }];
        self.send(
            conn,
            typed(Edit {
                id: rid,
                room: name(room(r)),
                document: name(DOCUMENT.into()),
                version: sent_version,
                ops: ops.clone(),
                idempotency_key: None,
            }),
            false,
        );
        match self.role_of(conn, r) {
            None | Some(Role::Observer) => self.expect(conn, error(id, ErrorCode::Forbidden)),
            Some(_) if stale => self.expect(
                conn,
                error_with(id, ErrorCode::Conflict, json!({"current_version": version})),
            ),
            Some(role) => {
                let next = version + 1;
                self.documents.insert(r, (next, format!("{text}{content}")));
                self.expect(
                    conn,
                    json!({
                        "type": "edit_applied", "id": id, "room": room(r),
                        "document": DOCUMENT, "version": next,
                    }),
                );
                let push = json!({
                    "type": "document_edit", "room": room(r),
                    "document": DOCUMENT, "version": next,
                    "author": self.member(r, conn, role),
                    "ops": {"$literal": ops},
                    "origin": self.origin(conn, None),
                });
                for (c, _) in self.members(r).to_vec() {
                    if c != conn {
                        self.expect(c, push.clone());
                    }
                }
            }
        }
    }

    /// An edit with an idempotency key: from a non-participant `forbidden`
    /// whatever its key; else a repeat of a remembered edit gets its reply and
    /// applies nothing although its version is no longer current (TW-IDEM-1),
    /// another edit under the key is a `conflict` naming the key (TW-IDEM-2),
    /// and a new key edits as a plain edit at the current version, its pushes
    /// naming it (TW-IDEM-3).
    pub(super) fn apply_keyed_edit(&mut self, conn: usize, id: &str, r: u8, text: char, idem: u8) {
        let idempotency_key = format!("{NONCE}-e{idem}");
        let (version, content) = self.documents.get(&r).cloned().unwrap_or_default();
        let ops = vec![EditOp::Insert {
            position: 0,
            text: text.to_string(),
        }];
        let request = |sent_version: u64| Edit {
            id: request_id(id.to_string()),
            room: name(room(r)),
            document: name(DOCUMENT.into()),
            version: sent_version,
            ops: ops.clone(),
            idempotency_key: Some(IdempotencyKey(idempotency_key.clone())),
        };
        let remembered = self.edit_keys.get(&idem).cloned();
        // The same edit again names the version it was first made against.
        let sent_version = remembered
            .as_ref()
            .filter(|(fingerprint, _, at)| *fingerprint == without_id(request(*at)))
            .map_or(version, |(_, _, at)| *at);
        self.send(conn, typed(request(sent_version)), false);
        let role = match self.role_of(conn, r) {
            None | Some(Role::Observer) => {
                self.expect(conn, error(id, ErrorCode::Forbidden));
                return;
            }
            Some(role) => role,
        };
        if let Some((fingerprint, reply, _)) = remembered {
            let same = fingerprint == without_id(request(sent_version));
            self.expect_keyed_repeat(conn, id, same, reply, &idempotency_key);
            return;
        }
        let next = version + 1;
        self.documents.insert(r, (next, format!("{text}{content}")));
        let reply = json!({
            "type": "edit_applied", "room": room(r), "document": DOCUMENT, "version": next,
        });
        self.edit_keys.insert(
            idem,
            (
                without_id(request(sent_version)),
                reply.clone(),
                sent_version,
            ),
        );
        let mut reply = reply;
        reply["id"] = json!(id);
        self.expect(conn, reply);
        let push = json!({
            "type": "document_edit", "room": room(r),
            "document": DOCUMENT, "version": next,
            "author": self.member(r, conn, role),
            "ops": {"$literal": ops},
            "origin": self.origin(conn, Some(&idempotency_key)),
        });
        for (c, _) in self.members(r).to_vec() {
            if c != conn {
                self.expect(c, push.clone());
            }
        }
    }

    pub(super) fn apply_get_document(&mut self, conn: usize, id: &str, r: u8) {
        let rid = request_id(id.to_string());
        self.send(
            conn,
            typed(GetDocument {
                id: rid,
                room: name(room(r)),
                document: name(DOCUMENT.into()),
            }),
            false,
        );
        match self.role_of(conn, r) {
            None => self.expect(conn, error(id, ErrorCode::Forbidden)),
            Some(_) => {
                let (version, content) = self.documents.get(&r).cloned().unwrap_or_default();
                self.expect(
                    conn,
                    json!({
                        "type": "document", "id": id, "room": room(r),
                        "document": DOCUMENT, "version": version, "content": content,
                    }),
                );
            }
        }
    }
}
