//! Every fault of the catalogue, observed on real connections: each test
//! shows the misbehaviour a clean server never shows, so a fault that
//! silently does nothing fails here.

use std::collections::HashMap;
use std::time::Duration;

use crate::common::{config, start, Client};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tidewire_server::{AuthMode, Config, InjectedFault, RateLimit, ServerHandle, StaticToken};

async fn start_with(fault: InjectedFault, base: Config) -> ServerHandle {
    start(base.with_fault(fault)).await
}

fn create(id: &str) -> Value {
    json!({"type": "create", "database": "app", "collection": "users", "record": {"_id": id}})
}

/// A writer, and a watcher of `app.users` subscribed to topic `news`.
async fn writer_and_watcher(server: &ServerHandle) -> (Client, Client) {
    let writer = Client::connect(&server.ws_url()).await;
    let mut watcher = Client::connect(&server.ws_url()).await;
    watcher.watch_collection("users").await;
    watcher.subscribe("news").await;
    (writer, watcher)
}

/// The `_id`s of the next `n` change events.
async fn change_ids(client: &mut Client, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let change = client.recv_type("change").await;
        ids.push(
            change["event"]["document_key"]["_id"]
                .as_str()
                .expect("a change names its record")
                .to_string(),
        );
    }
    ids
}

/// The `data.n` of the next `n` publications.
async fn publication_numbers(client: &mut Client, n: usize) -> Vec<i64> {
    let mut numbers = Vec::new();
    for _ in 0..n {
        let publication = client.recv_type("publication").await;
        numbers.push(publication["data"]["n"].as_i64().expect("data.n"));
    }
    numbers
}

async fn publish_numbers(client: &mut Client, topic: &str, numbers: &[i64]) {
    for n in numbers {
        client
            .ok(
                json!({"type": "publish", "topic": topic, "data": {"n": n}}),
                "published",
            )
            .await;
    }
}

