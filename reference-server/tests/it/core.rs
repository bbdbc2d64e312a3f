//! Profile core: welcome, ping, heartbeat, envelope errors, bad frames,
//! subprotocols, HTTP endpoints and graceful shutdown.

use std::time::Duration;

use crate::common::{body, config, http_get, open, start, Client};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn welcome_describes_the_server() {
    let server = start(config()).await;
    let a = Client::connect(&server.ws_url()).await;
    let b = Client::connect(&server.ws_url()).await;
    let welcome = &a.welcome;
    assert_eq!(welcome["protocol"], "tidewire.v1");
    assert_eq!(welcome["heartbeat_ms"], 30_000);
    assert_eq!(welcome["auth"], json!({"mode": "off", "scopes": ["*"]}));
    assert_eq!(
        welcome["liveness"],
        json!({"ping_interval_ms": 20_000, "ping_timeout_ms": 10_000})
    );
    assert_eq!(welcome["features"], json!(["parts"]));
    assert!(welcome.get("session").is_none());
    assert_eq!(welcome["limits"]["max_message_bytes"], 1 << 20);
    assert_eq!(welcome["limits"]["max_nesting_depth"], 32);
    assert!(welcome["limits"].get("rate").is_none());
    let profiles: Vec<&str> = welcome["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for profile in [
        "core", "records", "watch", "resume", "topics", "rooms", "collab", "limits", "stats",
    ] {
        assert!(
            profiles.contains(&profile),
            "{profile} missing from {profiles:?}"
        );
    }
    // Authentication is off in this configuration (TW-AUTH-1).
    assert!(!profiles.contains(&"auth"), "auth listed in {profiles:?}");
    assert_ne!(a.welcome["connection_id"], b.welcome["connection_id"]);
}

#[tokio::test]
async fn ping_echoes_id_and_payload() {
    let server = start(config()).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let pong = client
        .request(json!({"type": "ping", "id": "p-1", "payload": {"n": [1, 2]}}))
        .await;
    assert_eq!(
        pong,
        json!({"type": "pong", "id": "p-1", "payload": {"n": [1, 2]}})
    );
    let pong = client
        .request(json!({"type": "ping", "id": "p-2", "payload": null}))
        .await;
    assert_eq!(pong, json!({"type": "pong", "id": "p-2"}));
}

#[tokio::test]
async fn replies_keep_request_order() {
    let server = start(config()).await;
    let mut client = Client::connect(&server.ws_url()).await;
    for n in 0..20 {
        client
            .send(json!({"type": "ping", "id": format!("{n}")}))
            .await;
    }
    for n in 0..20 {
        let pong = client.recv_type("pong").await;
        assert_eq!(pong["id"], format!("{n}"));
    }
}

#[tokio::test]
async fn idle_connections_get_heartbeats() {
    let server = start(tidewire_server::Config {
        heartbeat_interval: Duration::from_millis(100),
        ..config()
    })
    .await;
    let (mut ws, _) = open(&server.ws_url(), &[]).await.unwrap();
    let mut types = Vec::new();
    while types.len() < 3 {
        let frame =
            tokio::time::timeout(crate::common::WAIT, futures_util::StreamExt::next(&mut ws))
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        if let Message::Text(text) = frame {
            let value: Value = serde_json::from_str(&text).unwrap();
            types.push(value["type"].as_str().unwrap().to_string());
            if value["type"] == "heartbeat" {
                assert!(value["at"].as_str().unwrap().ends_with('Z'));
            }
        }
    }
    assert_eq!(types, ["welcome", "heartbeat", "heartbeat"]);
}

