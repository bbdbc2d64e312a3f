//! Predictions of the rooms profile: membership, presence, posts and typing.

use super::*;

impl Model {
    pub(super) fn apply_join(&mut self, conn: usize, id: &str, r: u8, observer: bool) {
        let rid = request_id(id.to_string());
        let role = if observer {
            Role::Observer
        } else {
            Role::Participant
        };
        self.send(
            conn,
            typed(Join {
                id: rid,
                room: name(room(r)),
                role,
            }),
            false,
        );
        let members = self.rooms.entry(r).or_default();
        let rejoin = match members.iter_mut().find(|(c, _)| *c == conn) {
            Some(entry) => {
                entry.1 = role;
                true
            }
            None => {
                members.push((conn, role));
                false
            }
        };
        let listed: Vec<Value> = self
            .members(r)
            .iter()
            .map(|(c, role)| self.member(*c, *role))
            .collect();
        self.expect(
            conn,
            json!({
                "type": "joined", "id": id, "room": room(r),
                "role": role_name(role),
                "members": {"$length": listed.len(), "$contains": listed},
            }),
        );
        if !rejoin {
            self.presence(r, conn, role, "joined", None);
        }
    }

    pub(super) fn apply_leave(&mut self, conn: usize, id: &str, r: u8) {
        let rid = request_id(id.to_string());
        self.send(
            conn,
            typed(Leave {
                id: rid,
                room: name(room(r)),
            }),
            false,
        );
        match self.role_of(conn, r) {
            None => self.expect(conn, error(id, ErrorCode::NotFound)),
            Some(role) => {
                self.rooms.entry(r).or_default().retain(|(c, _)| *c != conn);
                self.expect(conn, json!({"type": "left", "id": id, "room": room(r)}));
                self.presence(r, conn, role, "left", Some("left"));
            }
        }
    }

    pub(super) fn apply_post(&mut self, conn: usize, id: &str, r: u8, n: i64) {
        let rid = request_id(id.to_string());
        let body = json!({"n": n});
        self.send(
            conn,
            typed(Post {
                id: rid,
                room: name(room(r)),
                body: body.clone(),
            }),
            false,
        );
        match self.role_of(conn, r) {
            None | Some(Role::Observer) => self.expect(conn, error(id, ErrorCode::Forbidden)),
            Some(role) => {
                self.expect(
                    conn,
                    json!({
                        "type": "posted", "id": id, "room": room(r),
                        "message_id": ANY_STRING(), "sent_at": ANY_STRING(),
                    }),
                );
                let message = json!({
                    "$exact": true,
                    "type": "room_message",
                    "room": room(r),
                    "message": {
                        "$exact": true,
                        "message_id": ANY_STRING(),
                        "author": self.member(conn, role),
                        "body": {"$literal": body},
                        "sent_at": ANY_STRING(),
                    },
                });
                for (c, _) in self.members(r).to_vec() {
                    self.expect(c, message.clone());
                }
            }
        }
    }

    pub(super) fn apply_typing(&mut self, conn: usize, id: &str, r: u8, active: bool) {
        let rid = request_id(id.to_string());
        self.send(
            conn,
            typed(Typing {
                id: rid,
                room: name(room(r)),
                active,
            }),
            false,
        );
        match self.role_of(conn, r) {
            None | Some(Role::Observer) => self.expect(conn, error(id, ErrorCode::Forbidden)),
            Some(role) => {
                self.expect(conn, json!({"$exact": true, "type": "ack", "id": id}));
                let push = json!({
                    "$exact": true, "type": "typing", "room": room(r),
                    "member": self.member(conn, role), "active": active,
                });
                for (c, _) in self.members(r).to_vec() {
                    if c != conn {
                        self.expect(c, push.clone());
                    }
                }
            }
        }
    }

    /// `presence` of `conn` to every other member of `room`. On reconnect the
    /// connection-id variable still names the old connection, as it must.
    pub(super) fn presence(
        &mut self,
        room_index: u8,
        conn: usize,
        role: Role,
        action: &str,
        reason: Option<&str>,
    ) {
        let mut push = json!({
            "$exact": true, "type": "presence", "room": room(room_index),
            "action": action, "member": self.member(conn, role),
        });
        if let Some(reason) = reason {
            push["reason"] = json!(reason);
        }
        for (c, _) in self.members(room_index).to_vec() {
            if c != conn {
                self.expect(c, push.clone());
            }
        }
    }
}
