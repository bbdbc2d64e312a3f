//! Small WebSocket servers for the tests, on 127.0.0.1 port 0: a JSON-RPC 2.0
//! server (the second protocol that proves the engine knows none) and the
//! accept loop the other test servers share. `tidewire-conform`'s CLI tests
//! include this file too, so it depends on nothing else of these tests.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Binds a listener and serves each accepted TCP connection with `serve`.
pub async fn spawn<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    addr
}

enum Out {
    Send(Message),
    Close(u16, &'static str),
    Drop,
}

/// A JSON-RPC 2.0 server: `echo`, `add`, `subscribe`, `scatter`, `slow`,
/// `shutdown`, `drop`, `malformed`, `text`, `binary`, notification `ping`;
/// `/refuse` is refused with 403, `/private` needs token `secret` (query or
/// bearer), `?heartbeat_ms=N` adds heartbeat notifications, an `x-client`
/// header is greeted with a `hello` notification, subprotocol `jsonrpc.v2`
/// is accepted, and text frames over 4096 bytes close the connection (1009).
pub async fn jsonrpc() -> SocketAddr {
    jsonrpc_with(Identity::default()).await
}

/// How a [`jsonrpc_with`] server tells itself apart from others.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// Answered by the `whoami` method (empty: `whoami` is unknown).
    pub name: &'static str,
    /// When set, every connection opens with the notification
    /// `{"method": "welcome", "params": {"profiles": [...]}}`, which a schema
    /// set's `claims` can read.
    pub profiles: Option<Vec<&'static str>>,
}

/// The [`jsonrpc`] server with a name and, optionally, claimed profiles.
pub async fn jsonrpc_with(identity: Identity) -> SocketAddr {
    let counter = Arc::new(AtomicU64::new(0));
    let identity = Arc::new(identity);
    spawn(move |stream| serve_jsonrpc(stream, counter.clone(), identity.clone())).await
}

