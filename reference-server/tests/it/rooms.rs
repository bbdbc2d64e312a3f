//! Profiles rooms and collab: membership, presence, chat, history, typing,
//! and shared documents.

use std::time::Duration;

use crate::common::{config, start, Client};
use serde_json::{json, Value};
use tidewire_server::Config;

async fn join(client: &mut Client, room: &str, role: &str) -> Value {
    client
        .ok(
            json!({"type": "join", "room": room, "role": role}),
            "joined",
        )
        .await
}

/// Two connections in `room`: `a` a participant, `b` with `b_role`; `a` has
/// already read the presence of `b` joining.
async fn members(url: &str, room: &str, b_role: &str) -> (Client, Client) {
    let mut a = Client::connect(url).await;
    let mut b = Client::connect(url).await;
    join(&mut a, room, "participant").await;
    join(&mut b, room, b_role).await;
    a.recv_type("presence").await;
    (a, b)
}

/// The `message_id`s of a history page, in page order.
fn message_ids(page: &Value) -> Vec<&str> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn join_presence_and_leave() {
    let server = start(config()).await;
    let mut a = Client::connect(&server.ws_url()).await;
    let mut b = Client::connect(&server.ws_url()).await;
    let a_id = a.welcome["connection_id"].clone();
    let b_id = b.welcome["connection_id"].clone();
    let joined = join(&mut a, "lobby", "participant").await;
    assert_eq!(
        joined["members"],
        json!([{"connection_id": a_id, "principal": "anonymous", "role": "participant"}])
    );
    let joined = join(&mut b, "lobby", "observer").await;
    assert_eq!(joined["role"], "observer");
    assert_eq!(joined["members"].as_array().unwrap().len(), 2);
    let presence = a.recv_type("presence").await;
    assert_eq!(presence["action"], "joined");
    assert_eq!(presence["member"]["connection_id"], b_id);
    assert_eq!(presence["member"]["role"], "observer");

    // Joining again updates the role without a new presence.
    let again = join(&mut b, "lobby", "participant").await;
    assert_eq!(again["role"], "participant");
    a.expect_silence(Duration::from_millis(100)).await;

    b.ok(json!({"type": "leave", "room": "lobby"}), "left")
        .await;
    let presence = a.recv_type("presence").await;
    assert_eq!(
        (presence["action"].as_str(), presence["reason"].as_str()),
        (Some("left"), Some("left"))
    );
    b.err(json!({"type": "leave", "room": "lobby"}), "not_found")
        .await;
}

#[tokio::test]
async fn a_dropped_member_is_reported_as_disconnected() {
    let server = start(config()).await;
    let (mut a, b) = members(&server.ws_url(), "r", "participant").await;
    let b_id = b.welcome["connection_id"].clone();
    drop(b);
    let presence = a.recv_type("presence").await;
    assert_eq!(presence["action"], "left");
    assert_eq!(presence["reason"], "disconnected");
    assert_eq!(presence["member"]["connection_id"], b_id);
}

