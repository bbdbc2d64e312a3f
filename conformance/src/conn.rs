//! A client WebSocket connection whose frames are read by a background task
//! into a bounded inbox, so frames are timestamped on arrival and a flooding
//! server cannot grow memory without limit.

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
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

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
    end: Option<(End, Instant)>,
}

struct Inbox {
    state: Mutex<InboxState>,
    notify: Notify,
}

/// Limits applied to every connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_message: usize,
    pub max_buffered: usize,
}

pub struct Conn {
    sink: SplitSink<Ws, Message>,
    inbox: Arc<Inbox>,
    reader: tokio::task::JoinHandle<()>,
    pub subprotocol: Option<String>,
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
    ) -> Result<Conn, ConnectError> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(limits.max_message))
            .max_frame_size(Some(limits.max_message));
        let (ws, response) =
            match tokio_tungstenite::connect_async_with_config(request, Some(config), true).await {
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
        let (sink, mut stream) = ws.split();
        let inbox = Arc::new(Inbox {
            state: Mutex::new(InboxState::default()),
            notify: Notify::new(),
        });
        let reader_inbox = inbox.clone();
        let reader = tokio::spawn(async move {
            let end = loop {
                let item = stream.next().await;
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
                let mut state = reader_inbox.state.lock().expect("inbox lock");
                if state.frames.len() >= limits.max_buffered {
                    state.end = Some((
                        End::Failed {
                            error: format!(
                                "the server sent more than {} frames that the case did not consume; \
                                 stopped reading (raise --max-buffered, or add an ignore rule)",
                                limits.max_buffered
                            ),
                        },
                        now,
                    ));
                    drop(state);
                    reader_inbox.notify.notify_one();
                    return;
                }
                state.frames.push_back(Received { at: now, payload });
                drop(state);
                reader_inbox.notify.notify_one();
            };
            reader_inbox.state.lock().expect("inbox lock").end = Some((end, Instant::now()));
            reader_inbox.notify.notify_one();
        });
        Ok(Conn {
            sink,
            inbox,
            reader,
            subprotocol,
        })
    }

    /// The next frame or the end of the stream, waiting until `deadline`.
    /// Frames queued before the end are always delivered first.
    pub async fn next(&self, deadline: tokio::time::Instant) -> Next {
        loop {
            {
                let mut state = self.inbox.state.lock().expect("inbox lock");
                if let Some(frame) = state.frames.pop_front() {
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
        self.inbox
            .state
            .lock()
            .expect("inbox lock")
            .frames
            .drain(..)
            .collect()
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

    pub async fn send(&mut self, message: Message) -> Result<(), String> {
        self.sink.send(message).await.map_err(|e| e.to_string())
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
