//! Predictions for bad input: frames the decoder refuses (the session goes
//! on), frames the frame checks close a connection for, and a client's own
//! close (sections 4, 18.2, 18.3).

use super::*;
use crate::{EndingFrame, Undecodable};

/// How long a close may take to arrive: far beyond any scheduling delay,
/// and only ever waited for in full by a server that breaks the rule.
const CLOSE_WITHIN_MS: u64 = 2000;

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A valid request as text, for frames that carry one in the wrong form.
fn ping_text(id: &str) -> String {
    format!(r#"{{"type":"ping","id":"{id}"}}"#)
}

impl Model {
    pub(super) fn apply_undecodable(&mut self, conn: usize, id: &str, kind: Undecodable) {
        let text = match kind {
            Undecodable::NotJson => format!(r#"{{"type":"ping","id":"{id}""#),
            Undecodable::NotObject => format!("[{}]", ping_text(id)),
            Undecodable::MissingType => format!(r#"{{"id":"{id}","payload":1}}"#),
            Undecodable::NumericType => format!(r#"{{"type":7,"id":"{id}"}}"#),
        };
        self.send_text(conn, json!({"text": text}));
        // Checks 6 and 7 come before the id is read; check 8 has it readable.
        let reply = match kind {
            Undecodable::NotJson | Undecodable::NotObject => json!({
                "type": "error",
                "id": {"$absent": true},
                "error": {
                    "code": ErrorCode::InvalidMessage.as_str(),
                    "retry": retry_class(ErrorCode::InvalidMessage),
                },
            }),
            Undecodable::MissingType | Undecodable::NumericType => {
                error_with(id, ErrorCode::InvalidMessage, json!({"path": "type"}))
            }
        };
        self.expect(conn, reply);
    }

    pub(super) fn apply_nesting(&mut self, conn: usize, id: &str, depth: u32, object: bool) {
        // The message object is depth 1: `depth - 1` arrays in its payload
        // reach the limit exactly, and one level more, as an array or as an
        // object around the arrays, goes over it.
        let at = format!("{id}-at");
        self.send_text(
            conn,
            json!({"nested": {
                "depth": depth - 1,
                "prefix": format!(r#"{{"type":"ping","id":"{at}","payload":"#),
                "suffix": "}",
            }}),
        );
        self.expect(
            conn,
            json!({"type": "pong", "id": at, "payload": {"$type": "array"}}),
        );
        let over = if object {
            json!({
                "depth": depth - 1,
                "prefix": format!(r#"{{"type":"ping","id":"{id}","payload":{{"a":"#),
                "suffix": "}}",
            })
        } else {
            json!({
                "depth": depth,
                "prefix": format!(r#"{{"type":"ping","id":"{id}","payload":"#),
                "suffix": "}",
            })
        };
        self.send_text(conn, json!({ "nested": over }));
        // The depth is checked before parsing, so the readable id is not carried.
        self.expect(
            conn,
            json!({
                "type": "error",
                "id": {"$absent": true},
                "error": {
                    "code": ErrorCode::InvalidMessage.as_str(),
                    "retry": retry_class(ErrorCode::InvalidMessage),
                },
            }),
        );
    }

    pub(super) fn apply_ending_frame(&mut self, id: &str, kind: EndingFrame) {
        let name = format!("{id}-end");
        let max_var = format!("{id}max");
        let welcome = match kind {
            EndingFrame::Oversize => json!({
                "type": "welcome",
                "limits": {"max_message_bytes": {"$type": "integer", "$capture": max_var}},
            }),
            _ => json!({"type": "welcome"}),
        };
        self.side_connection(&name, json!([{"type": "heartbeat"}]), welcome);
        let ping = ping_text(id);
        let (send, code) = match kind {
            EndingFrame::Binary => (json!({"binary_hex": hex(ping.as_bytes())}), 1003),
            EndingFrame::InvalidUtf8 => {
                let mut bytes = format!(r#"{{"type":"ping","id":"{id}","payload":""#).into_bytes();
                bytes.extend([0xff, b'"', b'}']);
                (json!({"text_hex": hex(&bytes)}), 1007)
            }
            EndingFrame::Oversize => (
                json!({"sized": {
                    "bytes": format!("${{{max_var}}}"),
                    "plus": 1,
                    "prefix": format!(r#"{{"type":"ping","id":"{id}","payload":""#),
                    "suffix": "\"}",
                }}),
                1009,
            ),
            EndingFrame::ReservedBit => (
                json!({"frame": {"opcode": 1, "rsv2": true, "payload_hex": hex(ping.as_bytes())}}),
                1002,
            ),
            EndingFrame::ReservedOpcode => (
                json!({"frame": {"opcode": 3, "payload_hex": hex(ping.as_bytes())}}),
                1002,
            ),
            EndingFrame::Close(code) => {
                self.steps.push(json!({
                    "step": "close",
                    "conn": name,
                    "code": code,
                    "reply_code": code,
                    "within_ms": CLOSE_WITHIN_MS,
                }));
                return;
            }
            EndingFrame::ForbiddenCloseCode(code) => (
                json!({"frame": {"opcode": 8, "payload_hex": hex(&code.to_be_bytes())}}),
                1002,
            ),
        };
        let mut step = json!({"step": "send", "conn": name});
        step.as_object_mut()
            .expect("a step is an object")
            .extend(send.as_object().expect("a send body is an object").clone());
        self.steps.push(step);
        self.steps.push(json!({
            "step": "expect_close",
            "conn": name,
            "code": code,
            "within_ms": CLOSE_WITHIN_MS,
        }));
    }
}
