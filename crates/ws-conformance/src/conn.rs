//! A client WebSocket connection whose frames are read by a background task
//! into an inbox bounded in frames and in bytes (per connection and across
//! the run), so frames are timestamped on arrival and a flooding server
//! cannot grow memory without limit.

use futures_util::stream::{SplitSink, StreamExt};
use futures_util::SinkExt;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::runner::BufferBudget;
use crate::tls::TlsConfig;

type Ws = WebSocketStream<MaybeTlsStream<Wire>>;

/// The client's TCP stream with a side door: bytes handed to [`Wire::inject`]
/// go to the socket before anything the WebSocket library writes next, so a
/// case can send a frame the library would never build (an unmasked one).
struct Wire {
    tcp: TcpStream,
    injected: Arc<Mutex<Vec<u8>>>,
    /// Once set, writes are dropped: the peer hears nothing more from us.
    muted: Arc<std::sync::atomic::AtomicBool>,
}

impl Wire {
    /// Writes the injected bytes; ready once they are all out.
    fn poll_injected(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        use tokio::io::AsyncWrite;
        let mut injected = self.injected.lock().expect("injected bytes lock");
        while !injected.is_empty() {
            match std::pin::Pin::new(&mut self.tcp).poll_write(cx, &injected) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => {
                    injected.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncRead for Wire {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Wire {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.muted.load(std::sync::atomic::Ordering::Relaxed) {
            return std::task::Poll::Ready(Ok(buf.len()));
        }
        std::task::ready!(self.poll_injected(cx))?;
        std::pin::Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::ready!(self.poll_injected(cx))?;
        std::pin::Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::ready!(self.poll_injected(cx))?;
        std::pin::Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// A data frame received from the server.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub payload: Payload,
}

#[derive(Debug, Clone)]
pub enum Payload {
    Text(String),
    Binary(Vec<u8>),
}

impl Payload {
    fn len(&self) -> usize {
        match self {
            Payload::Text(t) => t.len(),
            Payload::Binary(b) => b.len(),
        }
    }
}

/// How the read side of a connection ended.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// The server sent a close frame (1005 if it carried no code).
    Closed { code: u16, reason: String },
    /// The TCP connection ended without a close frame (reported as 1006).
    Dropped { detail: String },
    /// The runner gave up on the connection: oversized frame, protocol error,
    /// or more unread frames than the inbox holds.
    Failed { error: String },
}

impl End {
    pub fn code(&self) -> Option<u16> {
        match self {
            End::Closed { code, .. } => Some(*code),
            End::Dropped { .. } => Some(1006),
            End::Failed { .. } => None,
        }
    }
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Closed { code, reason } if reason.is_empty() => {
                write!(f, "closed with code {code}")
            }
            End::Closed { code, reason } => write!(f, "closed with code {code} ({reason:?})"),
            End::Dropped { detail } => write!(f, "dropped without a close frame (1006): {detail}"),
            End::Failed { error } => write!(f, "{error}"),
        }
    }
}

pub enum Next {
    Frame(Received),
    End(End, Instant),
    Timeout,
}

#[derive(Default)]
struct InboxState {
    frames: VecDeque<Received>,
    /// Payload bytes in `frames`, also counted in the run's budget.
    bytes: usize,
    /// Frames and bytes received in all, for the flood message.
    received: (usize, usize),
    end: Option<(End, Instant)>,
}

struct Inbox {
    state: Mutex<InboxState>,
    notify: Notify,
    run: BufferBudget,
}

impl Inbox {
    fn pop(&self, state: &mut InboxState) -> Option<Received> {
        let frame = state.frames.pop_front()?;
        let len = frame.payload.len();
        state.bytes -= len;
        self.run.give_back(len);
        Some(frame)
    }

    /// Queues a frame, or ends the connection as flooded when the frame
    /// would pass a limit; returns false then.
    fn push(&self, limits: &Limits, received: Received) -> bool {
        let len = received.payload.len();
        let mut state = self.state.lock().expect("inbox lock");
        state.received.0 += 1;
        state.received.1 += len;
        let over = if state.frames.len() >= limits.max_buffered {
            Some(format!(
                "more than {} unread frames (--max-buffered)",
                limits.max_buffered
            ))
        } else if !state.frames.is_empty() && state.bytes + len > limits.max_buffered_bytes {
            // An empty inbox takes any frame within --max-frame: a server may
            // answer with one message as large as the case asked for.
            Some(format!(
                "more than {} bytes of unread frames on this connection (--max-buffered-bytes)",
                limits.max_buffered_bytes
            ))
        } else if !self.run.take(len) {
            Some(format!(
                "more than {} bytes of unread frames across the run's connections",
                self.run.limit()
            ))
        } else {
            None
        };
        if let Some(limit) = over {
            let (frames, bytes) = state.received;
            state.end = Some((
                End::Failed {
                    error: format!(
                        "flood: the server sent {frames} frames ({bytes} bytes) on this connection, \
                         {limit} that the case did not consume; the runner stopped reading it"
                    ),
                },
                received.at,
            ));
            return false;
        }
        state.bytes += len;
        state.frames.push_back(received);
        true
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let state = self.state.get_mut().expect("inbox lock");
        self.run.give_back(state.bytes);
    }
}

/// Limits applied to every connection.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_message: usize,
    pub max_buffered: usize,
    pub max_buffered_bytes: usize,
    /// Shared by every connection of the run.
    pub run: BufferBudget,
}

pub struct Conn {
    sink: SplitSink<Ws, Message>,
    /// Bytes written to the socket as they are, below TLS: `None` on wss://.
    injected: Option<Arc<Mutex<Vec<u8>>>>,
    muted: Arc<std::sync::atomic::AtomicBool>,
    inbox: Arc<Inbox>,
    reader: tokio::task::JoinHandle<()>,
    /// True while the reader must leave the socket alone, so that the
    /// server's writes back up as they would for a slow client.
    paused: tokio::sync::watch::Sender<bool>,
    pub subprotocol: Option<String>,
    /// The server's `Sec-WebSocket-Extensions` answer, when it sent one.
    pub extensions: Option<String>,
}

/// Why a handshake did not produce a connection.
pub enum ConnectError {
    /// The server answered the upgrade request with a non-101 status.
    Refused {
        status: u16,
        body: String,
    },
    /// Subprotocols were offered and the server selected none. RFC 6455
    /// allows that, but tungstenite's client rejects the handshake.
    NoSubprotocol,
    Other(String),
}

impl Conn {
    pub async fn connect(
        request: tungstenite::handshake::client::Request,
        limits: Limits,
        tls: &TlsConfig,
    ) -> Result<Conn, ConnectError> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(limits.max_message))
            .max_frame_size(Some(limits.max_message));
        // The connector only applies to wss:// requests; ws:// stays plain TCP.
        let connector = Connector::Rustls(tls.client());
        let uri = request.uri();
        let secure = uri.scheme_str() == Some("wss");
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| ConnectError::Other(tungstenite::Error::Io(e).to_string()))?;
        let _ = tcp.set_nodelay(true);
        let injected = Arc::new(Mutex::new(Vec::new()));
        let muted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let wire = Wire {
            tcp,
            injected: injected.clone(),
            muted: muted.clone(),
        };
        let (ws, response) = match tokio_tungstenite::client_async_tls_with_config(
            request,
            wire,
            Some(config),
            Some(connector),
        )
        .await
        {
            Ok(ok) => ok,
            Err(tungstenite::Error::Http(response)) => {
                let body = response
                    .body()
                    .as_deref()
                    .map(|b| String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned())
                    .unwrap_or_default();
                return Err(ConnectError::Refused {
                    status: response.status().as_u16(),
                    body,
                });
            }
            Err(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::SecWebSocketSubProtocolError(
                    tungstenite::error::SubProtocolError::NoSubProtocol,
                ),
            )) => return Err(ConnectError::NoSubprotocol),
            Err(e) => return Err(ConnectError::Other(e.to_string())),
        };
        let subprotocol = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let extensions = response
            .headers()
            .get_all("sec-websocket-extensions")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        let extensions = (!extensions.is_empty()).then_some(extensions);
        let (sink, mut stream) = ws.split();
        let inbox = Arc::new(Inbox {
            state: Mutex::new(InboxState::default()),
            notify: Notify::new(),
            run: limits.run.clone(),
        });
        let reader_inbox = inbox.clone();
        let (paused, mut pause) = tokio::sync::watch::channel(false);
        let reader = tokio::spawn(async move {
            let end = loop {
                if pause.wait_for(|paused| !*paused).await.is_err() {
                    return;
                }
                // Pausing abandons a read that is waiting for data: the
                // stream keeps partial frames in its own buffer, so nothing
                // is lost and the socket is left alone from then on.
                let item = tokio::select! {
                    biased;
                    paused = pause.wait_for(|paused| *paused) => match paused {
                        Ok(_) => continue,
                        Err(_) => return,
                    },
                    item = stream.next() => item,
                };
                let now = Instant::now();
                let payload = match item {
                    Some(Ok(Message::Text(t))) => Payload::Text(t.as_str().to_string()),
                    Some(Ok(Message::Binary(b))) => Payload::Binary(b.to_vec()),
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Close(frame))) => {
                        break match frame {
                            Some(f) => End::Closed {
                                code: f.code.into(),
                                reason: f.reason.as_str().to_string(),
                            },
                            None => End::Closed {
                                code: 1005,
                                reason: String::new(),
                            },
                        }
                    }
                    Some(Err(e)) => break classify(e),
                    None => {
                        break End::Dropped {
                            detail: "stream ended".into(),
                        }
                    }
                };
                let queued = reader_inbox.push(&limits, Received { at: now, payload });
                reader_inbox.notify.notify_one();
                if !queued {
                    return;
                }
            };
            reader_inbox.state.lock().expect("inbox lock").end = Some((end, Instant::now()));
            reader_inbox.notify.notify_one();
        });
        Ok(Conn {
            sink,
            injected: (!secure).then_some(injected),
            muted,
            inbox,
            reader,
            paused,
            subprotocol,
            extensions,
        })
    }

    /// The next frame or the end of the stream, waiting until `deadline`.
    /// Frames queued before the end are always delivered first.
    pub async fn next(&self, deadline: tokio::time::Instant) -> Next {
        loop {
            {
                let mut state = self.inbox.state.lock().expect("inbox lock");
                if let Some(frame) = self.inbox.pop(&mut state) {
                    return Next::Frame(frame);
                }
                if let Some((end, at)) = &state.end {
                    return Next::End(end.clone(), *at);
                }
            }
            // notify_one stores a permit when nobody waits, so a frame pushed
            // between the check above and this await is not missed.
            if tokio::time::timeout_at(deadline, self.inbox.notify.notified())
                .await
                .is_err()
            {
                return Next::Timeout;
            }
        }
    }

    /// Frames already received, without waiting.
    pub fn drain(&self) -> Vec<Received> {
        let mut state = self.inbox.state.lock().expect("inbox lock");
        std::iter::from_fn(|| self.inbox.pop(&mut state)).collect()
    }

    pub fn end(&self) -> Option<End> {
        self.inbox
            .state
            .lock()
            .expect("inbox lock")
            .end
            .as_ref()
            .map(|(e, _)| e.clone())
    }

    /// Stops reading the socket until [`Conn::resume_reading`]; frames
    /// already received stay queued for [`Conn::next`].
    pub fn pause_reading(&self) {
        self.paused.send_replace(true);
    }

    pub fn resume_reading(&self) {
        self.paused.send_replace(false);
    }

    pub async fn send(&mut self, message: Message) -> Result<(), String> {
        self.sink.send(message).await.map_err(|e| e.to_string())
    }

    /// Drops every write from now on, the library's Pong answers included,
    /// while reads go on.
    pub fn stop_writing(&self) {
        self.muted.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Writes `bytes` to the socket as they are, after whatever the library
    /// has already sent; on plain ws:// only, since they would go below TLS.
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), String> {
        let Some(injected) = &self.injected else {
            return Err(
                "raw bytes can only be written on a ws:// connection, not below TLS".into(),
            );
        };
        injected
            .lock()
            .expect("injected bytes lock")
            .extend_from_slice(&bytes);
        self.sink.flush().await.map_err(|e| e.to_string())
    }

    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), String> {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        self.sink
            .send(Message::Close(Some(frame)))
            .await
            .map_err(|e| e.to_string())
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn classify(e: tungstenite::Error) -> End {
    use tungstenite::error::{CapacityError, ProtocolError};
    match e {
        tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => End::Failed {
            error: format!(
                "the server sent a message of {size} bytes or more, over the {max_size}-byte limit (--max-frame)"
            ),
        },
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)
        | tungstenite::Error::ConnectionClosed
        | tungstenite::Error::AlreadyClosed => End::Dropped {
            detail: "reset without closing handshake".into(),
        },
        tungstenite::Error::Io(io) => End::Dropped {
            detail: io.to_string(),
        },
        other => End::Failed {
            error: format!("WebSocket error: {other}"),
        },
    }
}

