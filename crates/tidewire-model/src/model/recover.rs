//! Predictions of the resume profile for rooms: a member that drops between
//! posts and joins again from the last message it received.

use super::*;

impl Model {
    /// A member on a connection of its own receives the posts `before`,
    /// drops, misses `after`, and joins again with `start_after` the last
    /// position it received (the `joined` one when it received none): it
    /// must get exactly the missed messages as `room_message`s, in posting
    /// order, then the `live` ones, and nothing else (TW-RECOVER-3,
    /// TW-RECOVER-4). The room is the operation's own, so that the model's
    /// members do not see its traffic.
    pub(super) fn apply_rejoin_room(&mut self, id: &str, posts: [&[i64]; 3]) {
        let [before, after, live] = posts;
        let room_name = format!("{NONCE}-{id}-rejoin");
        let member = format!("{id}-member");
        let poster = format!("{id}-poster");
        let join = |rid: &str| participant_join(rid.to_string(), room_name.clone());
        for conn in [&poster, &member] {
            self.side_connection(
                conn,
                json!([{"type": "heartbeat"}]),
                json!({"type": "welcome"}),
            );
        }
        self.send_on(&poster, join(&format!("{id}-pj")));
        self.steps
            .push(json!({"step": "expect", "conn": poster, "match": {
                "type": "joined", "id": format!("{id}-pj"), "room": room_name,
            }}));
        // Epoch and seq apart: a server may add members of its own to a
        // position, and they need not be the same in every message.
        let captured = |model: &mut Model| {
            let (epoch, seq) = (model.fresh_var(0, "repoch"), model.fresh_var(0, "rseq"));
            let pattern = json!({
                "epoch": {"$type": "string", "$capture": epoch},
                "seq": {"$type": "integer", "$capture": seq},
            });
            ((epoch, seq), pattern)
        };
        let (mut position, pattern) = captured(self);
        self.send_on(&member, join(&format!("{id}-mj")));
        self.steps
            .push(json!({"step": "expect", "conn": member, "match": {
                "type": "joined", "id": format!("{id}-mj"), "room": room_name,
                "position": pattern,
            }}));
        self.steps
            .push(json!({"step": "expect", "conn": poster, "match": {
                "type": "presence", "room": room_name, "action": "joined",
            }}));
        let post = |model: &mut Model, rid: String, n: i64| {
            let id_var = model.fresh_var(0, "rmsg");
            let ((epoch, seq), pattern) = captured(model);
            model.send_on(&poster, numbered_post(rid.clone(), room_name.clone(), n));
            model.steps.push(json!({"step": "expect_all", "conn": poster, "match": [
                {"type": "posted", "id": rid, "room": room_name,
                 "message_id": {"$type": "string", "$capture": id_var},
                 "position": pattern},
                {"type": "room_message", "room": room_name, "message": {"body": {"$literal": {"n": n}}}},
            ]}));
            // What every other member's copy repeats of the author's reply.
            json!({
                "type": "room_message", "room": room_name,
                "message": {
                    "message_id": format!("${{{id_var}}}"),
                    "position": {"epoch": format!("${{{epoch}}}"), "seq": format!("${{{seq}}}")},
                    "body": {"$literal": {"n": n}},
                },
            })
        };
        for (i, n) in before.iter().enumerate() {
            let mut message = post(self, format!("{id}-b{i}"), *n);
            let (last, pattern) = captured(self);
            position = last;
            message["message"]["position"] = pattern;
            self.steps
                .push(json!({"step": "expect", "conn": member, "match": message}));
        }
        self.steps.push(json!({"step": "close", "conn": member}));
        self.steps
            .push(json!({"step": "expect", "conn": poster, "match": {
                "type": "presence", "room": room_name, "action": "left", "reason": "disconnected",
            }}));
        let missed: Vec<Value> = after
            .iter()
            .enumerate()
            .map(|(i, n)| post(self, format!("{id}-a{i}"), *n))
            .collect();
        let again = format!("{id}-rejoined");
        self.side_connection(
            &again,
            json!([{"type": "heartbeat"}]),
            json!({"type": "welcome"}),
        );
        let mut request = join(id);
        let (epoch, seq) = position;
        request["start_after"] =
            json!({"epoch": format!("${{{epoch}}}"), "seq": format!("${{{seq}}}")});
        self.send_on(&again, request);
        self.steps
            .push(json!({"step": "expect", "conn": again, "match": {
                "type": "joined", "id": id, "room": room_name, "recovered": true,
            }}));
        for message in missed {
            self.steps
                .push(json!({"step": "expect", "conn": again, "match": message}));
        }
        self.steps
            .push(json!({"step": "expect", "conn": poster, "match": {
                "type": "presence", "room": room_name, "action": "joined",
            }}));
        for (i, n) in live.iter().enumerate() {
            let message = post(self, format!("{id}-l{i}"), *n);
            self.steps
                .push(json!({"step": "expect", "conn": again, "match": message}));
        }
        for conn in [&again, &poster] {
            let fence = format!("{conn}-fence");
            self.send_on(conn, json!({"type": "ping", "id": fence}));
            self.steps.push(
                json!({"step": "expect", "conn": conn, "match": {"type": "pong", "id": fence}}),
            );
        }
        for conn in [&poster, &again] {
            self.steps.push(json!({"step": "close", "conn": conn}));
        }
    }
}
