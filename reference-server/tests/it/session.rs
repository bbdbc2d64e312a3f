//! Session parameters (section 5.7) and liveness (section 5.8), seen by a
//! client with the bounds a stock WebSocket client has.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tidewire_server::Config;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{config, http_get, start, Client, Ws, WAIT};

/// A default Python `websockets` client refuses messages over 1 MiB.
const ONE_MIB: usize = 1 << 20;

async fn open_bounded(url: &str, max: usize) -> Ws {
    let config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let (ws, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async_with_config(url, Some(config), false),
    )
    .await
    .expect("handshake within the timeout")
    .expect("handshake succeeds");
    ws
}

async fn next_text(ws: &mut Ws) -> String {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message within the timeout")
            .expect("the connection stays open")
            .expect("every message fits the client's bound");
        if let Message::Text(text) = frame {
            return text.as_str().to_string();
        }
    }
}

/// The next message, joined from its parts when it comes in parts.
async fn next_message(ws: &mut Ws, parts_seen: &mut usize) -> Value {
    let first: Value = serde_json::from_str(&next_text(ws).await).unwrap();
    if first["type"] != "part" {
        return first;
    }
    let mut text = String::new();
    let mut part = first;
    for index in 0u64.. {
        assert_eq!(part["type"], "part", "no other message between parts");
        assert_eq!(part["index"], index, "{part}");
        text.push_str(part["data"].as_str().unwrap());
        *parts_seen += 1;
        if part["last"] == true {
            return serde_json::from_str(&text).expect("the parts join into one message");
        }
        part = serde_json::from_str(&next_text(ws).await).unwrap();
    }
    unreachable!("the parts end with `last`")
}

#[tokio::test]
async fn a_four_megabyte_read_reaches_a_client_that_takes_one_mebibyte() {
    let server = start(config()).await;
    let url = format!(
        "{}?max_message_bytes={ONE_MIB}&features=parts&client=it%2F1",
        server.ws_url()
    );
    let mut ws = open_bounded(&url, ONE_MIB).await;
    let mut parts = 0;
    let welcome = next_message(&mut ws, &mut parts).await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["session"]["max_message_bytes"], ONE_MIB as u64);
    assert_eq!(welcome["session"]["features"], json!(["parts"]));
    assert!(welcome["features"]
        .as_array()
        .unwrap()
        .contains(&json!("parts")));

    let filler = "x".repeat(4000);
    for n in 0..1000 {
        let create = json!({"type": "create", "id": format!("c{n}"), "database": "big", "collection": "rows",
            "record": {"_id": format!("row{n:04}"), "filler": filler}});
        ws.send(Message::text(create.to_string())).await.unwrap();
        let created = next_message(&mut ws, &mut parts).await;
        assert_eq!(created["type"], "created", "{created}");
    }
    let read = json!({"type": "read", "id": "big", "database": "big", "collection": "rows", "limit": 1000});
    ws.send(Message::text(read.to_string())).await.unwrap();
    let mut parts = 0;
    let records = next_message(&mut ws, &mut parts).await;
    assert_eq!(records["type"], "records");
    assert_eq!(records["count"], 1000);
    assert!(records.to_string().len() > 4_000_000);
    assert!(parts >= 4, "{parts} parts");
}

#[tokio::test]
async fn without_a_stated_bound_messages_come_whole() {
    let server = start(config()).await;
    let mut client = Client::connect(&server.ws_url()).await;
    assert!(client.welcome.get("session").is_none());
    let filler = "x".repeat(5000);
    client
        .ok(
            json!({"type": "create", "database": "w", "collection": "c", "record": {"filler": filler}}),
            "created",
        )
        .await;
}

#[tokio::test]
async fn malformed_session_parameters_are_refused_at_the_handshake() {
    let server = start(config()).await;
    let base = server.ws_url();
    let addr = server.local_addr();
    for query in [
        "max_message_bytes=1023",
        "max_message_bytes=lots",
        "max_message_bytes=-5",
        "features=Parts",
        "client=",
    ] {
        let path = format!("/v1?{query}");
        let (status, response) = http_get(
            addr,
            &path,
            &[
                ("connection", "upgrade"),
                ("upgrade", "websocket"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
        )
        .await;
        assert_eq!(status, 400, "{query}: {response}");
    }
    let ok = open_bounded(&format!("{base}?features=parts,x-acme"), ONE_MIB).await;
    drop(ok);
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_closed_with_4006() {
    let server = start(Config {
        ping_interval: Duration::from_millis(100),
        ping_timeout: Duration::from_millis(100),
        ..config()
    })
    .await;
    let mut client = Client::connect(&server.ws_url()).await;
    assert_eq!(
        client.welcome["liveness"],
        json!({"ping_interval_ms": 100, "ping_timeout_ms": 100})
    );
    // Reading answers the server's pings: the connection stays.
    client.expect_silence(Duration::from_millis(500)).await;
    client.assert_alive().await;
    // Not reading answers nothing; the close is waiting once reading resumes.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (code, _, _) = client.expect_close().await;
    assert_eq!(code, 4006);
}