/// Each malformed frame gets its error, and the connection keeps working.
#[tokio::test]
async fn malformed_requests_get_their_error_and_the_connection_survives() {
    let server = start(config()).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let deep = format!(
        r#"{{"type":"ping","id":"deep","payload":{}{}}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    let cases: Vec<(String, &str, Option<&str>, Option<&str>)> = vec![
        ("not json".into(), "invalid_message", None, None),
        ("[1,2]".into(), "invalid_message", None, None),
        ("\"text\"".into(), "invalid_message", None, None),
        (
            r#"{"id":"a"}"#.into(),
            "invalid_message",
            Some("a"),
            Some("type"),
        ),
        (
            r#"{"type":7,"id":"b"}"#.into(),
            "invalid_message",
            Some("b"),
            Some("type"),
        ),
        (
            r#"{"type":"teleport","id":"c"}"#.into(),
            "unknown_type",
            Some("c"),
            None,
        ),
        (r#"{"type":"teleport"}"#.into(), "unknown_type", None, None),
        (
            r#"{"type":"ping"}"#.into(),
            "invalid_message",
            None,
            Some("id"),
        ),
        (
            r#"{"type":"ping","id":5}"#.into(),
            "invalid_message",
            None,
            Some("id"),
        ),
        (
            r#"{"type":"ping","id":""}"#.into(),
            "invalid_message",
            None,
            Some("id"),
        ),
        (
            r#"{"type":"read","id":"d","database":"app","collection":"users","limit":"ten"}"#
                .into(),
            "invalid_message",
            Some("d"),
            Some("limit"),
        ),
        (
            r#"{"type":"create","id":"e","database":"a.b","collection":"c","record":{}}"#.into(),
            "invalid_message",
            Some("e"),
            Some("database"),
        ),
        (deep, "invalid_message", None, None),
    ];
    for (text, code, id, path) in cases {
        client.send_text(&text).await;
        let reply = client.recv_type("error").await;
        assert_eq!(reply["error"]["code"], code, "{text}: {reply}");
        assert_eq!(
            reply.get("id").and_then(Value::as_str),
            id,
            "{text}: {reply}"
        );
        if let Some(path) = path {
            assert_eq!(reply["error"]["details"]["path"], path, "{text}: {reply}");
        }
        client.assert_alive().await;
    }
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let server = start(config()).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let pong = client
        .ok(
            json!({"type": "ping", "id": "x", "future": {"a": 1}}),
            "pong",
        )
        .await;
    assert_eq!(pong, json!({"type": "pong", "id": "x"}));
}

#[tokio::test]
async fn binary_frames_close_with_1003() {
    let server = start(config()).await;
    let mut client = Client::connect(&server.ws_url()).await;
    client.send_message(Message::binary(vec![1, 2, 3])).await;
    let (code, _, before) = client.expect_close().await;
    assert_eq!(code, 1003);
    assert!(before.is_empty(), "{before:?}");
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    let server = start(config()).await;
    let mut client = Client::connect(&server.ws_url()).await;
    client.send_invalid_utf8().await;
    let (code, _, _) = client.expect_close().await;
    assert_eq!(code, 1007);
}

#[tokio::test]
async fn oversize_frames_close_with_1009() {
    let server = start(tidewire_server::Config {
        max_message_bytes: 1024,
        ..config()
    })
    .await;
    let mut client = Client::connect(&server.ws_url()).await;
    assert_eq!(client.welcome["limits"]["max_message_bytes"], 1024);
    // Just under the limit is fine.
    let fits = json!({"type": "ping", "id": "fits", "payload": "x".repeat(900)}).to_string();
    assert!(fits.len() <= 1024);
    client.send_text(&fits).await;
    client.recv_type("pong").await;
    let big = json!({"type": "ping", "id": "big", "payload": "x".repeat(100_000)}).to_string();
    client.send_text(&big).await;
    let (code, _, _) = client.expect_close().await;
    assert_eq!(code, 1009);
}

#[tokio::test]
async fn subprotocol_is_negotiated() {
    let server = start(config()).await;
    let url = server.ws_url();
    let (_, response) = open(&url, &[("sec-websocket-protocol", "other, tidewire.v1")])
        .await
        .unwrap();
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "tidewire.v1"
    );
    let (_, response) = open(&url, &[]).await.unwrap();
    assert!(response.headers().get("sec-websocket-protocol").is_none());
    let refused = open(&url, &[("sec-websocket-protocol", "mqtt")])
        .await
        .unwrap_err();
    match refused {
        tokio_tungstenite::tungstenite::Error::Http(response) => assert_eq!(response.status(), 400),
        other => panic!("expected HTTP 400, got {other:?}"),
    }
}

#[tokio::test]
async fn healthz_stats_and_other_paths() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let (status, response) = http_get(addr, "/healthz", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body(&response), "ok");
    let _client = Client::connect(&server.ws_url()).await;
    let (status, response) = http_get(addr, "/stats", &[]).await;
    assert_eq!(status, 200);
    let stats: Value = serde_json::from_str(body(&response)).unwrap();
    assert_eq!(stats["connections"], 1);
    for field in [
        "subscriptions",
        "rooms",
        "messages_in",
        "messages_out",
        "uptime_ms",
    ] {
        assert!(stats[field].is_u64(), "{field} in {stats}");
    }
    assert_eq!(http_get(addr, "/nope", &[]).await.0, 404);
    assert_eq!(http_get(addr, "/v1", &[]).await.0, 426);
}

#[tokio::test]
async fn garbage_instead_of_http_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start(config()).await;
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    stream
        .write_all(b"\x00\x01\x02 nonsense\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(crate::common::WAIT, stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 400"));
    // The server still serves others.
    let mut client = Client::connect(&server.ws_url()).await;
    client.assert_alive().await;
}

#[tokio::test]
async fn shutdown_sends_notice_then_1001() {
    let server = start(config()).await;
    let mut client = Client::connect(&server.ws_url()).await;
    client.assert_alive().await;
    let shutdown = tokio::spawn(server.shutdown());
    let (code, _, before) = client.expect_close().await;
    assert_eq!(code, 1001);
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0]["type"], "notice");
    assert_eq!(before[0]["reason"], "shutting_down");
    drop(client);
    tokio::time::timeout(crate::common::WAIT, shutdown)
        .await
        .unwrap()
        .unwrap();
}
