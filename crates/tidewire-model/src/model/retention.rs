//! Predictions of the resume profile on streams of their own: a topic kept
//! only as long as the announced retention, a room joined after a position
//! it cannot honour, and the epochs of two runs of the server.

use super::resume::BEYOND_HEAD_SEQ;
use super::*;

fn publish_request(id: &str, topic_name: &str, n: i64) -> Value {
    typed(Publish {
        id: request_id(id.to_string()),
        topic: name(topic_name.to_string()),
        data: json!({"n": n}),
        idempotency_key: None,
    })
}

impl Model {
    /// A fresh connection `name` on the server of the run variable `url_var`
    /// (the run's own server when `None`), whose `welcome` must match `welcome`.
    pub(super) fn side_connection_at(&mut self, name: &str, url_var: Option<&str>, welcome: Value) {
        let mut open = json!({
            "step": "open",
            "conn": name,
            "subprotocols": ["tidewire.v1"],
            "ignore": [{"type": "heartbeat"}],
        });
        if let Some(var) = url_var {
            open["url"] = json!(format!("${{{var}}}"));
        }
        self.steps.push(open);
        self.steps
            .push(json!({"step": "expect", "conn": name, "match": welcome}));
    }

    /// A request on a side connection and the one frame that must answer it.
    pub(super) fn exchange(&mut self, conn: &str, request: Value, reply: Value) {
        self.send_on(conn, request);
        self.steps
            .push(json!({"step": "expect", "conn": conn, "match": reply}));
    }

    /// A ping on a side connection, whose pong shows that nothing
    /// unpredicted was queued before it.
    pub(super) fn fence(&mut self, conn: &str) {
        let fence = format!("{conn}-fence");
        self.exchange(
            conn,
            json!({"type": "ping", "id": fence}),
            json!({"type": "pong", "id": fence}),
        );
    }

    fn fence_and_close(&mut self, conn: &str) {
        self.fence(conn);
        self.steps.push(json!({"step": "close", "conn": conn}));
    }

    /// On the `retention_url` server, which announces keeping `retention`
    /// publications of each topic: a subscription after a position that
    /// exactly `retention` publications follow must recover them all
    /// (TW-RECOVER-6, TW-RECOVER-2); after a position one more publication
    /// follows, the server either still keeps them all and replays them from
    /// the first, or answers `history_lost`, never a replay with a gap
    /// (TW-POS-5).
    pub(super) fn apply_topic_retention(&mut self, id: &str, retention: u64) {
        let topic_name = format!("{NONCE}-{id}-kept");
        let publisher = format!("{id}-tpub");
        let resumed = format!("{id}-tsub");
        let late = format!("{id}-tlate");
        self.side_connection_at(
            &publisher,
            Some("retention_url"),
            json!({"type": "welcome", "retention": {"topic": retention}}),
        );
        let mut positions = Vec::new();
        // Data `n` -1 and 0 mark the two publications resumed after; those
        // after them count from 1.
        let ns: Vec<i64> = (-1..=retention as i64).collect();
        for (i, n) in ns.iter().enumerate() {
            let rid = format!("{id}-p{i}");
            let var = self.fresh_var(0, "tr");
            let pattern = captured_position(&var);
            let request = publish_request(&rid, &topic_name, *n);
            self.exchange(
                &publisher,
                request,
                json!({"type": "published", "id": rid, "topic": topic_name, "position": pattern}),
            );
            positions.push(var);
        }
        let subscribe = |rid: &str, after: &str| {
            let mut request = typed(Subscribe {
                id: request_id(rid.to_string()),
                topic: name(topic_name.clone()),
                filter: None,
                start_after: None,
            });
            request["start_after"] = same_position(after);
            request
        };
        self.side_connection_at(&resumed, Some("retention_url"), json!({"type": "welcome"}));
        let sub_var = self.fresh_var(0, "trsub");
        self.exchange(
            &resumed,
            subscribe(id, &positions[1]),
            json!({
                "type": "subscribed", "id": id, "recovered": true,
                "subscription": {"$type": "string", "$capture": sub_var},
            }),
        );
        for n in 1..=retention as i64 {
            self.steps.push(json!({
                "step": "expect", "conn": resumed,
                "match": {
                    "type": "publication", "subscription": format!("${{{sub_var}}}"),
                    "topic": topic_name, "data": {"$literal": {"n": n}},
                },
            }));
        }
        self.fence_and_close(&resumed);
        let rid = format!("{id}-late");
        self.side_connection_at(&late, Some("retention_url"), json!({"type": "welcome"}));
        self.send_on(&late, subscribe(&rid, &positions[0]));
        self.steps.push(json!({
            "step": "expect", "conn": late,
            "match": {"$one_of": [
                {"type": "subscribed", "id": rid, "recovered": true},
                error(&rid, ErrorCode::HistoryLost),
            ]},
        }));
        // Recovered, the first publication after the position comes before
        // the pong; lost, only the pong.
        let fence = format!("{late}-fence");
        self.send_on(&late, json!({"type": "ping", "id": fence}));
        self.steps.push(json!({
            "step": "expect", "conn": late,
            "match": {"$one_of": [
                {"type": "publication", "topic": topic_name, "data": {"$literal": {"n": 0}}},
                {"type": "pong", "id": fence},
            ]},
        }));
        for conn in [&late, &publisher] {
            self.steps.push(json!({"step": "close", "conn": conn}));
        }
    }

