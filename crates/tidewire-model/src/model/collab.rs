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
                });
                for (c, _) in self.members(r).to_vec() {
                    if c != conn {
                        self.expect(c, push.clone());
                    }
                }
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
