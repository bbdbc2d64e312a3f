//! The per-connection handle shared between the connection's tasks and every
//! place that pushes to it (fan-out, rooms, shutdown).
//!
//! The outbound queue is one ordered channel for replies and pushes. Pushes
//! (fan-out from other connections) use a non-blocking bounded enqueue: when
//! the queue already holds `outbound_queue` messages the connection is a slow
//! consumer and is closed, and the pusher never waits. Replies to the
//! connection's own requests are always enqueued (they may be enqueued under
//! the state lock, which is what makes `watching` a barrier); instead the
//! connection stops reading requests while its queue is full, so a client that
//! does not read cannot grow the queue without bound.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tidewire_protocol::{CloseCode, NoticeReason, ServerMessage};
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::auth::Identity;

/// One frame waiting to be written.
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    pub text: Utf8Bytes,
    /// For `change` pushes: (subscription id, resume token), so the writer can
    /// record the last position it actually wrote.
    pub position: Option<(Arc<str>, Arc<str>)>,
    /// Replayed history: does not count against the slow-consumer bound.
    pub replay: bool,
}

impl Outbound {
    pub fn message(message: &ServerMessage) -> Outbound {
        Outbound {
            text: message.to_json().into(),
            position: None,
            replay: false,
        }
    }

    pub fn shared(text: &Utf8Bytes) -> Outbound {
        Outbound {
            text: text.clone(),
            position: None,
            replay: false,
        }
    }
}

/// How a connection ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CloseRequest {
    /// The client closed or the transport failed: write nothing more.
    Peer(String),
    /// The server closes: optionally flush the queue, send a notice, then the close frame.
    Server {
        code: CloseCode,
        reason: String,
        notice: Option<NoticeReason>,
        discard_queue: bool,
    },
}

impl CloseRequest {
    pub fn server(code: CloseCode, reason: impl Into<String>) -> CloseRequest {
        CloseRequest::Server {
            code,
            reason: reason.into(),
            notice: None,
            discard_queue: false,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            CloseRequest::Peer(why) => why.clone(),
            CloseRequest::Server { code, reason, .. } => format!("{} {reason}", code.code()),
        }
    }
}

pub(crate) struct Conn {
    pub num: u64,
    pub id: String,
    pub identity: RwLock<Identity>,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    /// Watch subscriptions in creation order with the last position written
    /// to the client (initially the barrier token), for the slow-consumer notice.
    pub positions: Mutex<Vec<(String, String)>>,
    tx: mpsc::UnboundedSender<Outbound>,
    queued: AtomicUsize,
    replaying: AtomicUsize,
    bound: usize,
    drained: Notify,
    closing: AtomicBool,
    close_request: Mutex<Option<CloseRequest>>,
    close_notify: Notify,
}

impl Conn {
    pub fn new(
        num: u64,
        id: String,
        identity: Identity,
        bound: usize,
    ) -> (Arc<Conn>, mpsc::UnboundedReceiver<Outbound>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let conn = Conn {
            num,
            id,
            identity: RwLock::new(identity),
            messages_in: AtomicU64::new(0),
            messages_out: AtomicU64::new(0),
            positions: Mutex::new(Vec::new()),
            tx,
            queued: AtomicUsize::new(0),
            replaying: AtomicUsize::new(0),
            bound,
            drained: Notify::new(),
            closing: AtomicBool::new(false),
            close_request: Mutex::new(None),
            close_notify: Notify::new(),
        };
        (Arc::new(conn), rx)
    }

    /// Enqueues a reply (or anything the connection itself caused). Never fails
    /// while the connection is open; see the module docs for why it is unbounded.
    pub fn reply(&self, item: Outbound) {
        if self.is_closing() {
            return;
        }
        self.queued.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(item).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Enqueues replayed history (resume). Its size is bounded by the journal
    /// retention, and it does not count against the slow-consumer bound, so a
    /// long replay does not make the next live push fail.
    pub fn replay(&self, mut item: Outbound) {
        if self.is_closing() {
            return;
        }
        item.replay = true;
        self.replaying.fetch_add(1, Ordering::AcqRel);
        self.reply(item);
    }

    /// Enqueues a push without waiting. Returns false when it was not enqueued:
    /// the connection is closing, or its queue is full, which makes it a slow
    /// consumer (closed with 4002).
    pub fn push(&self, item: Outbound) -> bool {
        if self.is_closing() {
            return false;
        }
        let before = self.queued.fetch_add(1, Ordering::AcqRel);
        let replaying = self.replaying.load(Ordering::Acquire);
        if before.saturating_sub(replaying) >= self.bound {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.request_close(CloseRequest::Server {
                code: CloseCode::SlowConsumer,
                reason: "slow consumer".into(),
                notice: Some(NoticeReason::SlowConsumer),
                discard_queue: true,
            });
            return false;
        }
        if self.tx.send(item).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Called by the writer for every item it takes off the queue.
    pub fn dequeued(&self, item: &Outbound) {
        if item.replay {
            self.replaying.fetch_sub(1, Ordering::AcqRel);
        }
        self.queued.fetch_sub(1, Ordering::AcqRel);
        self.drained.notify_one();
    }

    pub fn queue_full(&self) -> bool {
        let queued = self.queued.load(Ordering::Acquire);
        queued.saturating_sub(self.replaying.load(Ordering::Acquire)) >= self.bound
    }

    /// Resolves once the queue has room again.
    pub async fn wait_for_room(&self) {
        while self.queue_full() {
            self.drained.notified().await;
        }
    }

    /// The first request wins; later ones are ignored.
    pub fn request_close(&self, request: CloseRequest) {
        {
            let mut slot = self.close_request.lock();
            if slot.is_some() {
                return;
            }
            *slot = Some(request);
        }
        self.closing.store(true, Ordering::Release);
        self.close_notify.notify_waiters();
        // Wake a reader blocked on backpressure as well.
        self.drained.notify_one();
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    pub fn close_request(&self) -> Option<CloseRequest> {
        self.close_request.lock().clone()
    }

    /// Resolves once a close has been requested (immediately if it already was).
    pub async fn closed(&self) {
        loop {
            let notified = self.close_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_closing() {
                return;
            }
            notified.await;
        }
    }

    pub fn add_position(&self, subscription: &str, token: &str) {
        self.positions
            .lock()
            .push((subscription.to_string(), token.to_string()));
    }

    pub fn remove_position(&self, subscription: &str) {
        self.positions.lock().retain(|(id, _)| id != subscription);
    }

    /// Records that a change for `subscription` at `token` was written.
    pub fn delivered(&self, subscription: &str, token: &str) {
        let mut positions = self.positions.lock();
        if let Some(entry) = positions.iter_mut().find(|(id, _)| id == subscription) {
            entry.1 = token.to_string();
        }
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("id", &self.id).finish()
    }
}
