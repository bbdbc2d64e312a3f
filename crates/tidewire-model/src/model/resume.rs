//! Predictions of the resume profile for watches: a watcher that disconnects
//! between writes and watches again from the last point it received.

use super::*;
use crate::ResumeFrom;

/// The greatest integer every JSON peer reads exactly: a `seq` no journal
/// reaches, so a position with it lies beyond the head (TW-POS-5).
pub(super) const BEYOND_HEAD_SEQ: u64 = 9_007_199_254_740_991;

impl Model {
    /// A watcher on a connection of its own sees the changes of `before`,
    /// disconnects, misses those of `after`, and watches again on a new
    /// connection from the last point it received (`from`): it must get
    /// exactly the missed changes its filter selects, in commit order, and
    /// nothing else (TW-RESUME-2, TW-RESUME-3, TW-POS-3). A point beyond the
    /// journal's head or of another epoch is `history_lost`, and creates no
    /// subscription (TW-RESUME-4, TW-POS-5).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_resume_watch(
        &mut self,
        conn: usize,
        id: &str,
        coll: Option<u8>,
        filter: EventFilter,
        writes: [&[Op]; 3],
        from: ResumeFrom,
    ) {
        let [before, after, live] = writes;
        // The watcher is a connection of the model only while the op runs:
        // the writes' predictions reach it through the usual fan-out.
        let side = self.expected.len();
        self.expected.push(Vec::new());
        self.sent.push(0);
        self.received.push(0);
        let first = format!("{id}-watcher");
        self.side_connection(
            &first,
            json!([{"type": "heartbeat"}]),
            json!({"type": "welcome"}),
        );
        let filter_json = filter.to_json();
        let watch = |id: &str| {
            watch_request(
                id.to_string(),
                DATABASE.into(),
                coll.map(collection),
                &filter_json,
            )
        };
        self.send_on(&first, watch(&format!("{id}-first")));
        let sub_var = self.fresh_var(conn, "rw");
        let mut token_var = self.fresh_var(conn, "rwtok");
        let mut position_var = self.fresh_var(conn, "rwpos");
        let epoch_var = self.fresh_var(conn, "rwepoch");
        self.steps.push(json!({
            "step": "expect",
            "conn": first,
            "match": {
                "type": "watching", "id": format!("{id}-first"), "resumed": false,
                "subscription": {"$type": "string", "$capture": sub_var},
                "resume_token": {"$type": "string", "$capture": token_var},
                "position": {
                    "$type": "object", "$capture": position_var,
                    "epoch": {"$type": "string", "$capture": epoch_var},
                },
            },
        }));
        let kind = || SubKind::Watch {
            coll,
            filter: evaluator(&filter_json),
            pipeline: None,
            full_document: false,
            view: false,
        };
        self.subscriptions.push(Subscription {
            conn: side,
            var: sub_var,
            kind: kind(),
        });
        for (i, write) in before.iter().enumerate() {
            self.write(conn, &format!("{id}-b{i}"), write);
            for mut change in std::mem::take(&mut self.expected[side]) {
                token_var = self.fresh_var(conn, "rwtok");
                position_var = self.fresh_var(conn, "rwpos");
                change["event"]["resume_token"]["$capture"] = json!(token_var);
                change["event"]["position"] = json!({"$type": "object", "$capture": position_var});
                self.steps
                    .push(json!({"step": "expect", "conn": first, "match": change}));
            }
        }
        self.subscriptions.retain(|s| s.conn != side);
        self.steps.push(json!({"step": "close", "conn": first}));
        // What the watcher misses, as the resumed subscription must deliver it.
        let resumed_var = self.fresh_var(conn, "rw");
        // No subscription: a point the journal cannot honour, or a request
        // that names its point twice.
        let lost = matches!(
            from,
            ResumeFrom::BeyondHead | ResumeFrom::OtherEpoch | ResumeFrom::BothForms
        );
        if !lost {
            self.subscriptions.push(Subscription {
                conn: side,
                var: resumed_var.clone(),
                kind: kind(),
            });
        }
        for (i, write) in after.iter().enumerate() {
            self.write(conn, &format!("{id}-a{i}"), write);
        }
        self.subscriptions.retain(|s| s.conn != side);
        let missed = std::mem::take(&mut self.expected[side]);

        let second = format!("{id}-resumed");
        self.side_connection(
            &second,
            json!([{"type": "heartbeat"}]),
            json!({"type": "welcome"}),
        );
        let mut request = watch(id);
        match from {
            ResumeFrom::Token => request["resume_after"] = json!(format!("${{{token_var}}}")),
            ResumeFrom::Position => request["start_after"] = json!(format!("${{{position_var}}}")),
            ResumeFrom::BeyondHead => {
                request["start_after"] =
                    json!({"epoch": format!("${{{epoch_var}}}"), "seq": BEYOND_HEAD_SEQ})
            }
            ResumeFrom::OtherEpoch => {
                // Longer than any epoch the server issued, by a character it
                // may not even use: never an epoch of this journal.
                request["start_after"] =
                    json!({"epoch": format!("${{{epoch_var}}}~other"), "seq": 0})
            }
            ResumeFrom::BothForms => {
                request["resume_after"] = json!(format!("${{{token_var}}}"));
                request["start_after"] = json!(format!("${{{position_var}}}"));
            }
        }
        self.send_on(&second, request);
        if lost {
            // TW-POS-4: both forms at once are a malformed request.
            let code = match from {
                ResumeFrom::BothForms => ErrorCode::InvalidMessage,
                _ => ErrorCode::HistoryLost,
            };
            self.steps.push(json!({
                "step": "expect", "conn": second,
                "match": error(id, code),
            }));
        } else {
            self.steps.push(json!({
                "step": "expect", "conn": second,
                "match": {
                    "type": "watching", "id": id, "resumed": true,
                    "subscription": {"$type": "string", "$capture": resumed_var},
                },
            }));
            for change in missed {
                self.steps
                    .push(json!({"step": "expect", "conn": second, "match": change}));
            }
            self.subscriptions.push(Subscription {
                conn: side,
                var: resumed_var,
                kind: kind(),
            });
        }
        // Live changes follow the replayed ones without a gap; after
        // `history_lost` there is no subscription to deliver them.
        for (i, write) in live.iter().enumerate() {
            self.write(conn, &format!("{id}-l{i}"), write);
            for change in std::mem::take(&mut self.expected[side]) {
                self.steps
                    .push(json!({"step": "expect", "conn": second, "match": change}));
            }
        }
        self.subscriptions.retain(|s| s.conn != side);
        self.expected.pop();
        self.sent.pop();
        self.received.pop();
        // Nothing more: no change twice, none the filter drops.
        let fence = format!("{id}-fence");
        self.send_on(&second, json!({"type": "ping", "id": fence}));
        self.steps.push(json!({
            "step": "expect", "conn": second,
            "match": {"type": "pong", "id": fence},
        }));
        self.steps.push(json!({"step": "close", "conn": second}));
    }

    /// One write of a resume scenario, by `conn`, predicted like any other.
    fn write(&mut self, conn: usize, id: &str, op: &Op) {
        let action = Action {
            conn,
            op: op.clone(),
        };
        self.apply(id.to_string(), &action);
        self.flush(conn);
    }
}
