//! A small Tidewire test client over tokio-tungstenite, and server helpers.
//! Every wait is bounded by [`WAIT`], so a broken server fails a test instead
//! of hanging it.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tidewire_server::{Config, Server, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(5);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A configuration for tests: no rate limit (tests that need one set it) and
/// heartbeats rare enough not to matter unless a test asks for them.
pub fn config() -> Config {
    Config {
        rate_limit: None,
        heartbeat_interval: Duration::from_secs(30),
        close_grace: Duration::from_secs(2),
        ..Config::default()
    }
}

pub async fn start(config: Config) -> ServerHandle {
    Server::start(config).await.expect("server starts")
}

/// Opens a WebSocket with extra request headers; returns the HTTP response too.
pub async fn open(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(Ws, Response<Option<Vec<u8>>>), tokio_tungstenite::tungstenite::Error> {
    let mut request = url.into_client_request().expect("valid url");
    for (name, value) in headers {
        request.headers_mut().append(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake within the timeout")
}

pub struct Client {
    pub ws: Ws,
    pub welcome: Value,
    /// Messages read while waiting for a specific reply, in arrival order.
    pending: VecDeque<Value>,
    next_id: u64,
}

impl Client {
    /// Connects and reads the welcome.
    pub async fn connect(url: &str) -> Client {
        Client::connect_with(url, &[]).await
    }

    pub async fn connect_with(url: &str, headers: &[(&str, &str)]) -> Client {
        let (ws, _) = open(url, headers).await.expect("upgrade succeeds");
        let mut client = Client {
            ws,
            welcome: Value::Null,
            pending: VecDeque::new(),
            next_id: 0,
        };
        let welcome = client.recv().await;
        assert_eq!(welcome["type"], "welcome", "first message: {welcome}");
        client.welcome = welcome;
        client
    }

    pub async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        tokio::time::timeout(WAIT, self.ws.send(Message::text(text)))
            .await
            .expect("send within the timeout")
            .expect("send succeeds");
    }

    pub async fn send_message(&mut self, message: Message) {
        tokio::time::timeout(WAIT, self.ws.send(message))
            .await
            .expect("send within the timeout")
            .expect("send succeeds");
    }

    /// Sends a text frame whose payload is not valid UTF-8.
    pub async fn send_invalid_utf8(&mut self) {
        let frame = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
        self.send_message(Message::Frame(frame)).await;
    }

    /// Sends a request (adding an `id` if it has none) and returns the reply
    /// with that id; pushes that arrive first are kept for `recv`.
    pub async fn request(&mut self, mut message: Value) -> Value {
        if message.get("id").is_none() {
            self.next_id += 1;
            message["id"] = json!(format!("r{}", self.next_id));
        }
        let id = message["id"].clone();
        self.send(message).await;
        let mut skipped = Vec::new();
        let reply = loop {
            let next = self.read().await;
            if next["id"] == id {
                break next;
            }
            skipped.push(next);
        };
        self.pending.extend(skipped);
        reply
    }

    /// Like `request`, asserting the reply's type.
    pub async fn ok(&mut self, message: Value, reply_type: &str) -> Value {
        let reply = self.request(message).await;
        assert_eq!(reply["type"], reply_type, "reply: {reply}");
        reply
    }

    /// Like `request`, asserting an error with this code.
    pub async fn err(&mut self, message: Value, code: &str) -> Value {
        let reply = self.request(message).await;
        assert_eq!(reply["type"], "error", "reply: {reply}");
        assert_eq!(reply["error"]["code"], code, "reply: {reply}");
        reply
    }

    /// Like `err` with `invalid_message`, asserting the reported path starts
    /// with `path_prefix` (filters and pipelines report the offending operator
    /// below it).
    pub async fn invalid_at(&mut self, message: Value, path_prefix: &str) -> Value {
        let reply = self.err(message, "invalid_message").await;
        assert!(
            reply["error"]["details"]["path"]
                .as_str()
                .unwrap()
                .starts_with(path_prefix),
            "{reply}"
        );
        reply
    }

    /// Watches collection `app.<collection>`; returns the `watching` reply.
    pub async fn watch_collection(&mut self, collection: &str) -> Value {
        self.ok(
            json!({"type": "watch", "database": "app", "collection": collection}),
            "watching",
        )
        .await
    }

    /// Subscribes to `topic` without a filter; returns the `subscribed` reply.
    pub async fn subscribe(&mut self, topic: &str) -> Value {
        self.ok(json!({"type": "subscribe", "topic": topic}), "subscribed")
            .await
    }

    /// The messages read while waiting for replies and not yet taken by `recv`.
    pub fn take_pending(&mut self) -> Vec<Value> {
        self.pending.drain(..).collect()
    }

    /// The next message other than a heartbeat.
    pub async fn recv(&mut self) -> Value {
        if let Some(message) = self.pending.pop_front() {
            return message;
        }
        self.read().await
    }

    /// The next message of this type, failing on any other message first.
    pub async fn recv_type(&mut self, message_type: &str) -> Value {
        let message = self.recv().await;
        assert_eq!(message["type"], message_type, "message: {message}");
        message
    }

    async fn read(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message within the timeout")
                .expect("the connection is open")
                .expect("the frame is readable");
            match frame {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).expect("server sends JSON");
                    if value["type"] != "heartbeat" {
                        return value;
                    }
                }
                Message::Close(frame) => panic!("unexpected close: {frame:?}"),
                _ => {}
            }
        }
    }

    /// Asserts no message other than heartbeats arrives within `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        assert!(self.pending.is_empty(), "unexpected: {:?}", self.pending);
        let deadline = tokio::time::Instant::now() + quiet;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Text(text)))) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(value["type"], "heartbeat", "unexpected message: {value}");
                }
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                Ok(other) => panic!("unexpected: {other:?}"),
            }
        }
    }

    /// Reads until the close frame; returns its code and reason, and the
    /// non-heartbeat messages that preceded it.
    pub async fn expect_close(&mut self) -> (u16, String, Vec<Value>) {
        let mut before: Vec<Value> = self.pending.drain(..).collect();
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a close within the timeout");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    if value["type"] != "heartbeat" {
                        before.push(value);
                    }
                }
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (u16::from(frame.code), frame.reason.to_string(), before)
                }
                Some(Ok(Message::Close(None))) => panic!("close frame without a code"),
                Some(Ok(_)) => {}
                Some(Err(err)) => panic!("connection failed before a close frame: {err}"),
                None => panic!("connection ended without a close frame"),
            }
        }
    }

    /// Asserts the connection still answers: ping gets its pong.
    pub async fn assert_alive(&mut self) {
        let pong = self
            .ok(json!({"type": "ping", "payload": "alive?"}), "pong")
            .await;
        assert_eq!(pong["payload"], "alive?");
    }
}

/// Expects the server to close a connection that was not welcomed.
pub async fn expect_refused(mut ws: Ws) -> (u16, String) {
    let frame = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("a close within the timeout");
    match frame {
        Some(Ok(Message::Close(Some(frame)))) => (u16::from(frame.code), frame.reason.to_string()),
        other => panic!("expected a close frame before any message, got {other:?}"),
    }
}

/// A raw HTTP/1.1 request; returns the status code and the whole response.
pub async fn http_get(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("response within the timeout")
        .unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, response)
}

/// The body of an HTTP response.
pub fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}