#[tokio::test]
async fn drop_event_loses_the_second_event_of_each_subscription() {
    let server = start_with(InjectedFault::DropEvent, config()).await;
    let (mut writer, mut watcher) = writer_and_watcher(&server).await;
    for id in ["u1", "u2", "u3"] {
        writer.ok(create(id), "created").await;
    }
    assert_eq!(change_ids(&mut watcher, 2).await, ["u1", "u3"]);
    publish_numbers(&mut writer, "news", &[1, 2, 3]).await;
    assert_eq!(publication_numbers(&mut watcher, 2).await, [1, 3]);
    watcher.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn duplicate_event_sends_the_first_event_twice() {
    let server = start_with(InjectedFault::DuplicateEvent, config()).await;
    let (mut writer, mut watcher) = writer_and_watcher(&server).await;
    writer.ok(create("u1"), "created").await;
    writer.ok(create("u2"), "created").await;
    assert_eq!(change_ids(&mut watcher, 3).await, ["u1", "u1", "u2"]);
    publish_numbers(&mut writer, "news", &[1, 2]).await;
    assert_eq!(publication_numbers(&mut watcher, 3).await, [1, 1, 2]);
    watcher.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn reorder_events_swaps_the_first_two_events() {
    let server = start_with(InjectedFault::ReorderEvents, config()).await;
    let (mut writer, mut watcher) = writer_and_watcher(&server).await;
    for id in ["u1", "u2", "u3"] {
        writer.ok(create(id), "created").await;
    }
    assert_eq!(change_ids(&mut watcher, 3).await, ["u2", "u1", "u3"]);
    publish_numbers(&mut writer, "news", &[1, 2, 3]).await;
    assert_eq!(publication_numbers(&mut watcher, 3).await, [2, 1, 3]);
}

#[tokio::test]
async fn reorder_events_lets_a_lone_event_go_when_the_connection_idles() {
    let server = start_with(
        InjectedFault::ReorderEvents,
        Config {
            heartbeat_interval: Duration::from_millis(100),
            ..config()
        },
    )
    .await;
    let mut writer = Client::connect(&server.ws_url()).await;
    let mut watcher = Client::connect(&server.ws_url()).await;
    watcher.watch_collection("users").await;
    writer.ok(create("u1"), "created").await;
    // Held back, not lost: it follows the next heartbeat's turn.
    assert_eq!(change_ids(&mut watcher, 1).await, ["u1"]);
}

#[tokio::test]
async fn wrong_reply_id_answers_with_the_previous_requests_id() {
    let server = start_with(InjectedFault::WrongReplyId, config()).await;
    let mut c = Client::connect(&server.ws_url()).await;
    c.send(json!({"type": "ping", "id": "p1"})).await;
    assert_eq!(c.recv_type("pong").await["id"], "p1");
    c.send(json!({"type": "ping", "id": "p2"})).await;
    assert_eq!(c.recv_type("pong").await["id"], "p1");
    c.send(json!({"type": "read", "database": "app", "collection": "users", "id": "r3"}))
        .await;
    assert_eq!(c.recv_type("records").await["id"], "p2");
}

#[tokio::test]
async fn omit_required_field_sends_created_without_its_record() {
    let server = start_with(InjectedFault::OmitRequiredField, config()).await;
    let mut c = Client::connect(&server.ws_url()).await;
    let created = c.ok(create("u1"), "created").await;
    assert!(created.get("record").is_none(), "{created}");
    // The record was stored all the same, and other replies are whole.
    let records = c
        .ok(
            json!({"type": "read", "database": "app", "collection": "users"}),
            "records",
        )
        .await;
    assert_eq!(records["records"], json!([{"_id": "u1"}]));
}

#[tokio::test]
async fn wrong_error_code_replaces_the_registry_code() {
    let server = start_with(InjectedFault::WrongErrorCode, config()).await;
    let mut c = Client::connect(&server.ws_url()).await;
    // `not_found` is specified; the next registry code is sent instead.
    c.err(
        json!({"type": "read", "database": "app", "collection": "users", "record_id": "nobody"}),
        "conflict",
    )
    .await;
    c.err(json!({"type": "launch", "id": "x1"}), "unauthorized")
        .await;
}

#[tokio::test]
async fn skip_heartbeat_sends_nothing_on_an_idle_connection() {
    let server = start_with(
        InjectedFault::SkipHeartbeat,
        Config {
            heartbeat_interval: Duration::from_millis(30),
            ..config()
        },
    )
    .await;
    let mut c = Client::connect(&server.ws_url()).await;
    assert_eq!(c.welcome["heartbeat_ms"], 30);
    let frame = tokio::time::timeout(Duration::from_millis(300), c.ws.next()).await;
    assert!(frame.is_err(), "a frame arrived: {frame:?}");
}

#[tokio::test]
async fn ignore_rate_limit_processes_frames_beyond_the_limit() {
    let server = start_with(
        InjectedFault::IgnoreRateLimit,
        Config {
            rate_limit: Some(RateLimit {
                messages: 2,
                window_ms: 60_000,
            }),
            ..config()
        },
    )
    .await;
    let mut c = Client::connect(&server.ws_url()).await;
    assert_eq!(c.welcome["limits"]["rate"]["messages"], 2);
    for n in 0..4 {
        c.send(json!({"type": "ping", "id": format!("p{n}")})).await;
    }
    for n in 0..4 {
        assert_eq!(c.recv_type("pong").await["id"], format!("p{n}"));
    }
}

#[tokio::test]
async fn leak_across_filter_delivers_what_the_filters_exclude() {
    let server = start_with(InjectedFault::LeakAcrossFilter, config()).await;
    let mut writer = Client::connect(&server.ws_url()).await;
    let mut watcher = Client::connect(&server.ws_url()).await;
    watcher
        .ok(
            json!({"type": "watch", "database": "app", "collection": "users",
                   "filter": {"operation_type": "delete"}}),
            "watching",
        )
        .await;
    watcher
        .ok(
            json!({"type": "subscribe", "topic": "logs", "filter": {"level": "error"}}),
            "subscribed",
        )
        .await;
    writer.ok(create("u1"), "created").await;
    let change = watcher.recv_type("change").await;
    assert_eq!(change["event"]["operation_type"], "insert");
    writer
        .ok(
            json!({"type": "publish", "topic": "logs", "data": {"level": "info"}}),
            "published",
        )
        .await;
    let publication = watcher.recv_type("publication").await;
    assert_eq!(publication["data"]["level"], "info");
}

#[tokio::test]
async fn leak_across_scope_allows_what_the_scopes_exclude() {
    let reader = StaticToken {
        principal: "reader".into(),
        scopes: vec!["read:collection:*".into()],
        display_name: None,
    };
    let server = start_with(
        InjectedFault::LeakAcrossScope,
        Config {
            auth_mode: AuthMode::Optional,
            anonymous_scopes: Vec::new(),
            tokens: HashMap::from([("reader-token".to_string(), reader)]),
            ..config()
        },
    )
    .await;
    let mut anonymous = Client::connect(&server.ws_url()).await;
    anonymous
        .ok(
            json!({"type": "read", "database": "app", "collection": "users"}),
            "records",
        )
        .await;
    let mut c = Client::connect(&server.ws_url()).await;
    let authenticated = c
        .ok(
            json!({"type": "auth", "token": "reader-token"}),
            "authenticated",
        )
        .await;
    assert_eq!(authenticated["scopes"], json!(["read:collection:*"]));
    c.ok(create("u1"), "created").await;
    c.ok(json!({"type": "join", "room": "private"}), "joined")
        .await;
}

async fn join(client: &mut Client, room: &str) -> Value {
    client
        .ok(
            json!({"type": "join", "room": room, "role": "participant"}),
            "joined",
        )
        .await
}

#[tokio::test]
async fn accept_stale_edit_applies_an_edit_against_an_old_version() {
    let server = start_with(InjectedFault::AcceptStaleEdit, config()).await;
    let mut c = Client::connect(&server.ws_url()).await;
    join(&mut c, "docs").await;
    let edit = |text: &str| {
        json!({"type": "edit", "room": "docs", "document": "notes", "version": 0,
               "ops": [{"op": "insert", "position": 0, "text": text}]})
    };
    assert_eq!(c.ok(edit("a"), "edit_applied").await["version"], 1);
    assert_eq!(c.ok(edit("b"), "edit_applied").await["version"], 2);
    let document = c
        .ok(
            json!({"type": "get_document", "room": "docs", "document": "notes"}),
            "document",
        )
        .await;
    assert_eq!(document["content"], "ba");
}

#[tokio::test]
async fn keep_dropped_member_leaves_a_dropped_connection_in_the_room() {
    let server = start_with(InjectedFault::KeepDroppedMember, config()).await;
    let mut a = Client::connect(&server.ws_url()).await;
    let mut b = Client::connect(&server.ws_url()).await;
    join(&mut a, "lobby").await;
    join(&mut b, "lobby").await;
    let presence = a.recv_type("presence").await;
    assert_eq!(presence["action"], "joined");
    let dropped = b.welcome["connection_id"].clone();
    drop(b);
    a.expect_silence(Duration::from_millis(300)).await;
    let mut c = Client::connect(&server.ws_url()).await;
    let joined = join(&mut c, "lobby").await;
    let members: Vec<&Value> = joined["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| &m["connection_id"])
        .collect();
    assert!(members.contains(&&dropped), "{joined}");
    assert_eq!(members.len(), 3, "{joined}");
}