    /// A `join` of a room of its own after a position the room cannot
    /// honour, beyond its head or of an epoch it never had: `history_lost`,
    /// and no membership (TW-POS-5, TW-RECOVER-4): the joiner may not post,
    /// and the member hears of no one.
    pub(super) fn apply_room_lost(&mut self, id: &str, beyond_head: bool) {
        let room_name = format!("{NONCE}-{id}-lost");
        let member = format!("{id}-lmember");
        let late = format!("{id}-llate");
        let join = |rid: &str| participant_join(rid.to_string(), room_name.clone());
        for conn in [&member, &late] {
            self.side_connection_at(conn, None, json!({"type": "welcome"}));
        }
        let epoch = self.fresh_var(0, "lepoch");
        let joined = format!("{id}-mj");
        self.exchange(
            &member,
            join(&joined),
            json!({
                "type": "joined", "id": joined, "room": room_name,
                "position": {"epoch": {"$type": "string", "$capture": epoch}, "seq": {"$type": "integer"}},
            }),
        );
        let posted = format!("{id}-m");
        self.send_on(&member, numbered_post(posted.clone(), room_name.clone(), 0));
        self.steps.push(json!({"step": "expect_all", "conn": member, "match": [
            {"type": "posted", "id": posted, "room": room_name},
            {"type": "room_message", "room": room_name, "message": {"body": {"$literal": {"n": 0}}}},
        ]}));
        let mut request = join(id);
        request["start_after"] = if beyond_head {
            json!({"epoch": format!("${{{epoch}}}"), "seq": BEYOND_HEAD_SEQ})
        } else {
            // Longer than the room's epoch, by a character it may not even
            // use: never an epoch of this room.
            json!({"epoch": format!("${{{epoch}}}~other"), "seq": 0})
        };
        self.exchange(&late, request, error(id, ErrorCode::HistoryLost));
        let refused = format!("{id}-lp");
        self.exchange(
            &late,
            numbered_post(refused.clone(), room_name.clone(), 1),
            error(&refused, ErrorCode::Forbidden),
        );
        self.fence_and_close(&member);
        self.steps.push(json!({"step": "close", "conn": late}));
    }