// tungstenite's handshake callback returns its `ErrorResponse` by value.
#[allow(clippy::result_large_err)]
async fn serve_jsonrpc(stream: TcpStream, counter: Arc<AtomicU64>, identity: Arc<Identity>) {
    let mut heartbeat_ms = None;
    let mut client = None;
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let path = req.uri().path();
        let query = req.uri().query().unwrap_or("");
        for pair in query.split('&') {
            if let Some(ms) = pair.strip_prefix("heartbeat_ms=") {
                heartbeat_ms = ms.parse::<u64>().ok();
            }
        }
        client = req
            .headers()
            .get("x-client")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let refuse = |status: StatusCode| {
            let mut r = ErrorResponse::new(Some(format!("refused: {status}")));
            *r.status_mut() = status;
            Err(r)
        };
        if path == "/refuse" {
            return refuse(StatusCode::FORBIDDEN);
        }
        if path == "/private" {
            let bearer = req
                .headers()
                .get("authorization")
                .is_some_and(|v| v == "Bearer secret");
            if !bearer && !query.split('&').any(|p| p == "token=secret") {
                return refuse(StatusCode::UNAUTHORIZED);
            }
        }
        let offered = req
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if offered.split(',').any(|p| p.trim() == "jsonrpc.v2") {
            resp.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_static("jsonrpc.v2"),
            );
        }
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            match out {
                Out::Send(m) => {
                    if sink.send(m).await.is_err() {
                        return;
                    }
                }
                Out::Close(code, reason) => {
                    let frame = CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    return;
                }
                Out::Drop => return,
            }
        }
    });
    let send = |tx: &mpsc::UnboundedSender<Out>, v: Value| {
        let _ = tx.send(Out::Send(Message::text(v.to_string())));
    };
    if let Some(profiles) = &identity.profiles {
        send(
            &tx,
            json!({"jsonrpc": "2.0", "method": "welcome", "params": {"profiles": profiles}}),
        );
    }
    if let Some(name) = client {
        send(
            &tx,
            json!({"jsonrpc": "2.0", "method": "hello", "params": {"client": name}}),
        );
    }
    if let Some(ms) = heartbeat_ms {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                if tx
                    .send(Out::Send(Message::text(
                        r#"{"jsonrpc":"2.0","method":"heartbeat"}"#,
                    )))
                    .is_err()
                {
                    return;
                }
            }
        });
    }
    while let Some(Ok(msg)) = stream.next().await {
        let text = match msg {
            Message::Text(t) => t.as_str().to_string(),
            Message::Binary(b) => {
                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                send(
                    &tx,
                    json!({"jsonrpc": "2.0", "method": "binary_received", "params": {"hex": hex, "bytes": b.len()}}),
                );
                continue;
            }
            // Keep reading so tungstenite flushes its reply to the close.
            Message::Close(_) => continue,
            _ => continue,
        };
        if text.len() > 4096 {
            let _ = tx.send(Out::Close(1009, "message too big"));
            break;
        }
        let Ok(req) = serde_json::from_str::<Value>(&text) else {
            send(
                &tx,
                json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "Parse error"}}),
            );
            continue;
        };
        let id = req.get("id").cloned();
        let method = req.get("method").and_then(Value::as_str);
        if req.get("jsonrpc") != Some(&json!("2.0")) || method.is_none() {
            send(
                &tx,
                json!({"jsonrpc": "2.0", "id": id.unwrap_or(Value::Null), "error": {"code": -32600, "message": "Invalid Request"}}),
            );
            continue;
        }
        let method = method.expect("checked").to_string();
        let params = req.get("params").cloned().unwrap_or(Value::Null);
        let Some(id) = id else {
            if method == "ping" {
                send(&tx, json!({"jsonrpc": "2.0", "method": "pong"}));
            }
            continue;
        };
        let reply = |result: Value| json!({"jsonrpc": "2.0", "id": id, "result": result});
        match method.as_str() {
            "echo" => send(&tx, reply(params)),
            "whoami" if !identity.name.is_empty() => send(&tx, reply(json!(identity.name))),
            "add" => {
                let nums: Vec<Value> = params.as_array().cloned().unwrap_or_default();
                if nums.iter().all(Value::is_i64) {
                    send(
                        &tx,
                        reply(json!(nums.iter().filter_map(Value::as_i64).sum::<i64>())),
                    );
                } else {
                    send(
                        &tx,
                        json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602, "message": "Invalid params"}}),
                    );
                }
            }
            "subscribe" => {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let sub = format!("sub-{n}");
                send(&tx, reply(json!({"subscription": sub})));
                for i in 1..=3 {
                    send(
                        &tx,
                        json!({"jsonrpc": "2.0", "method": "tick", "params": {"subscription": sub, "n": i}}),
                    );
                }
            }
            "scatter" => {
                let count = params.get("count").and_then(Value::as_u64).unwrap_or(3);
                for i in (1..=count).rev() {
                    send(
                        &tx,
                        json!({"jsonrpc": "2.0", "method": "item", "params": {"n": i}}),
                    );
                }
                send(&tx, reply(json!({"sent": count})));
            }
            "slow" => {
                let ms = params.get("ms").and_then(Value::as_u64).unwrap_or(100);
                let tx = tx.clone();
                let msg = reply(json!("done"));
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let _ = tx.send(Out::Send(Message::text(msg.to_string())));
                });
            }
            "shutdown" => {
                send(&tx, reply(json!("bye")));
                let _ = tx.send(Out::Close(4000, "shutting down"));
                break;
            }
            "drop" => {
                let _ = tx.send(Out::Drop);
                break;
            }
            "malformed" => send(&tx, json!({"jsonrpc": "1.0", "id": id, "result": 1})),
            "text" => {
                let _ = tx.send(Out::Send(Message::text("this is not JSON")));
            }
            "binary" => {
                let _ = tx.send(Out::Send(Message::binary(vec![0xde, 0xad, 0xbe, 0xef])));
            }
            _ => send(
                &tx,
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}}),
            ),
        }
    }
    drop(tx);
    let _ = writer.await;
}
