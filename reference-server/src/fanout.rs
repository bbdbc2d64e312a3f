//! Frames shared between many receivers.
//!
//! A change event is serialized once per variant (with or without
//! `full_document`) when it is committed, and a publication once when it is
//! published. Each subscriber's frame is a small head naming its subscription
//! (`{"type":"change","subscription":<id>,"event":`) followed by the shared
//! body (the event JSON and the closing `}`), so the body is never
//! re-serialized per subscriber; a large body is not even copied (see
//! [`Frame::Spliced`]). Room pushes carry no subscription id, so one
//! serialized frame (a refcounted `Utf8Bytes`) goes to every member as is.

use serde_json::Value;
use tidewire_protocol::ServerMessage;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::outbound::Frame;
use crate::util::json_string;

/// Bodies shorter than this are copied into one frame per receiver: below it,
/// writing a second WebSocket frame costs more than the copy it saves.
const SHARE_BODY_FROM_BYTES: usize = 1024;

fn spliced(head: String, body: &Utf8Bytes) -> Frame {
    if body.len() < SHARE_BODY_FROM_BYTES {
        let mut text = head;
        text.push_str(body);
        Frame::Whole(text.into())
    } else {
        Frame::Spliced {
            head: head.into(),
            shared: body.clone(),
        }
    }
}

/// The shared body of every `change` frame of one serialized event.
pub(crate) fn change_frame_body(event_json: &str) -> Utf8Bytes {
    let mut body = String::with_capacity(event_json.len() + 1);
    body.push_str(event_json);
    body.push('}');
    body.into()
}

/// A `change` frame for `subscription` around a shared body from [`change_frame_body`].
pub(crate) fn change_frame(subscription: &str, body: &Utf8Bytes) -> Frame {
    let id = json_string(subscription);
    let mut head = String::with_capacity(id.len() + 48);
    head.push_str(r#"{"type":"change","subscription":"#);
    head.push_str(&id);
    head.push_str(r#","event":"#);
    spliced(head, body)
}

/// The shared body of every `publication` frame: the remaining fields
/// (`{"topic":...,"data":...}`, in the order of `Publication`) without their `{`.
pub(crate) fn publication_frame_body(fields: &Value) -> Utf8Bytes {
    let json = fields.to_string();
    debug_assert!(json.starts_with('{') && json.len() > 2);
    Utf8Bytes::from(&json[1..])
}

/// A `publication` frame for `subscription` around a body from [`publication_frame_body`].
pub(crate) fn publication_frame(subscription: &str, body: &Utf8Bytes) -> Frame {
    let id = json_string(subscription);
    let mut head = String::with_capacity(id.len() + 48);
    head.push_str(r#"{"type":"publication","subscription":"#);
    head.push_str(&id);
    head.push(',');
    spliced(head, body)
}

/// One serialization for every receiver of a push without a subscription id.
pub(crate) fn shared_frame(message: &ServerMessage) -> Utf8Bytes {
    message.to_json().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tidewire_protocol::{
        Change, ChangeEvent, CollectionName, DocumentKey, Name, Namespace, OperationType, Position,
        Publication, ResumeToken, Timestamp,
    };

    #[test]
    fn spliced_change_equals_the_typed_serialization() {
        let event = ChangeEvent {
            operation_type: OperationType::Insert,
            ns: Namespace {
                database: CollectionName::new("app").unwrap(),
                collection: CollectionName::new("users").unwrap(),
            },
            document_key: DocumentKey { id: "u\"1".into() },
            full_document: Some(json!({"_id": "u\"1", "n": 1}).as_object().unwrap().clone()),
            update_description: None,
            committed_at: Timestamp("2026-01-01T00:00:00.000Z".into()),
            resume_token: ResumeToken("e:1".into()),
            full_document_before_change: None,
            view: None,
            origin: None,
            position: Some(Position {
                epoch: "e".into(),
                seq: 1,
            }),
        };
        let event_json = serde_json::to_string(&event).unwrap();
        let typed = ServerMessage::Change(Change {
            subscription: "s\"1".into(),
            event,
            server_time: None,
        })
        .to_json();
        let frame = change_frame("s\"1", &change_frame_body(&event_json));
        assert!(matches!(frame, Frame::Whole(_)));
        assert_eq!(frame.into_text().as_str(), typed);
    }

    #[test]
    fn spliced_publication_equals_the_typed_serialization() {
        let publication = Publication {
            subscription: "s2".into(),
            topic: Name::new("metrics.cpu").unwrap(),
            message_id: "0000000000000001".into(),
            publisher: "alice".into(),
            published_at: Timestamp("2026-01-01T00:00:00.000Z".into()),
            data: json!({"v": [1, 2]}),
            server_time: None,
            origin: None,
            position: Some(Position {
                epoch: "t".into(),
                seq: 1,
            }),
        };
        let fields = json!({
            "topic": publication.topic,
            "message_id": publication.message_id,
            "publisher": publication.publisher,
            "published_at": publication.published_at,
            "data": publication.data,
            "position": publication.position,
        });
        let typed = ServerMessage::Publication(publication).to_json();
        let frame = publication_frame("s2", &publication_frame_body(&fields));
        assert_eq!(frame.into_text().as_str(), typed);
    }

    #[test]
    fn a_large_body_is_shared_not_copied() {
        let body = change_frame_body(&format!(r#"{{"pad":"{}"}}"#, "x".repeat(4096)));
        let frames = [change_frame("s1", &body), change_frame("s2", &body)];
        for frame in frames {
            let Frame::Spliced { head, shared } = &frame else {
                panic!("a large body is spliced");
            };
            assert_eq!(shared.as_str().as_ptr(), body.as_str().as_ptr());
            assert!(head.starts_with(r#"{"type":"change","subscription":"#));
            assert!(frame.into_text().ends_with(r#""}}"#));
        }
    }
}