    /// The same first publication on this run of the server and on another
    /// (`second_run_url`): their ids and their positions' epochs differ, as
    /// nothing one run issues is issued again by another (TW-POS-6).
    pub(super) fn apply_second_run(&mut self, id: &str) {
        let topic_name = format!("{NONCE}-{id}-run");
        let here = format!("{id}-here");
        let there = format!("{id}-there");
        self.side_connection_at(&here, None, json!({"type": "welcome"}));
        self.side_connection_at(&there, Some("second_run_url"), json!({"type": "welcome"}));
        let message_id = self.fresh_var(0, "runid");
        let epoch = self.fresh_var(0, "runepoch");
        let request = publish_request(id, &topic_name, 0);
        self.exchange(
            &here,
            request,
            json!({
                "type": "published", "id": id, "topic": topic_name,
                "message_id": {"$type": "string", "$capture": message_id},
                "position": {"epoch": {"$type": "string", "$capture": epoch}},
            }),
        );
        let request = publish_request(id, &topic_name, 0);
        self.exchange(
            &there,
            request,
            json!({
                "type": "published", "id": id, "topic": topic_name,
                "message_id": {"$type": "string", "$ne": format!("${{{message_id}}}")},
                "position": {"epoch": {"$type": "string", "$ne": format!("${{{epoch}}}")}},
            }),
        );
        for conn in [&here, &there] {
            self.steps.push(json!({"step": "close", "conn": conn}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemberInfoExcess, ResumeFrom};

    use crate::model::tests::case_steps as steps;

    fn on<'a>(steps: &'a [Value], conn: &str) -> Vec<&'a Value> {
        steps.iter().filter(|s| s["conn"] == conn).collect()
    }

    #[test]
    fn every_welcome_states_its_time_liveness_and_expiry_notice_unless_auth_is_off() {
        let steps = steps(1, &[(0, Op::Ping { payload: 1 })]);
        let welcome = &steps[1]["match"];
        assert_eq!(welcome["type"], "welcome");
        assert_eq!(welcome["server_time"]["$regex"], TIMESTAMP_REGEX);
        assert_eq!(welcome["liveness"]["ping_timeout_ms"]["$gte"], 1);
        let modes = welcome["auth"]["$one_of"].as_array().unwrap();
        assert_eq!(modes[0], json!({"mode": "off"}));
        assert_eq!(modes[1]["expiry_notice_ms"]["$type"], "integer");
    }

    #[test]
    fn an_oversized_join_is_refused_and_changes_no_membership() {
        let join = Op::Join {
            room: 0,
            observer: false,
            display_name: Some(1),
        };
        let oversized = |excess| Op::OversizedJoin { room: 0, excess };
        let steps = steps(
            2,
            &[
                (0, join),
                (0, oversized(MemberInfoExcess::LongName)),
                (1, oversized(MemberInfoExcess::LongValue)),
                (1, Op::Post { room: 0, n: 1 }),
                (0, Op::Post { room: 0, n: 2 }),
            ],
        );
        let sent = |id: &str| steps.iter().position(|s| s["json"]["id"] == id).unwrap();
        let name = &steps[sent("q1")]["json"]["display_name"];
        assert_eq!(name.as_str().unwrap().chars().count(), 65);
        assert_eq!(steps[sent("q1")]["invalid"], true);
        let refused = &steps[sent("q1") + 1]["match"][0];
        assert_eq!(refused["error"]["code"], "invalid_message");
        assert_eq!(refused["error"]["details"]["path"], "display_name");
        let refused = &steps[sent("q2") + 1]["match"][0];
        assert_eq!(
            refused["error"]["details"]["path"]["$regex"],
            r"^metadata(\.|$)"
        );
        // c1 joined nothing, and c0 is still a member under its first name.
        assert_eq!(
            steps[sent("q3") + 1]["match"][0]["error"]["code"],
            "forbidden"
        );
        let message = &steps[sent("q4") + 1]["match"][1]["message"];
        assert_eq!(message["author"]["display_name"], "Member Ü 1");
    }

    #[test]
    fn a_topic_resumes_at_its_retention_and_past_it_never_with_a_gap() {
        let steps = steps(1, &[(0, Op::TopicRetention { retention: 3 })]);
        let publisher = on(&steps, "q0-tpub");
        assert_eq!(publisher[0]["url"], "${retention_url}");
        assert_eq!(publisher[1]["match"]["retention"]["topic"], 3);
        // -1 and 0, then the retention's 3.
        let published: Vec<&Value> = publisher
            .iter()
            .filter(|s| s["step"] == "send")
            .map(|s| &s["json"]["data"]["n"])
            .collect();
        assert_eq!(
            published,
            [&json!(-1), &json!(0), &json!(1), &json!(2), &json!(3)]
        );
        let resumed = on(&steps, "q0-tsub");
        let replayed: Vec<&Value> = resumed
            .iter()
            .filter(|s| s["match"]["type"] == "publication")
            .map(|s| &s["match"]["data"]["$literal"]["n"])
            .collect();
        assert_eq!(replayed, [&json!(1), &json!(2), &json!(3)]);
        let late = on(&steps, "q0-tlate");
        let outcomes = late[3]["match"]["$one_of"].as_array().unwrap();
        assert_eq!(outcomes[1]["error"]["code"], "history_lost");
        let first = late[5]["match"]["$one_of"].as_array().unwrap();
        assert_eq!(first[0]["data"]["$literal"]["n"], 0);
        assert_eq!(first[1]["type"], "pong");
    }

    #[test]
    fn a_room_post_over_the_rate_is_refused_on_the_rate_server() {
        let steps = steps(1, &[(0, Op::RoomPostRate { messages: 3 })]);
        let a = on(&steps, "q0-ra");
        assert_eq!(a[0]["url"], "${room_rate_url}");
        let refusal = steps
            .iter()
            .find(|s| s["match"]["error"]["code"] == "rate_limited")
            .expect("the fourth post is refused");
        assert_eq!(refusal["conn"], "q0-rb");
        assert_eq!(
            refusal["match"]["error"]["details"]["limit"],
            "room_post_rate"
        );
        let posts = steps.iter().filter(|s| s["json"]["type"] == "post").count();
        assert_eq!(posts, 4);
    }

    #[test]
    fn a_join_after_an_unhonourable_room_position_is_history_lost_and_no_member() {
        for beyond_head in [false, true] {
            let steps = steps(1, &[(0, Op::RoomLost { beyond_head })]);
            let late = on(&steps, "q0-llate");
            let start = &late[2]["json"]["start_after"];
            if beyond_head {
                assert_eq!(start["seq"], BEYOND_HEAD_SEQ);
            } else {
                assert!(start["epoch"].as_str().unwrap().ends_with("~other"));
            }
            assert_eq!(late[3]["match"]["error"]["code"], "history_lost");
            assert_eq!(late[5]["match"]["error"]["code"], "forbidden");
        }
    }

    #[test]
    fn a_second_run_issues_other_ids_and_epochs() {
        let steps = steps(1, &[(0, Op::SecondRun)]);
        let there = on(&steps, "q0-there");
        assert_eq!(there[0]["url"], "${second_run_url}");
        let published = &there[3]["match"];
        assert!(published["message_id"]["$ne"]
            .as_str()
            .unwrap()
            .starts_with("${"));
        assert!(published["position"]["epoch"]["$ne"].is_string());
    }

    #[test]
    fn a_watch_with_both_resume_forms_is_invalid_and_subscribes_nothing() {
        let create = |key| Op::Create {
            coll: 0,
            key,
            n: 1,
            tag: None,
        };
        let steps = steps(
            1,
            &[(
                0,
                Op::ResumeWatch {
                    coll: Some(0),
                    filter: crate::EventFilter::All,
                    before: vec![create(0)],
                    after: vec![create(1)],
                    live: vec![create(2)],
                    from: ResumeFrom::BothForms,
                },
            )],
        );
        let resumed = on(&steps, "q0-resumed");
        let request = &resumed[2]["json"];
        assert!(request["resume_after"].is_string() && request["start_after"].is_string());
        assert_eq!(resumed[3]["match"]["error"]["code"], "invalid_message");
        // No change reaches it: the pong follows the error.
        assert_eq!(resumed[5]["match"]["type"], "pong");
    }
}
