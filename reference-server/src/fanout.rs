//! Frames shared between many receivers.
//!
//! A change event is serialized once per variant (with or without
//! `full_document`) when it is committed, and a publication once when it is
//! published. Each subscriber's frame is a head naming its subscription
//! (`{"type":"change","subscription":<id>,"event":`), built once when the
//! subscription is made, followed by the shared body (the event JSON and the
//! closing `}`): queuing a push for a subscriber copies nothing and allocates
//! nothing but its place in the queue (see [`Frame::Spliced`]). The two are
//! joined, with the server time, only as the frame is written (`clock.rs`).
//! Room pushes carry no subscription id, so one serialized frame (a
//! refcounted `Utf8Bytes`) goes to every member as is.

use serde_json::Value;
use tidewire_protocol::ServerMessage;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::outbound::Frame;
use crate::util::json_string;

fn head(prefix: &str, subscription: &str, suffix: &str) -> Utf8Bytes {
    let id = json_string(subscription);
    let mut head = String::with_capacity(prefix.len() + id.len() + suffix.len());
    head.push_str(prefix);
    head.push_str(&id);
    head.push_str(suffix);
    head.into()
}

/// The shared body of every `change` frame of one serialized event.
pub(crate) fn change_frame_body(event_json: &str) -> Utf8Bytes {
    let mut body = String::with_capacity(event_json.len() + 1);
    body.push_str(event_json);
    body.push('}');
    body.into()
}

/// The head of every `change` frame of watch `subscription`.
pub(crate) fn change_head(subscription: &str) -> Utf8Bytes {
    head(
        r#"{"type":"change","subscription":"#,
        subscription,
        r#","event":"#,
    )
}

/// A `change` frame: a head from [`change_head`] and a body from [`change_frame_body`].
pub(crate) fn change_frame(head: &Utf8Bytes, body: &Utf8Bytes) -> Frame {
    Frame::Spliced {
        head: head.clone(),
        shared: body.clone(),
    }
}

/// The shared body of every `publication` frame: the remaining fields
/// (`{"topic":...,"data":...}`, in the order of `Publication`) without their `{`.
pub(crate) fn publication_frame_body(fields: &Value) -> Utf8Bytes {
    let json = fields.to_string();
    debug_assert!(json.starts_with('{') && json.len() > 2);
    Utf8Bytes::from(&json[1..])
}

/// The head of every `publication` frame of topic subscription `subscription`.
pub(crate) fn publication_head(subscription: &str) -> Utf8Bytes {
    head(
        r#"{"type":"publication","subscription":"#,
        subscription,
        ",",
    )
}

/// A `publication` frame: a head from [`publication_head`] and a body from
/// [`publication_frame_body`].
pub(crate) fn publication_frame(head: &Utf8Bytes, body: &Utf8Bytes) -> Frame {
    Frame::Spliced {
        head: head.clone(),
        shared: body.clone(),
    }
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
        let frame = change_frame(&change_head("s\"1"), &change_frame_body(&event_json));
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
        let frame = publication_frame(&publication_head("s2"), &publication_frame_body(&fields));
        assert_eq!(frame.into_text().as_str(), typed);
    }

    #[test]
    fn a_body_is_shared_not_copied() {
        let body = change_frame_body(r#"{"pad":"x"}"#);
        let frames = [
            change_frame(&change_head("s1"), &body),
            change_frame(&change_head("s2"), &body),
        ];
        for frame in frames {
            let Frame::Spliced { head, shared } = &frame else {
                panic!("a queued push is spliced");
            };
            assert_eq!(shared.as_str().as_ptr(), body.as_str().as_ptr());
            assert!(head.starts_with(r#"{"type":"change","subscription":"#));
            assert!(frame.into_text().ends_with(r#""}}"#));
        }
    }
}
