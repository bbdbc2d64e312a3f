//! Predictions of the rooms profile: membership, presence, posts and typing.

use super::*;
use crate::MemberInfoExcess;

/// The page size of a `history` without `limit`, and the largest one (TW-ROOM-13).
const HISTORY_DEFAULT_LIMIT: u32 = 50;
const HISTORY_MAX_LIMIT: u32 = 500;
/// Display names the model's joins give: this stem and a number, with a space, so
/// that a server that trims or splits names is caught.
const DISPLAY_NAME_STEM: &str = "Member Ü";

impl Model {
    pub(super) fn apply_join(
        &mut self,
        conn: usize,
        id: &str,
        r: u8,
        observer: bool,
        display_name: Option<u8>,
    ) {
        let shown = display_name.map(|n| format!("{} {n}", DISPLAY_NAME_STEM));
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
                display_name: shown.clone().map(|shown| {
                    tidewire_protocol::DisplayName::new(shown)
                        .expect("model display names are valid")
                }),
                metadata: None,
                start_after: None,
            }),
            false,
        );
        match shown {
            Some(shown) => self.shown.insert((r, conn), shown),
            None => self.shown.remove(&(r, conn)),
        };
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
            .map(|(c, role)| self.member(r, *c, *role))
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
        let body = json!({"n": n});
        self.send(conn, numbered_post(id.to_string(), room(r), n), false);
        match self.role_of(conn, r) {
            None | Some(Role::Observer) => self.expect(conn, error(id, ErrorCode::Forbidden)),
            Some(role) => {
                self.predict_post(conn, id, r, role, body, None);
            }
        }
    }

    /// A post with an idempotency key: from a non-participant `forbidden`
    /// whatever its key (the request would not be accepted); else a repeat
    /// of a remembered post gets its reply and posts nothing (TW-IDEM-1),
    /// another post under the key is a `conflict` (TW-IDEM-2), and a new key
    /// posts as a plain post, its pushes and history naming it (TW-IDEM-3).
    pub(super) fn apply_keyed_post(&mut self, conn: usize, id: &str, r: u8, n: i64, idem: u8) {
        let idempotency_key = format!("{NONCE}-p{idem}");
        let body = json!({"n": n});
        let request = Post {
            id: request_id(id.to_string()),
            room: name(room(r)),
            body: body.clone(),
            idempotency_key: Some(IdempotencyKey(idempotency_key.clone())),
        };
        let fingerprint = without_id(request.clone());
        self.send(conn, typed(request), false);
        let role = match self.role_of(conn, r) {
            None | Some(Role::Observer) => {
                self.expect(conn, error(id, ErrorCode::Forbidden));
                return;
            }
            Some(role) => role,
        };
        if let Some((remembered, reply)) = self.post_keys.get(&idem).cloned() {
            let same = remembered == fingerprint;
            self.expect_keyed_repeat(conn, id, same, reply, &idempotency_key);
            return;
        }
        let (id_var, at_var) = self.predict_post(conn, id, r, role, body, Some(&idempotency_key));
        let reply = json!({
            "type": "posted", "room": room(r),
            "message_id": format!("${{{id_var}}}"),
            "sent_at": format!("${{{at_var}}}"),
        });
        self.post_keys.insert(idem, (fingerprint, reply));
    }

    /// A post by a participant (`role`): its `posted` reply, the
    /// `room_message` every member gets, naming the post's origin and `key`
    /// (TW-IDEM-3), and the message kept for history. The author's copy may
    /// arrive before the reply that captures what it must repeat, so only its
    /// form is checked. Returns the variables the reply captures: the
    /// message's id and its `sent_at`.
    fn predict_post(
        &mut self,
        conn: usize,
        id: &str,
        r: u8,
        role: Role,
        body: Value,
        key: Option<&str>,
    ) -> (String, String) {
        let id_var = self.fresh_var(conn, "msg");
        let at_var = self.fresh_var(conn, "sent");
        self.expect(
            conn,
            json!({
                "type": "posted", "id": id, "room": room(r),
                "message_id": {"$type": "string", "$capture": id_var},
                "sent_at": captured_timestamp(&at_var),
            }),
        );
        let kept = json!({
            "message_id": format!("${{{id_var}}}"),
            "author": self.member(r, conn, role),
            "body": {"$literal": body},
            "sent_at": format!("${{{at_var}}}"),
            "origin": self.origin(conn, key),
        });
        let mut own = kept.clone();
        own["message_id"] = ANY_STRING();
        own["sent_at"] = timestamp();
        for (c, _) in self.members(r).to_vec() {
            let message = if c == conn { &own } else { &kept };
            self.expect(
                c,
                json!({"type": "room_message", "room": room(r), "message": message}),
            );
        }
        self.history.entry(r).or_default().push(RoomMessage {
            id_var: id_var.clone(),
            pattern: kept,
        });
        (id_var, at_var)
    }

    /// A page of the room's history: the newest `limit` (default 50) of the
    /// messages before the cursor, oldest first (TW-ROOM-12 to 14). The
    /// cursor is the id of a message of this case, as captured.
    pub(super) fn apply_history(
        &mut self,
        conn: usize,
        id: &str,
        r: u8,
        before: Option<u8>,
        limit: Option<u32>,
    ) {
        let kept = self.history.get(&r).map(Vec::as_slice).unwrap_or(&[]);
        let cursor = before
            .filter(|_| !kept.is_empty())
            .map(|nth| nth as usize % kept.len());
        let older = &kept[..cursor.unwrap_or(kept.len())];
        let limit_used = limit.map_or(HISTORY_DEFAULT_LIMIT, |l| l.min(HISTORY_MAX_LIMIT)) as usize;
        let page = &older[older.len().saturating_sub(limit_used)..];
        let has_more = older.len() > page.len();
        let messages: Vec<Value> = page.iter().map(|m| m.pattern.clone()).collect();
        let before_ref = cursor.map(|i| format!("${{{}}}", kept[i].id_var));
        self.send(
            conn,
            spelled_as_float(
                typed(History {
                    id: request_id(id.to_string()),
                    room: name(room(r)),
                    limit: limit.map(u64::from),
                    before: before_ref,
                    before_position: None,
                    after_position: None,
                    since: None,
                    until: None,
                }),
                "limit",
            ),
            false,
        );
        if self.role_of(conn, r).is_none() {
            self.expect(conn, error(id, ErrorCode::Forbidden));
            return;
        }
        self.expect(
            conn,
            json!({
                "type": "history_page", "id": id, "room": room(r),
                "messages": messages,
                "has_more": has_more,
            }),
        );
    }

    /// A forward page of the room's history (TW-RECOVER-8, TW-RECOVER-9):
    /// the oldest `limit` messages after a position, or since the Unix
    /// epoch. The positions are the server's, so a first `history` of the
    /// whole room captures them.
    pub(super) fn apply_history_forward(
        &mut self,
        conn: usize,
        id: &str,
        r: u8,
        after: Option<u8>,
        limit: Option<u32>,
    ) {
        let member = self.role_of(conn, r).is_some();
        let kept_len = self.history.get(&r).map_or(0, Vec::len);
        let cursor = after
            .filter(|_| member && kept_len > 0)
            .map(|nth| nth as usize % kept_len);
        let mut after_var = None;
        if let Some(cursor) = cursor {
            let probe = format!("{id}-all");
            let vars: Vec<String> = (0..kept_len).map(|_| self.fresh_var(conn, "hp")).collect();
            let messages: Vec<Value> = self.history[&r]
                .iter()
                .zip(&vars)
                .map(|(m, var)| {
                    let mut pattern = m.pattern.clone();
                    pattern["position"] = json!({"$type": "object", "$capture": var});
                    pattern
                })
                .collect();
            self.send(
                conn,
                typed(History {
                    id: request_id(probe.clone()),
                    room: name(room(r)),
                    limit: Some(u64::from(HISTORY_MAX_LIMIT)),
                    before: None,
                    before_position: None,
                    after_position: None,
                    since: None,
                    until: None,
                }),
                false,
            );
            self.expect(
                conn,
                json!({
                    "type": "history_page", "id": probe, "room": room(r),
                    "messages": messages, "has_more": false,
                }),
            );
            self.flush(conn);
            after_var = Some(vars[cursor].clone());
        }
        let mut request = typed(History {
            id: request_id(id.to_string()),
            room: name(room(r)),
            limit: limit.map(u64::from),
            before: None,
            before_position: None,
            after_position: None,
            since: None,
            until: None,
        });
        match &after_var {
            Some(var) => request["after_position"] = json!(format!("${{{var}}}")),
            None => request["since"] = json!("1970-01-01T00:00:00.000Z"),
        }
        self.send(conn, request, false);
        if !member {
            self.expect(conn, error(id, ErrorCode::Forbidden));
            return;
        }
        let kept = self.history.get(&r).map(Vec::as_slice).unwrap_or(&[]);
        let newer = &kept[cursor.map_or(0, |c| c + 1)..];
        let limit_used = limit.map_or(HISTORY_DEFAULT_LIMIT, |l| l.min(HISTORY_MAX_LIMIT)) as usize;
        let page = &newer[..newer.len().min(limit_used)];
        let has_more = newer.len() > page.len();
        let messages: Vec<Value> = page.iter().map(|m| m.pattern.clone()).collect();
        self.expect(
            conn,
            json!({
                "type": "history_page", "id": id, "room": room(r),
                "messages": messages,
                "has_more": has_more,
            }),
        );
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
                self.expect(conn, json!({"type": "ack", "id": id}));
                let push = json!({
                    "type": "typing", "room": room(r),
                    "member": self.member(r, conn, role), "active": active,
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
            "type": "presence", "room": room(room_index),
            "action": action, "member": self.member(room_index, conn, role),
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

impl Model {
    /// A `join` over the bounds of section 11.7 is refused with
    /// `invalid_message` naming the member at fault, and the connection's
    /// memberships stay as they were, its role and name in this room
    /// included: nobody hears of the attempt (TW-PRESENCE-3).
    pub(super) fn apply_oversized_join(
        &mut self,
        conn: usize,
        id: &str,
        r: u8,
        excess: MemberInfoExcess,
    ) {
        let mut request = participant_join(id.to_string(), room(r));
        let (member, value) = match excess {
            // Characters, not bytes, count: 65 of two bytes each.
            MemberInfoExcess::LongName => ("display_name", json!("Ü".repeat(65))),
            MemberInfoExcess::ControlInName => {
                ("display_name", json!(format!("{DISPLAY_NAME_STEM}\u{7}")))
            }
            MemberInfoExcess::ManyMembers => (
                "metadata",
                Value::Object((0..17).map(|i| (format!("m{i}"), json!("v"))).collect()),
            ),
            MemberInfoExcess::LongValue => ("metadata", json!({"status": "s".repeat(257)})),
            MemberInfoExcess::BadName => ("metadata", json!({"status line": "v"})),
        };
        request[member] = value;
        self.send(conn, request, true);
        let path = match member {
            "display_name" => json!("display_name"),
            _ => json!({"$type": "string", "$regex": r"^metadata(\.|$)"}),
        };
        self.expect(
            conn,
            error_with(id, ErrorCode::InvalidMessage, json!({ "path": path })),
        );
    }

    /// On the `room_rate_url` server, whose rooms each accept `messages`
    /// posts within a window: two members of a room of their own post that
    /// many between them, and the post after is refused with `rate_limited`
    /// naming the limit, neither kept nor sent to anyone (TW-QUOTA-3,
    /// TW-QUOTA-4).
    pub(super) fn apply_room_post_rate(&mut self, id: &str, messages: u32) {
        let room_name = format!("{NONCE}-{id}-rate");
        let members = [format!("{id}-ra"), format!("{id}-rb")];
        for (i, member) in members.iter().enumerate() {
            let welcome = json!({
                "type": "welcome",
                "limits": {"room_post_rate": {"messages": messages}},
            });
            self.side_connection_at(member, Some("room_rate_url"), welcome);
            let rid = format!("{id}-j{i}");
            self.send_on(member, participant_join(rid.clone(), room_name.clone()));
            self.steps
                .push(json!({"step": "expect", "conn": member, "match": {
                    "type": "joined", "id": rid, "room": room_name,
                }}));
        }
        self.steps
            .push(json!({"step": "expect", "conn": members[0], "match": {
                "type": "presence", "room": room_name, "action": "joined",
            }}));
        let post = |rid: &str, n: u32| numbered_post(rid.to_string(), room_name.clone(), n.into());
        for n in 0..messages {
            let (poster, other) = (&members[n as usize % 2], &members[(n as usize + 1) % 2]);
            let rid = format!("{id}-p{n}");
            self.send_on(poster, post(&rid, n));
            let pushed = json!({
                "type": "room_message", "room": room_name,
                "message": {"body": {"$literal": {"n": n}}},
            });
            self.steps
                .push(json!({"step": "expect_all", "conn": poster, "match": [
                    {"type": "posted", "id": rid, "room": room_name},
                    pushed,
                ]}));
            self.steps
                .push(json!({"step": "expect", "conn": other, "match": pushed}));
        }
        let poster = &members[messages as usize % 2];
        self.send_on(poster, post(id, messages));
        self.steps.push(
            json!({"step": "expect", "conn": poster, "match": error_with(
                id,
                ErrorCode::RateLimited,
                json!({
                    "limit": "room_post_rate",
                    "retry_after_ms": {"$type": "integer", "$gte": 1},
                }),
            )}),
        );
        // Both fenced before either closes: a close is news to the other member.
        for member in &members {
            self.fence(member);
        }
        for member in &members {
            self.steps.push(json!({"step": "close", "conn": member}));
        }
    }
}
