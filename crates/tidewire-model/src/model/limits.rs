//! Predictions of the limits profile beyond the message-rate flood: the
//! subscription cap and the close for abusing the rate (sections 13, 18.1).

use super::*;
use crate::Endpoint;

impl Model {
    /// A fresh connection `name` on `endpoint`, whose welcome must match `welcome`.
    fn side_connection_on(
        &mut self,
        endpoint: Endpoint,
        name: &str,
        ignore: Value,
        welcome: Value,
    ) {
        let mut open = json!({
            "step": "open",
            "conn": name,
            "subprotocols": ["tidewire.v1"],
            "ignore": ignore,
        });
        if endpoint == Endpoint::Limits {
            open["url"] = json!("${limits_url}");
            self.needs_limits_url = true;
        }
        self.steps.push(open);
        self.steps
            .push(json!({"step": "expect", "conn": name, "match": welcome}));
    }

    pub(super) fn apply_subscription_cap(&mut self, id: &str, endpoint: Endpoint, max: u32) {
        let name = format!("{id}-cap");
        self.side_connection_on(
            endpoint,
            &name,
            json!([{"type": "heartbeat"}]),
            json!({"type": "welcome", "limits": {"max_subscriptions": max}}),
        );
        let first = format!("{id}cap0");
        let subscribe = |model: &mut Model, request: String, topic: String| {
            model.send_on(
                &name,
                json!({"type": "subscribe", "id": request, "topic": topic}),
            );
        };
        for i in 0..max {
            let request = format!("{id}-s{i}");
            subscribe(self, request.clone(), format!("{NONCE}-cap{i}"));
            let mut subscription = json!({"$type": "string"});
            if i == 0 {
                subscription["$capture"] = json!(first);
            }
            self.steps.push(json!({
                "step": "expect",
                "conn": name,
                "match": {"type": "subscribed", "id": request, "subscription": subscription},
            }));
        }
        subscribe(self, id.to_string(), format!("{NONCE}-capx"));
        self.steps.push(json!({
            "step": "expect",
            "conn": name,
            "match": error_with(
                id,
                ErrorCode::LimitExceeded,
                json!({"limit": "max_subscriptions"}),
            ),
        }));
        // The refused subscription took no place: ending one frees exactly one.
        let unsubscribe = format!("{id}-un");
        self.send_on(
            &name,
            json!({"type": "unsubscribe", "id": unsubscribe, "subscription": format!("${{{first}}}")}),
        );
        self.steps.push(json!({
            "step": "expect",
            "conn": name,
            "match": {"type": "unsubscribed", "id": unsubscribe, "subscription": format!("${{{first}}}")},
        }));
        let again = format!("{id}-again");
        subscribe(self, again.clone(), format!("{NONCE}-capx"));
        self.steps.push(json!({
            "step": "expect",
            "conn": name,
            "match": {"type": "subscribed", "id": again},
        }));
        self.steps.push(json!({"step": "close", "conn": name}));
    }

    pub(super) fn apply_rate_abuse(
        &mut self,
        id: &str,
        endpoint: Endpoint,
        messages: u32,
        window_ms: u64,
    ) {
        // What the server answers before it closes (pongs, then
        // `rate_limited`) is the flood's business; here only the close counts.
        let name = format!("{id}-abuse");
        self.side_connection_on(
            endpoint,
            &name,
            json!([
                {"type": "heartbeat"},
                {"type": "pong", "id": id},
                {"type": "error", "id": id, "error": {"code": ErrorCode::RateLimited.as_str()}},
            ]),
            json!({"type": "welcome", "limits": {"rate": {"messages": messages}}}),
        );
        self.steps.push(json!({
            "step": "send", "conn": name, "repeat": 2 * messages + 1,
            "json": {"type": "ping", "id": id},
        }));
        self.steps.push(json!({
            "step": "expect_close",
            "conn": name,
            "code": 4005,
            "reason": "^retry_after_ms=[1-9][0-9]*(;|$)",
            "within_ms": window_ms + 2000,
        }));
    }
}
