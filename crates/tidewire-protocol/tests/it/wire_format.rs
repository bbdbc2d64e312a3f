//! Snapshots of representative messages: a change here is a change to the wire format.

use serde_json::json;
use tidewire_protocol::*;

fn member(connection_id: &str, principal: &str) -> Member {
    Member {
        connection_id: connection_id.into(),
        principal: principal.into(),
        role: Role::Participant,
        display_name: None,
        metadata: None,
    }
}

fn name(value: &str) -> Name {
    Name::new(value).unwrap()
}

fn collection(value: &str) -> CollectionName {
    CollectionName::new(value).unwrap()
}

#[test]
fn welcome() {
    // The AsyncAPI document's example is the one welcome the project
    // documents; pinning it keeps one copy of it.
    let welcome = asyncapi::server_examples()
        .into_iter()
        .find(|e| e.name == "welcome")
        .expect("the AsyncAPI document has a welcome example")
        .message;
    insta::assert_json_snapshot!(welcome);
}

#[test]
fn watch_with_filter_and_resume() {
    let watch = decode_client_message(
        r#"{"type":"watch","id":"w1","database":"shop","collection":"orders",
            "filter":{"operation_type":{"$in":["insert","update"]}},
            "pipeline":[{"$match":{"full_document.total":{"$gte":100}}}],
            "full_document":true,"resume_after":"e1-42"}"#,
        32,
    )
    .unwrap();
    insta::assert_json_snapshot!(watch);
}

#[test]
fn update_change_event() {
    let mut updated = serde_json::Map::new();
    updated.insert("age".into(), json!(31));
    let change = ServerMessage::from(Change {
        subscription: "s1".into(),
        event: ChangeEvent {
            operation_type: OperationType::Update,
            ns: Namespace {
                database: collection("app"),
                collection: collection("users"),
            },
            document_key: DocumentKey { id: "user1".into() },
            full_document: None,
            update_description: Some(UpdateDescription {
                updated_fields: updated,
                removed_fields: vec!["email".into()],
            }),
            committed_at: Timestamp("2026-01-24T10:30:01.000Z".into()),
            resume_token: ResumeToken("e1-43".into()),
            full_document_before_change: None,
            view: None,
            origin: None,
            position: None,
        },
        server_time: None,
    });
    insta::assert_json_snapshot!(change);
}

#[test]
fn rate_limited_error() {
    let mut details = serde_json::Map::new();
    details.insert("retry_after_ms".into(), json!(750));
    let error = ServerMessage::from(ErrorMessage {
        id: Some(RequestId::new("p9").unwrap()),
        error: ErrorBody {
            code: ErrorCode::RateLimited.into(),
            message: "more than 60 messages in 60000 ms".into(),
            details: Some(details),
            retry: Some(Recovery::Retryable),
        },
        server_time: None,
    });
    insta::assert_json_snapshot!(error);
}

#[test]
fn room_message_and_document_edit() {
    let room_message = ServerMessage::from(RoomMessage {
        room: name("lobby"),
        message: ChatMessage {
            message_id: "m-000001".into(),
            author: member("c-1", "alice"),
            body: json!({"text": "Hello, everyone!"}),
            sent_at: Timestamp("2026-01-24T10:30:02.000Z".into()),
            position: None,
            origin: None,
        },
        server_time: None,
    });
    let edit = ServerMessage::from(DocumentEdit {
        room: name("lobby"),
        document: name("notes"),
        version: 16,
        author: member("c-2", "bob"),
        ops: vec![
            EditOp::Insert {
                position: 42,
                text: "Hello World".into(),
            },
            EditOp::Delete {
                position: 0,
                length: 3,
            },
        ],
        server_time: None,
        position: None,
        origin: None,
    });
    insta::assert_json_snapshot!("room_message", room_message);
    insta::assert_json_snapshot!("document_edit", edit);
}