/// A response to [`http_get`].
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A plain-TCP HTTP/1.1 GET of `path_and_query` on `authority`
/// (`host:port`), reading at most `max_bytes` of response (head and body).
/// The caller bounds the time.
pub async fn http_get(
    authority: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    max_bytes: usize,
) -> Result<HttpResponse, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = TcpStream::connect(authority)
        .await
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    let mut request = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nAccept: */*\r\nUser-Agent: tidewire-conform\r\n"
    );
    for (k, v) in headers {
        if [k, v].iter().any(|s| s.contains(['\r', '\n'])) {
            return Err(format!("header {k:?} contains a line break"));
        }
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending the request failed: {e}"))?;

    let too_big = || format!("the response is larger than {max_bytes} bytes");
    let mut data: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let mut eof = false;
    let mut read_more = async |data: &mut Vec<u8>, eof: &mut bool| -> Result<(), String> {
        let room = (max_bytes + 1).saturating_sub(data.len()).min(chunk.len());
        let n = stream
            .read(&mut chunk[..room.max(1)])
            .await
            .map_err(|e| format!("reading the response failed: {e}"))?;
        if n == 0 {
            *eof = true;
        }
        data.extend_from_slice(&chunk[..n]);
        if data.len() > max_bytes {
            return Err(too_big());
        }
        Ok(())
    };

    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if eof {
            return Err(format!(
                "the connection ended before a complete response head ({} bytes received)",
                data.len()
            ));
        }
        read_more(&mut data, &mut eof).await?;
    };
    let head = std::str::from_utf8(&data[..head_end])
        .map_err(|_| "the response head is not UTF-8".to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(format!("malformed status line {status_line:?}"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x response: {status_line:?}"));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| format!("malformed status line {status_line:?}"))?;
    let mut response_headers = Vec::new();
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            return Err(format!("malformed header line {line:?}"));
        };
        response_headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut response = HttpResponse {
        status,
        headers: response_headers,
        body: Vec::new(),
    };
    let body_start = head_end + 4;
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let length = match response.header("content-length") {
        Some(v) if !chunked => Some(
            v.parse::<usize>()
                .map_err(|_| format!("invalid Content-Length {v:?}"))?,
        ),
        _ => None,
    };
    if let Some(length) = length {
        if body_start + length > max_bytes {
            return Err(too_big());
        }
        while data.len() < body_start + length {
            if eof {
                return Err(format!(
                    "the connection ended after {} of {length} body bytes",
                    data.len() - body_start
                ));
            }
            read_more(&mut data, &mut eof).await?;
        }
        response.body = data[body_start..body_start + length].to_vec();
        return Ok(response);
    }
    // No length: the body ends with the connection (the request asked for
    // `Connection: close`); a chunked body is decoded once complete.
    while !eof {
        if chunked && dechunk(&data[body_start..]).is_ok() {
            break;
        }
        read_more(&mut data, &mut eof).await?;
    }
    response.body = if chunked {
        dechunk(&data[body_start..])?
    } else {
        data[body_start..].to_vec()
    };
    Ok(response)
}

/// Decodes a complete chunked body; an error when it is incomplete or malformed.
fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("incomplete chunked body")?;
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("incomplete chunked body".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
