//! A WebSocket connection after the upgrade: the reader loop (requests,
//! timers) on the connection's task, the writer on its own task, and the
//! close procedure.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tidewire_protocol::session::split_into_parts;
use tidewire_protocol::{
    AuthMode, BoundScope, CloseCode, Notice, NoticeReason, ResumeToken, ServerMessage,
    SubscriptionPosition,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tracing::info;

use crate::auth::Identity;
use crate::clock::PushClock;
use crate::http::SessionParams;
use crate::outbound::{CloseRequest, Conn, Frame, Outbound, QueueBound, Receiver};
use crate::session::Session;
use crate::state::State;
use crate::variant::HeldPushes;

pub(crate) type Ws = WebSocketStream<TcpStream>;
type Sink = SplitSink<Ws, Message>;

/// Closes a connection that was upgraded but will not be served (policy,
/// capacity, shutdown), before any welcome.
pub(crate) async fn refuse(state: &State, mut ws: Ws, code: CloseCode, reason: &str) {
    let frame = close_frame(code, &state.choices.close_reason(code, reason));
    let grace = state.config.close_grace;
    let _ = timeout(grace, ws.close(Some(frame))).await;
    linger(ws, grace).await;
}

fn close_frame(code: CloseCode, reason: &str) -> CloseFrame {
    CloseFrame {
        code: WsCloseCode::from(code.code()),
        reason: reason.into(),
    }
}

/// Half-closes the socket after our close frame and discards whatever the
/// client still sends, so that unread input (e.g. the rest of an oversize
/// frame) does not turn the close into a reset before the client reads it.
async fn linger(mut ws: Ws, grace: Duration) {
    let tcp = ws.get_mut();
    let _ = timeout(grace, async {
        let _ = tcp.shutdown().await;
        // On the heap and only while closing: an array here would be part of
        // every connection task's state for the connection's whole life.
        let mut buf = vec![0u8; 8192];
        while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Serves an accepted connection until it closes. The slot was reserved by the caller.
pub(crate) async fn serve(
    state: Arc<State>,
    ws: Ws,
    peer: String,
    identity: Identity,
    endpoint_scope: Option<BoundScope>,
    params: Option<SessionParams>,
) {
    let number = state.next_connection_number();
    let handshake_principal = identity.authenticated.then(|| identity.principal.clone());
    let authenticated_at_handshake = identity.authenticated;
    let welcome = |id: &str| state.welcome(id, &identity, params.as_ref(), endpoint_scope.clone());
    let bound = QueueBound {
        messages: state.config.outbound_queue,
        bytes: state.config.outbound_queue_bytes,
    };
    let connection_id = state.choices.connection_id(number);
    let welcome = welcome(&connection_id);
    let (conn, rx) = Conn::new(number, connection_id, identity, bound);
    state.connections.lock().insert(number, conn.clone());
    let client = params.as_ref().and_then(|p| p.client.as_deref());
    info!(connection = %conn.id, %peer, principal = handshake_principal.as_deref().unwrap_or("-"), client = client.unwrap_or("-"), "connection opened");

    let (sink, mut stream) = ws.split();
    conn.reply(Outbound::message(&ServerMessage::Welcome(welcome)));
    state.connections_total.fetch_add(1, Ordering::Relaxed);
    let client_max = params.as_ref().and_then(|p| p.max_message_bytes);
    let writer = tokio::spawn(write_loop(
        sink,
        rx,
        conn.clone(),
        state.clone(),
        client_max,
    ));
    if state.is_shutting_down() {
        conn.request_close(shutdown_request());
    }

    let mut session = Session::new(state.clone(), conn.clone());
    session.bound = endpoint_scope;
    let auth_deadline = (state.config.auth_mode == AuthMode::Required
        && !authenticated_at_handshake)
        .then(|| Instant::now() + state.config.auth_timeout);
    let mut expiry_noticed: Option<SystemTime> = None;
    let mut client_closed = false;
    let closed = conn.closed();
    tokio::pin!(closed);

    loop {
        let identity_expiry = conn.identity().expires_at;
        let authenticated = conn.identity().authenticated;
        let expiry = identity_expiry.map(|at| {
            let notice_at = at
                .checked_sub(state.config.token_expiry_notice)
                .unwrap_or(at);
            (instant_of(notice_at), instant_of(at), at)
        });
        let notice_pending = expiry.is_some_and(|(_, _, at)| expiry_noticed != Some(at))
            && !state.config.faults.silent_expiry;
        let full = conn.queue_full();
        tokio::select! {
            biased;
            _ = &mut closed => break,
            _ = sleep_until(auth_deadline.unwrap_or_else(Instant::now)), if auth_deadline.is_some() && !authenticated => {
                let code = if state.config.faults.shared_policy_close {
                    CloseCode::PolicyViolation
                } else {
                    CloseCode::AuthTimeout
                };
                conn.request_close(CloseRequest::server(code, "auth timeout"));
            }
            _ = sleep_until(expiry.map_or_else(Instant::now, |e| e.1)), if expiry.is_some() => {
                conn.request_close(CloseRequest::server(CloseCode::AuthExpired, "token expired"));
            }
            _ = sleep_until(expiry.map_or_else(Instant::now, |e| e.0)), if notice_pending => {
                expiry_noticed = identity_expiry;
                conn.reply(Outbound::message(&ServerMessage::Notice(Notice {
                    reason: NoticeReason::TokenExpiring,
                    message: "the token expires soon; send `auth` with a fresh token".into(),
                    positions: Vec::new(),
                    server_time: None,
                })));
            }
            _ = conn.wait_for_room(), if full => {}
            frame = stream.next(), if !full => {
                // Any frame, a Pong in particular, shows the client is alive.
                let heard = match &frame {
                    Some(Ok(Message::Pong(_))) => !state.config.faults.deaf_to_pongs,
                    Some(Ok(_)) => true,
                    _ => false,
                };
                if heard {
                    conn.heard();
                }
                match frame {
                Some(Ok(Message::Text(text))) if text.len() < crate::offload::FROM_BYTES => {
                    session.handle_text(&text);
                }
                // Boxed: the hand-over's state (the session moved out, the
                // result channel) would otherwise be part of every reader's
                // state for the connection's whole life.
                Some(Ok(Message::Text(text))) => session = Box::pin(handle_large(session, text)).await,
                Some(Ok(Message::Binary(_))) => conn.request_close(
                    if state.config.faults.binary_closes_invalid_payload {
                        CloseRequest::server(CloseCode::InvalidPayload, "invalid UTF-8")
                    } else {
                        CloseRequest::server(
                            CloseCode::UnsupportedData,
                            "binary frames are not supported",
                        )
                    },
                ),
                Some(Ok(Message::Close(_))) => {
                    client_closed = true;
                    conn.request_close(CloseRequest::Peer("closed by client".into()));
                }
                Some(Ok(_)) => {}
                Some(Err(WsError::Capacity(_))) => conn.request_close(CloseRequest::server(
                    CloseCode::MessageTooBig,
                    "message too big",
                )),
                Some(Err(WsError::Utf8(_))) => conn.request_close(CloseRequest::server(
                    CloseCode::InvalidPayload,
                    "text frame is not valid UTF-8",
                )),
                Some(Err(WsError::Protocol(err))) if breaks_framing(&err) && !state.config.faults.drop_on_protocol_error => {
                    conn.request_close(CloseRequest::server(CloseCode::ProtocolError, format!("protocol error: {err}")))
                }
                Some(Err(err)) => conn.request_close(CloseRequest::Peer(format!("transport error: {err}"))),
                None => conn.request_close(CloseRequest::Peer("connection dropped".into())),
                }
            }
        }
    }

    // Leave rooms and drop subscriptions first, so other members learn of the
    // departure without waiting for this socket to finish closing.
    session.finish();
    let request = conn
        .close_request()
        .unwrap_or(CloseRequest::Peer("closed".into()));
    // Boxed: the close's futures would otherwise be part of the task's state
    // for the connection's whole life.
    Box::pin(finish_close(
        &state,
        &request,
        stream,
        writer,
        client_closed,
    ))
    .await;
    state.connections.lock().remove(&number);
    state.release_slot();
    info!(connection = %conn.id, reason = %request.describe(), "connection closed");
}

/// Waits for the writer to finish the server's side of the close, then ends
/// the socket: lingering after a close the server sent, or reading on after
/// the client's so that the library answers it.
async fn finish_close(
    state: &State,
    request: &CloseRequest,
    mut stream: SplitStream<Ws>,
    writer: JoinHandle<Sink>,
    client_closed: bool,
) {
    let grace = state.config.close_grace;
    let sink = match timeout(grace + Duration::from_millis(100), writer).await {
        Ok(Ok(sink)) => Some(sink),
        _ => None,
    };
    match (request, sink) {
        (CloseRequest::Server { .. }, Some(sink)) => {
            if let Ok(ws) = stream.reunite(sink) {
                linger(ws, grace).await;
            }
        }
        (CloseRequest::Peer(_), Some(sink))
            if client_closed && !state.config.faults.no_close_reply =>
        {
            // Reading on lets the library send its reply to the client's close frame.
            let _ = timeout(grace, async { while stream.next().await.is_some() {} }).await;
            drop(sink);
        }
        _ => {}
    }
}

/// Handles a large request on a thread of its own (`offload.rs`). The reader
/// waits for it to end before it reads the next frame, so the connection's
/// replies keep their order.
async fn handle_large(mut session: Session, text: Utf8Bytes) -> Session {
    crate::offload::run(move || {
        session.handle_text(&text);
        session
    })
    .await
}

/// Whether a read error is the client breaking RFC 6455's framing (as
/// opposed to the connection ending), which is answered with close 1002.
fn breaks_framing(err: &ProtocolError) -> bool {
    !matches!(
        err,
        ProtocolError::ResetWithoutClosingHandshake
            | ProtocolError::SendAfterClosing
            | ProtocolError::ReceivedAfterClosing
            | ProtocolError::HandshakeIncomplete
    )
}

fn instant_of(at: SystemTime) -> Instant {
    let now = SystemTime::now();
    match at.duration_since(now) {
        Ok(ahead) => Instant::now() + ahead,
        Err(_) => Instant::now(),
    }
}

pub(crate) fn shutdown_request() -> CloseRequest {
    CloseRequest::Server {
        code: CloseCode::GoingAway,
        reason: "server shutting down".into(),
        notice: Some(NoticeReason::ShuttingDown),
        discard_queue: false,
    }
}

/// Writes queued messages and heartbeats until a close is requested, then
/// performs the server's side of the close. Returns the sink so the caller can
/// reunite the socket.
async fn write_loop(
    mut sink: Sink,
    mut rx: Receiver,
    conn: Arc<Conn>,
    state: Arc<State>,
    client_max: Option<usize>,
) -> Sink {
    let heartbeat = state
        .choices
        .heartbeat_after(state.config.heartbeat_interval);
    let heartbeats = !state.config.faults.skip_heartbeats;
    let pings = !state.config.faults.never_ping;
    let ping_every = state.choices.ping_after(state.config.ping_interval);
    let ping_timeout = state.config.ping_timeout;
    // When the Ping that no frame has answered yet was sent.
    let mut ping_sent: Option<Instant> = None;
    let mut writer = Writer {
        conn: &conn,
        state: &state,
        client_max: client_max.filter(|_| !state.config.faults.ignore_client_max),
        unfinished_parts: false,
        unwritten: Vec::new(),
        clock: PushClock::default(),
    };
    let mut held = state.choices.reorders_pushes().then(HeldPushes::default);
    // One close future and one timer for the life of the loop: creating them
    // per message registered a waker and re-armed a timer for every message.
    let closed = conn.closed();
    tokio::pin!(closed);
    let beat = tokio::time::sleep(heartbeat);
    tokio::pin!(beat);
    let live = tokio::time::sleep(ping_every);
    tokio::pin!(live);
    let outcome: Result<(), WsError> = async {
        let mut last_write = Instant::now();
        let mut last_heartbeat = Instant::now();
        loop {
            let release_held = held.as_ref().and_then(HeldPushes::deadline);
            tokio::select! {
                biased;
                _ = &mut closed => return Ok(()),
                item = rx.recv() => {
                    writer.clock.expire();
                    // Everything already queued goes out before one flush.
                    let mut next = Some(item);
                    while let Some(item) = next.take() {
                        conn.dequeued(&item);
                        let open = match &mut held {
                            None => writer.write_while_open(&mut sink, [item], closed.as_mut()).await?,
                            Some(held) => {
                                writer.write_while_open(&mut sink, held.take(item), closed.as_mut()).await?
                            }
                        };
                        if !open {
                            return Ok(());
                        }
                        next = rx.try_recv();
                    }
                    tokio::select! {
                        biased;
                        _ = &mut closed => return Ok(()),
                        result = sink.flush() => result?,
                    }
                    last_write = Instant::now();
                }
                _ = sleep_until(release_held.unwrap_or_else(Instant::now)), if release_held.is_some() => {
                    writer.clock.expire();
                    let ready = held.as_mut().map(HeldPushes::release).unwrap_or_default();
                    if !writer.write_while_open(&mut sink, ready, closed.as_mut()).await? {
                        return Ok(());
                    }
                    tokio::select! {
                        biased;
                        _ = &mut closed => return Ok(()),
                        result = sink.flush() => result?,
                    }
                    last_write = Instant::now();
                }
                _ = &mut live, if pings => {
                    let heard = conn.last_heard();
                    match ping_sent {
                        Some(sent) if heard < sent => {
                            if sent.elapsed() >= ping_timeout {
                                conn.request_close(CloseRequest::server(
                                    CloseCode::Unresponsive,
                                    "no answer to ping",
                                ));
                            }
                            // Re-armed either way; after a close request the
                            // close branch wins the next turn.
                            live.as_mut().reset(sent + ping_timeout);
                        }
                        _ => {
                            ping_sent = None;
                            if heard.elapsed() >= ping_every {
                                tokio::select! {
                                    biased;
                                    _ = &mut closed => return Ok(()),
                                    result = sink.send(Message::Ping(Default::default())) => result?,
                                }
                                let now = Instant::now();
                                ping_sent = Some(now);
                                live.as_mut().reset(now + ping_timeout);
                            } else {
                                live.as_mut().reset(heard + ping_every);
                            }
                        }
                    }
                }
                _ = &mut beat, if heartbeats => {
                    // The timer is re-armed here only. An idle connection gets
                    // a heartbeat (TW-CORE-28); a busy one with subscriptions
                    // gets one every interval too, so that the positions of
                    // its quiet subscriptions advance (TW-POS-8). The
                    // heartbeat is queued, behind the pushes it covers.
                    let idle = last_write.elapsed() >= heartbeat;
                    if idle || last_heartbeat.elapsed() >= heartbeat {
                        state.queue_heartbeat(&conn, !idle);
                        last_heartbeat = Instant::now();
                    }
                    beat.as_mut().reset(last_write.min(last_heartbeat) + heartbeat);
                }
            }
        }
    }
    .await;
    if let Err(err) = outcome {
        conn.request_close(CloseRequest::Peer(format!("write failed: {err}")));
        return sink;
    }
    // Boxed: the close's futures would otherwise be part of the writer
    // task's state for the connection's whole life.
    Box::pin(write_close(&mut sink, &mut rx, &mut writer, held)).await;
    sink
}

/// The server's side of a close the server requested: what is still queued
/// (unless the close discards it), the notice, the `ended` pushes and the
/// close frame, all within the close grace.
async fn write_close(
    sink: &mut Sink,
    rx: &mut Receiver,
    writer: &mut Writer<'_>,
    held: Option<HeldPushes>,
) {
    let Some(CloseRequest::Server {
        code,
        reason,
        notice,
        discard_queue,
    }) = writer.conn.close_request()
    else {
        return;
    };
    // A message cut between its parts cannot be followed by another
    // (section 5.7.2): only the close frame goes out then.
    let discard_queue = discard_queue || writer.unfinished_parts;
    let notice = notice.filter(|_| !writer.unfinished_parts);
    writer.clock.expire();
    let _ = timeout(writer.state.config.close_grace, async {
        let held_back = held.map(|mut held| held.release()).unwrap_or_default();
        if !discard_queue {
            for item in std::mem::take(&mut writer.unwritten)
                .into_iter()
                .chain(held_back)
            {
                writer.write(sink, item).await?;
            }
        }
        while let Some(item) = rx.try_recv() {
            writer.conn.dequeued(&item);
            if !discard_queue {
                writer.write(sink, item).await?;
            }
        }
        if let Some(reason) = notice {
            let notice = writer.notice(reason);
            writer.write(sink, Outbound::message(&notice)).await?;
        }
        // Everything for the connection's streams is written by now, so the
        // positions are those of the last changes the client got.
        let ends = crate::ends::reason_of_close(code)
            .filter(|_| !writer.state.config.faults.end_silently_on_close);
        for ended in ends
            .map(|reason| crate::ends::on_close(writer.conn, &*writer.state.choices, reason))
            .unwrap_or_default()
        {
            writer.write(sink, Outbound::message(&ended)).await?;
        }
        let reason = writer.state.choices.close_reason(code, &reason);
        sink.send(Message::Close(Some(close_frame(code, &reason))))
            .await?;
        Ok::<(), WsError>(())
    })
    .await;
}

/// Writes one message as one frame. A message sent as a head fragment and a
/// shared continuation could be cut between the two when the write loop stops
/// for a close, and the close path's notice would then land inside the
/// unfinished message, which the client must treat as a protocol error.
///
/// A feed that has to wait for the socket lets time pass, so the clock is read
/// again for the next push.
async fn feed_frame(sink: &mut Sink, frame: Frame, clock: &mut PushClock) -> Result<(), WsError> {
    let mut feed = std::pin::pin!(sink.feed(Message::Text(frame.into_text())));
    let mut waited = false;
    let result = std::future::poll_fn(|cx| {
        let poll = feed.as_mut().poll(cx);
        waited |= poll.is_pending();
        poll
    })
    .await;
    if waited {
        clock.expire();
    }
    result
}

struct Writer<'a> {
    conn: &'a Conn,
    state: &'a State,
    /// The largest message the client accepts (section 5.7), if it said.
    client_max: Option<usize>,
    /// True while the parts of a message are being written.
    unfinished_parts: bool,
    /// Taken from the queue but not written when a close was requested.
    unwritten: Vec<Outbound>,
    /// The time stamped on pushes (`clock.rs`).
    clock: PushClock,
}

impl Writer<'_> {
    fn notice(&self, reason: NoticeReason) -> ServerMessage {
        let (message, positions) = match reason {
            NoticeReason::SlowConsumer => (
                "the connection fell too far behind; resume from these positions",
                self.conn
                    .positions
                    .lock()
                    .iter()
                    .map(|(subscription, token)| SubscriptionPosition {
                        subscription: subscription.to_string(),
                        resume_token: ResumeToken(token.to_string()),
                    })
                    .collect(),
            ),
            NoticeReason::ShuttingDown => ("the server is shutting down", Vec::new()),
            NoticeReason::TokenExpiring => ("the token expires soon", Vec::new()),
        };
        ServerMessage::Notice(Notice {
            reason,
            message: message.into(),
            positions,
            server_time: None,
        })
    }

    /// Feeds one queued item to the sink (through the outbound filter, if any)
    /// and records what was written.
    async fn write(&mut self, sink: &mut Sink, mut item: Outbound) -> Result<(), WsError> {
        if self.state.config.faults.omit_required_field {
            // The typed messages cannot lack a required field, so this fault
            // edits the text; the filter below then passes it through as is.
            item.frame = Frame::Whole(crate::faults::omit_required_field(item.frame.into_text()));
        }
        if self.state.config.faults.unprefixed_extension_codes {
            // No typed message holds a code outside the namespace, so this edits the text.
            item.frame = Frame::Whole(crate::faults::unprefix_extension_code(
                item.frame.into_text(),
            ));
        }
        if self.state.config.outbound_filter.is_none() {
            self.feed(sink, item.frame).await?;
            if let Some((subscription, token)) = &item.position {
                self.conn.delivered(subscription, token);
            }
            return Ok(());
        }
        // Boxed: the filtered path's state (a whole message, a timer) would
        // otherwise be part of every writer task's state.
        Box::pin(self.write_filtered(sink, item.frame)).await
    }

    /// Writes a message through the configured outbound filter.
    async fn write_filtered(&mut self, sink: &mut Sink, frame: Frame) -> Result<(), WsError> {
        let Some(filter) = &self.state.config.outbound_filter else {
            return self.feed(sink, frame).await;
        };
        let text = frame.into_text();
        let message: ServerMessage = match serde_json::from_str(&text) {
            Ok(message) => message,
            Err(_) => return self.feed(sink, Frame::Whole(text)).await,
        };
        for outgoing in filter.filter(&self.conn.id, message) {
            if !outgoing.delay.is_zero() {
                sink.flush().await?;
                tokio::time::sleep(outgoing.delay).await;
                self.clock.expire();
            }
            self.feed(sink, Frame::Whole(outgoing.message.to_json().into()))
                .await?;
            if let ServerMessage::Change(change) = &outgoing.message {
                self.conn.delivered(
                    &Arc::from(change.subscription.as_str()),
                    &Arc::from(change.event.resume_token.0.as_str()),
                );
            }
        }
        Ok(())
    }

    /// Writes `items` in order; false when the connection began to close
    /// first (`closed` is the write loop's one close future). Items already
    /// taken from the queue and not yet written are kept in `unwritten` for
    /// the close, which writes them before its frame unless it discards the
    /// queue: a reply is never lost because a close was requested behind it.
    async fn write_while_open(
        &mut self,
        sink: &mut Sink,
        items: impl IntoIterator<Item = Outbound>,
        mut closed: Pin<&mut impl Future<Output = ()>>,
    ) -> Result<bool, WsError> {
        let mut items = items.into_iter();
        while let Some(item) = items.next() {
            if self.conn.is_closing() {
                self.unwritten.push(item);
                self.unwritten.extend(items);
                return Ok(false);
            }
            // The write goes first: only a write that cannot complete (a client
            // that stopped reading) gives way to the close.
            tokio::select! {
                biased;
                result = self.write(sink, item) => result?,
                _ = &mut closed => {
                    self.unwritten.extend(items);
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Writes one message in the shape the server's variant gives it, in
    /// parts when it is longer than the client accepts.
    async fn feed(&mut self, sink: &mut Sink, frame: Frame) -> Result<(), WsError> {
        let frame = if self.state.config.faults.push_without_time {
            frame
        } else {
            self.clock.stamp_push(frame)
        };
        let frame = self.state.choices.shape_frame(frame);
        let parts = self
            .client_max
            .filter(|max| frame.len() > *max || self.state.config.faults.parts_always)
            .and_then(|max| {
                let budget = self.state.choices.part_budget(max);
                split_into_parts(&frame.clone().into_text(), max, budget)
            });
        let Some(parts) = parts else {
            feed_frame(sink, frame, &mut self.clock).await?;
            self.count();
            return Ok(());
        };
        self.unfinished_parts = true;
        for part in parts {
            feed_frame(sink, Frame::Whole(part.into()), &mut self.clock).await?;
            self.count();
        }
        self.unfinished_parts = false;
        Ok(())
    }

    fn count(&self) {
        self.conn.messages_out.fetch_add(1, Ordering::Relaxed);
        self.state.messages_out.fetch_add(1, Ordering::Relaxed);
    }
}