#[tokio::test]
async fn posts_typing_and_history() {
    let server = start(Config {
        room_history: 5,
        ..config()
    })
    .await;
    let (mut a, mut b) = members(&server.ws_url(), "chat", "observer").await;
    let mut outsider = Client::connect(&server.ws_url()).await;

    let mut ids = Vec::new();
    for n in 0..7 {
        let posted = a
            .ok(
                json!({"type": "post", "room": "chat", "body": {"n": n}}),
                "posted",
            )
            .await;
        let mut own = a.recv_type("room_message").await;
        let mut seen = b.recv_type("room_message").await;
        // Each copy carries the time it was written to its receiver (TW-TIME-1).
        for copy in [&mut own, &mut seen] {
            let sent = copy.as_object_mut().and_then(|m| m.remove("server_time"));
            assert!(sent.is_some_and(|t| t.is_string()), "{copy}");
        }
        assert_eq!(own, seen);
        assert_eq!(seen["message"]["message_id"], posted["message_id"]);
        assert_eq!(seen["message"]["body"], json!({"n": n}));
        assert_eq!(
            seen["message"]["author"]["connection_id"],
            a.welcome["connection_id"]
        );
        ids.push(posted["message_id"].as_str().unwrap().to_string());
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "message ids sort as strings");

    b.err(
        json!({"type": "post", "room": "chat", "body": "hi"}),
        "forbidden",
    )
    .await;
    outsider
        .err(
            json!({"type": "post", "room": "chat", "body": "hi"}),
            "forbidden",
        )
        .await;
    outsider
        .err(json!({"type": "history", "room": "chat"}), "forbidden")
        .await;

    a.ok(
        json!({"type": "typing", "room": "chat", "active": true}),
        "ack",
    )
    .await;
    let typing = b.recv_type("typing").await;
    assert_eq!(
        (
            typing["active"].as_bool(),
            &typing["member"]["connection_id"]
        ),
        (Some(true), &a.welcome["connection_id"])
    );
    b.err(
        json!({"type": "typing", "room": "chat", "active": true}),
        "forbidden",
    )
    .await;
    a.expect_silence(Duration::from_millis(50)).await;

    // Only the 5 most recent are kept.
    let page = b
        .ok(
            json!({"type": "history", "room": "chat", "limit": 3}),
            "history_page",
        )
        .await;
    assert_eq!(
        message_ids(&page),
        ids[4..7].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(page["has_more"], true);
    let older = b
        .ok(
            json!({"type": "history", "room": "chat", "before": ids[4]}),
            "history_page",
        )
        .await;
    assert_eq!(
        message_ids(&older),
        ids[2..4].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(older["has_more"], false);
}

#[tokio::test]
async fn collaborative_edits_and_conflicts() {
    let server = start(config()).await;
    let (mut a, mut b) = members(&server.ws_url(), "doc-room", "participant").await;

    let doc = b
        .ok(
            json!({"type": "get_document", "room": "doc-room", "document": "notes"}),
            "document",
        )
        .await;
    assert_eq!(
        (doc["version"].as_u64(), doc["content"].as_str()),
        (Some(0), Some(""))
    );

    let edit = json!({"type": "edit", "room": "doc-room", "document": "notes", "version": 0,
                      "ops": [{"op": "insert", "position": 0, "text": "héllo"},
                              {"op": "insert", "position": 5, "text": " wörld"},
                              {"op": "delete", "position": 0, "length": 1}]});
    let applied = a.ok(edit.clone(), "edit_applied").await;
    assert_eq!(applied["version"], 1);
    let pushed = b.recv_type("document_edit").await;
    assert_eq!(pushed["version"], 1);
    assert_eq!(pushed["ops"], edit["ops"]);
    assert_eq!(
        pushed["author"]["connection_id"],
        a.welcome["connection_id"]
    );
    a.expect_silence(Duration::from_millis(50)).await;

    let stale = b.err(edit.clone(), "conflict").await;
    assert_eq!(stale["error"]["details"]["current_version"], 1);

    let out_of_range = json!({"type": "edit", "room": "doc-room", "document": "notes", "version": 1,
                              "ops": [{"op": "delete", "position": 5, "length": 100}]});
    b.err(out_of_range, "invalid_message").await;
    let empty =
        json!({"type": "edit", "room": "doc-room", "document": "notes", "version": 1, "ops": []});
    b.err(empty, "invalid_message").await;

    let doc = b
        .ok(
            json!({"type": "get_document", "room": "doc-room", "document": "notes"}),
            "document",
        )
        .await;
    assert_eq!(
        (doc["version"].as_u64(), doc["content"].as_str()),
        (Some(1), Some("éllo wörld"))
    );

    let mut observer = Client::connect(&server.ws_url()).await;
    join(&mut observer, "doc-room", "observer").await;
    let mut edit = edit;
    edit["version"] = json!(1);
    observer.err(edit, "forbidden").await;
    let mut outsider = Client::connect(&server.ws_url()).await;
    outsider
        .err(
            json!({"type": "get_document", "room": "doc-room", "document": "notes"}),
            "forbidden",
        )
        .await;
}
