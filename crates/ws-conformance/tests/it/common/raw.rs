//! Test servers for the step kinds that go below JSON messages: raw text
//! frames (`text_hex`), socket back-pressure (`pause_reading`) and plain HTTP
//! (`http`).

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::spawn;

/// A WebSocket server that describes every text frame it receives as
/// `{"text": ..., "hex": ...}` and closes with 1007 when a text frame is
/// not UTF-8. Binary frames get `{"binary": hex}`.
pub async fn utf8_echo() -> SocketAddr {
    spawn(|stream| async move {
        let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        while let Some(item) = ws.next().await {
            let reply = match item {
                Ok(Message::Text(t)) => {
                    json!({"text": t.as_str(), "hex": hex(t.as_bytes())})
                }
                Ok(Message::Binary(b)) => json!({"binary": hex(&b)}),
                Ok(_) => continue,
                Err(WsError::Utf8(_)) => {
                    let frame = CloseFrame {
                        code: CloseCode::Invalid,
                        reason: "not UTF-8".into(),
                    };
                    let _ = ws.send(Message::Close(Some(frame))).await;
                    // Read on so the library completes the closing handshake.
                    while ws.next().await.is_some() {}
                    return;
                }
                Err(_) => return,
            };
            if ws.send(Message::text(reply.to_string())).await.is_err() {
                return;
            }
        }
    })
    .await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A WebSocket server for back-pressure. Requests (text frames):
/// `{"echo": v}` answers `{"echo": v}`; `{"flood": n}` sends `n` frames
/// `{"data": k, "pad": "..."}` of about 64 KiB, giving up on the first that
/// cannot be written within 300 ms; `{"report": true}` answers
/// `{"stalled": bool, "sent": k}` about the last flood. Each connection
/// greets with `{"hello": 1}`.
pub async fn backpressure() -> SocketAddr {
    spawn(|stream| async move {
        let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        let (mut sink, mut source) = ws.split();
        let stalled = Arc::new(AtomicBool::new(false));
        let mut sent = 0u64;
        let send = |v: Value| Message::text(v.to_string());
        if sink.send(send(json!({"hello": 1}))).await.is_err() {
            return;
        }
        let pad = "x".repeat(64 * 1024);
        while let Some(Ok(msg)) = source.next().await {
            let Message::Text(text) = msg else { continue };
            let Ok(req) = serde_json::from_str::<Value>(text.as_str()) else {
                continue;
            };
            if let Some(v) = req.get("echo") {
                if sink.send(send(json!({"echo": v}))).await.is_err() {
                    return;
                }
            } else if let Some(n) = req.get("flood").and_then(Value::as_u64) {
                stalled.store(false, Ordering::SeqCst);
                sent = 0;
                for k in 0..n {
                    let frame = send(json!({"data": k, "pad": pad}));
                    match tokio::time::timeout(Duration::from_millis(300), sink.send(frame)).await {
                        Ok(Ok(())) => sent += 1,
                        Ok(Err(_)) => return,
                        Err(_) => {
                            stalled.store(true, Ordering::SeqCst);
                            break;
                        }
                    }
                }
            } else if req.get("report").is_some() {
                let report = json!({"stalled": stalled.load(Ordering::SeqCst), "sent": sent});
                if sink.send(send(report)).await.is_err() {
                    return;
                }
            }
        }
    })
    .await
}

/// A plain HTTP/1.1 server. Paths: `/json` (JSON with Content-Length),
/// `/chunked` (JSON, chunked), `/until-close` (JSON, no length, ends with
/// the connection), `/text` (text/plain), `/missing` (404), `/big` (2 MiB
/// of JSON), `/silent` (never answers), `/echo-header` (the `x-probe`
/// request header as JSON), `/keep-alive` (JSON with Content-Length, the
/// connection left open).
pub async fn http() -> SocketAddr {
    spawn(|mut stream: TcpStream| async move {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
            if head.len() > 64 * 1024 {
                return;
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let path = head
            .lines()
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("/")
            .to_string();
        let probe = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("x-probe:")
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_default();
        let with_length = |status: &str, ct: &str, body: &str| {
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        };
        let json_body = r#"{"service":"raw","count":3,"tags":["a","b"]}"#;
        let response = match path.as_str() {
            "/json" => with_length("200 OK", "application/json", json_body),
            "/text" => with_length("200 OK", "text/plain; charset=utf-8", "hello"),
            "/missing" => with_length("404 Not Found", "application/json", r#"{"error":"none"}"#),
            "/echo-header" => with_length(
                "200 OK",
                "application/json",
                &json!({ "probe": probe }).to_string(),
            ),
            "/chunked" => {
                let (a, b) = json_body.split_at(10);
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                    a.len(),
                    b.len()
                )
            }
            "/until-close" => {
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{json_body}")
            }
            "/big" => {
                let body = json!({ "pad": "x".repeat(2 << 20) }).to_string();
                with_length("200 OK", "application/json", &body)
            }
            "/keep-alive" => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json_body}",
                json_body.len()
            ),
            "/silent" => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
            _ => with_length("404 Not Found", "text/plain", "no such path"),
        };
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
        if path == "/keep-alive" {
            // The client must stop at Content-Length rather than wait for the end.
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        let _ = stream.shutdown().await;
    })
    .await
}
