//! Frames shared between many receivers.
//!
//! A change event is serialized once per variant (with or without
//! `full_document`) when it is committed. Each subscriber's `change` frame is
//! then spliced together as `{"type":"change","subscription":<id>,"event":` +
//! the shared event JSON + `}`, so the event body is never re-serialized per
//! subscriber; the same goes for publications. Room pushes carry no
//! subscription id, so one serialized frame (a refcounted `Utf8Bytes`) goes to
//! every member as is.

use tidewire_protocol::ServerMessage;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::util::json_string;

/// A `change` frame for `subscription` around an already serialized event.
pub(crate) fn change_frame(subscription: &str, event_json: &str) -> Utf8Bytes {
    let id = json_string(subscription);
    let mut frame = String::with_capacity(event_json.len() + id.len() + 48);
    frame.push_str(r#"{"type":"change","subscription":"#);
    frame.push_str(&id);
    frame.push_str(r#","event":"#);
    frame.push_str(event_json);
    frame.push('}');
    frame.into()
}

/// A `publication` frame for `subscription` around the serialized remaining
/// fields (`{"topic":...,"data":...}`, in the order of `Publication`).
pub(crate) fn publication_frame(subscription: &str, tail_json: &str) -> Utf8Bytes {
    debug_assert!(tail_json.starts_with('{') && tail_json.len() > 2);
    let id = json_string(subscription);
    let mut frame = String::with_capacity(tail_json.len() + id.len() + 48);
    frame.push_str(r#"{"type":"publication","subscription":"#);
    frame.push_str(&id);
    frame.push(',');
    frame.push_str(&tail_json[1..]);
    frame.into()
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
        Change, ChangeEvent, CollectionName, DocumentKey, Name, Namespace, OperationType,
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
        };
        let event_json = serde_json::to_string(&event).unwrap();
        let typed = ServerMessage::Change(Change {
            subscription: "s\"1".into(),
            event,
        })
        .to_json();
        assert_eq!(change_frame("s\"1", &event_json).as_str(), typed);
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
        };
        let tail = json!({
            "topic": publication.topic,
            "message_id": publication.message_id,
            "publisher": publication.publisher,
            "published_at": publication.published_at,
            "data": publication.data,
        })
        .to_string();
        let typed = ServerMessage::Publication(publication).to_json();
        assert_eq!(publication_frame("s2", &tail).as_str(), typed);
    }
}
