//! Predictions of the auth profile: a write refused for a token whose scopes do not allow it.

use super::*;

impl Model {
    pub(super) fn apply_out_of_scope(&mut self, id: &str, coll: u8) {
        let rid = request_id(id.to_string());
        let name = format!("{id}-narrow");
        self.steps.push(json!({
            "step": "open",
            "conn": name,
            "subprotocols": ["tidewire.v1"],
            "query": {"token": "${token_narrow}"},
            "inject": false,
            "ignore": [{"type": "heartbeat"}],
        }));
        self.steps
            .push(json!({"step": "expect", "conn": name, "match": {"type": "welcome"}}));
        self.send_on(
            &name,
            typed(Create {
                id: rid,
                database: Some(coll_name(DATABASE.into())),
                collection: Some(coll_name(collection(coll))),
                record: Map::from_iter([("_id".to_string(), json!("narrow"))]),
                idempotency_key: None,
            }),
        );
        self.steps.push(
            json!({"step": "expect", "conn": name, "match": error(id, ErrorCode::Forbidden)}),
        );
        self.steps.push(json!({"step": "close", "conn": name}));
    }
}
