//! The per-connection handle shared between the connection's tasks and every
//! place that pushes to it (fan-out, rooms, shutdown).
//!
//! The outbound queue is one ordered channel for replies and pushes, bounded
//! in messages (`outbound_queue`) and in bytes (`outbound_queue_bytes`).
//! Pushes (fan-out from other connections) use a non-blocking bounded
//! enqueue: a push that finds either bound reached makes the connection a slow
//! consumer, which is closed, and the pusher never waits. Replies to the
//! connection's own requests are enqueued without waiting too (they may be
//! enqueued under the state lock, which is what makes `watching` a barrier):
//! a reply that takes the queued bytes past the bound also makes the
//! connection a slow consumer, and the connection stops reading requests while
//! its queue is at the message bound, so a client that does not read cannot
//! grow the queue without bound. A single message larger than the byte bound
//! is still queued when the queue is empty, so one large reply never fails.
//!
//! The queue holds no memory while it is empty: the writer takes everything
//! queued in one go and lets go of the taken storage before it waits again,
//! so an idle connection keeps no queue allocation (a channel would keep a
//! block of slots per connection for its whole life).

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tidewire_protocol::{CloseCode, NoticeReason, ServerMessage};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::auth::Identity;

/// The text of one WebSocket message.
#[derive(Debug, Clone)]
pub(crate) enum Frame {
    Whole(Utf8Bytes),
    /// A per-receiver head and a body shared (refcounted) by every receiver,
    /// written as two fragments so the body is never copied per receiver.
    Spliced {
        head: Utf8Bytes,
        shared: Utf8Bytes,
    },
}

impl Frame {
    pub fn len(&self) -> usize {
        match self {
            Frame::Whole(text) => text.len(),
            Frame::Spliced { head, shared } => head.len() + shared.len(),
        }
    }

    /// The message as one string, for the paths that rewrite it.
    pub fn into_text(self) -> Utf8Bytes {
        match self {
            Frame::Whole(text) => text,
            Frame::Spliced { head, shared } => {
                let mut text = String::with_capacity(head.len() + shared.len());
                text.push_str(&head);
                text.push_str(&shared);
                text.into()
            }
        }
    }
}

/// One message waiting to be written.
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    pub frame: Frame,
    /// For `change` pushes: (subscription id, resume token), so the writer can
    /// record the last position it actually wrote.
    pub position: Option<(Arc<str>, Arc<str>)>,
    /// Replayed history: does not count against the slow-consumer bound.
    pub replay: bool,
}

impl Outbound {
    pub fn message(message: &ServerMessage) -> Outbound {
        Outbound {
            frame: Frame::Whole(message.to_json().into()),
            position: None,
            replay: false,
        }
    }

    pub fn shared(text: &Utf8Bytes) -> Outbound {
        Outbound {
            frame: Frame::Whole(text.clone()),
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
    /// Read through [`Conn::identity`], changed only through
    /// [`Conn::identity_mut`], which counts the change in `identity_version`.
    identity: RwLock<Identity>,
    /// Counts the changes of `identity`, so that a decision taken from it can
    /// be kept until it changes (`auth::Permission`).
    identity_version: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    /// Watch subscriptions in creation order with the last position written
    /// to the client (initially the barrier token), for the slow-consumer notice.
    pub positions: Mutex<Vec<(Arc<str>, Arc<str>)>>,
    /// Topic subscriptions and rooms, which a close for shutdown, expiry or a
    /// slow consumer reports as ended.
    pub live: Mutex<crate::ends::Live>,
    /// Queued items not yet taken by the writer.
    queue: Mutex<VecDeque<Outbound>>,
    /// How many items the writer last took in one go: an empty queue is
    /// given room for as many at its first push, rather than growing step by
    /// step through a busy connection's every batch.
    last_batch: AtomicUsize,
    /// Signalled when an item is queued.
    queue_ready: Notify,
    /// False once the writer has stopped taking items.
    writer_open: AtomicBool,
    queued: AtomicUsize,
    queued_bytes: AtomicUsize,
    replaying: AtomicUsize,
    replaying_bytes: AtomicUsize,
    bound: QueueBound,
    drained: Notify,
    closing: AtomicBool,
    close_request: Mutex<Option<CloseRequest>>,
    close_notify: Notify,
    /// When the connection opened; `heard_micros` counts from here.
    opened: tokio::time::Instant,
    /// When a frame of any kind last arrived from the client, for the
    /// liveness check (section 5.8).
    heard_micros: AtomicU64,
}

/// Write access to a connection's identity ([`Conn::identity_mut`]).
pub(crate) struct IdentityWrite<'a> {
    identity: RwLockWriteGuard<'a, Identity>,
    version: &'a AtomicU64,
}

impl Deref for IdentityWrite<'_> {
    type Target = Identity;

    fn deref(&self) -> &Identity {
        &self.identity
    }
}

impl DerefMut for IdentityWrite<'_> {
    fn deref_mut(&mut self) -> &mut Identity {
        &mut self.identity
    }
}

impl Drop for IdentityWrite<'_> {
    fn drop(&mut self) {
        // Runs before the guard field is dropped: still under the lock.
        self.version.fetch_add(1, Ordering::Release);
    }
}

/// The most items an empty queue is given room for ahead of time.
const MAX_RESERVED_BATCH: usize = 128;

/// The outbound queue's bounds, in messages and in bytes of message text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueBound {
    pub messages: usize,
    pub bytes: usize,
}

impl Conn {
    pub fn new(
        num: u64,
        id: String,
        identity: Identity,
        bound: QueueBound,
    ) -> (Arc<Conn>, Receiver) {
        let conn = Conn {
            num,
            id,
            identity: RwLock::new(identity),
            identity_version: AtomicU64::new(0),
            messages_in: AtomicU64::new(0),
            messages_out: AtomicU64::new(0),
            positions: Mutex::new(Vec::new()),
            live: Mutex::default(),
            queue: Mutex::new(VecDeque::new()),
            last_batch: AtomicUsize::new(0),
            queue_ready: Notify::new(),
            writer_open: AtomicBool::new(true),
            queued: AtomicUsize::new(0),
            queued_bytes: AtomicUsize::new(0),
            replaying: AtomicUsize::new(0),
            replaying_bytes: AtomicUsize::new(0),
            bound,
            drained: Notify::new(),
            closing: AtomicBool::new(false),
            close_request: Mutex::new(None),
            close_notify: Notify::new(),
            opened: tokio::time::Instant::now(),
            heard_micros: AtomicU64::new(0),
        };
        let conn = Arc::new(conn);
        let receiver = Receiver {
            conn: conn.clone(),
            taken: VecDeque::new(),
        };
        (conn, receiver)
    }

    pub fn identity(&self) -> RwLockReadGuard<'_, Identity> {
        self.identity.read()
    }

    /// The identity, to change: the change is counted when the guard is
    /// dropped, before the lock is released, so no decision kept from the
    /// identity before it can be taken for the identity after it.
    pub fn identity_mut(&self) -> IdentityWrite<'_> {
        IdentityWrite {
            identity: self.identity.write(),
            version: &self.identity_version,
        }
    }

    /// Which identity `identity` holds: a later one has a greater version.
    pub fn identity_version(&self) -> u64 {
        self.identity_version.load(Ordering::Acquire)
    }

    /// Notes that a frame arrived from the client: it is alive.
    pub fn heard(&self) {
        let micros = self.opened.elapsed().as_micros();
        self.heard_micros
            .store(u64::try_from(micros).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// When a frame last arrived from the client (the opening, if none has).
    pub fn last_heard(&self) -> tokio::time::Instant {
        self.opened + Duration::from_micros(self.heard_micros.load(Ordering::Relaxed))
    }

    /// Enqueues a reply (or anything the connection itself caused) without
    /// waiting. A reply that takes the queued bytes past the bound closes the
    /// connection as a slow consumer instead; see the module docs.
    pub fn reply(&self, item: Outbound) {
        if self.is_closing() {
            return;
        }
        if !item.replay && self.over_byte_bound(item.frame.len()) {
            self.close_slow_consumer();
            return;
        }
        self.enqueue(item);
    }

    /// Enqueues replayed history (resume). Its size is bounded by the journal
    /// retention, and it does not count against the slow-consumer bounds, so a
    /// long replay does not make the next live push fail.
    pub fn replay(&self, mut item: Outbound) {
        if self.is_closing() {
            return;
        }
        item.replay = true;
        self.replaying.fetch_add(1, Ordering::AcqRel);
        self.replaying_bytes
            .fetch_add(item.frame.len(), Ordering::AcqRel);
        self.enqueue(item);
    }

    /// Enqueues a push without waiting. Returns false when it was not enqueued:
    /// the connection is closing, or its queue is full, which makes it a slow
    /// consumer (closed with 4002).
    pub fn push(&self, item: Outbound) -> bool {
        if self.is_closing() {
            return false;
        }
        if self.queue_full() || self.over_byte_bound(item.frame.len()) {
            self.close_slow_consumer();
            return false;
        }
        self.enqueue(item)
    }

    fn enqueue(&self, item: Outbound) -> bool {
        let bytes = item.frame.len();
        self.queued.fetch_add(1, Ordering::AcqRel);
        self.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        let was_empty = {
            let mut queue = self.queue.lock();
            // Checked under the lock the writer takes to stop, so nothing is
            // queued after the writer has gone.
            if !self.writer_open.load(Ordering::Acquire) {
                drop(queue);
                self.queued.fetch_sub(1, Ordering::AcqRel);
                self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
                return false;
            }
            let was_empty = queue.is_empty();
            if queue.capacity() == 0 {
                let expected = self.last_batch.load(Ordering::Relaxed);
                queue.reserve(expected.clamp(1, MAX_RESERVED_BATCH));
            }
            queue.push_back(item);
            was_empty
        };
        // The writer empties the queue in one go under its lock, so it was
        // signalled when the queue last became non-empty and will take this
        // item with the others: one wake-up per batch, not per message.
        if was_empty {
            self.queue_ready.notify_one();
        }
        true
    }

    /// Whether `additional` bytes would take the live (not replayed) queue
    /// past the byte bound. An empty queue takes any one message.
    fn over_byte_bound(&self, additional: usize) -> bool {
        let live = self
            .queued_bytes
            .load(Ordering::Acquire)
            .saturating_sub(self.replaying_bytes.load(Ordering::Acquire));
        live > 0 && live + additional > self.bound.bytes
    }

    fn close_slow_consumer(&self) {
        self.request_close(CloseRequest::Server {
            code: CloseCode::SlowConsumer,
            reason: "slow consumer".into(),
            notice: Some(NoticeReason::SlowConsumer),
            discard_queue: true,
        });
    }

    /// Called by the writer for every item it takes off the queue.
    pub fn dequeued(&self, item: &Outbound) {
        let bytes = item.frame.len();
        if item.replay {
            self.replaying.fetch_sub(1, Ordering::AcqRel);
            self.replaying_bytes.fetch_sub(bytes, Ordering::AcqRel);
        }
        let live_before = self
            .queued
            .fetch_sub(1, Ordering::AcqRel)
            .saturating_sub(self.replaying.load(Ordering::Acquire));
        self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
        // Only a reader that found the queue at its message bound waits for room.
        if live_before >= self.bound.messages {
            self.drained.notify_one();
        }
    }

    /// At the message bound: pushes fail and the reader pauses.
    pub fn queue_full(&self) -> bool {
        let queued = self.queued.load(Ordering::Acquire);
        queued.saturating_sub(self.replaying.load(Ordering::Acquire)) >= self.bound.messages
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

    pub fn add_position(&self, subscription: &Arc<str>, token: &str) {
        self.positions
            .lock()
            .push((subscription.clone(), token.into()));
    }

    pub fn remove_position(&self, subscription: &str) {
        self.positions
            .lock()
            .retain(|(id, _)| **id != *subscription);
    }

    /// Records that a change for `subscription` at `token` was written: a
    /// refcount, no allocation, under a lock only this connection's tasks take.
    pub fn delivered(&self, subscription: &Arc<str>, token: &Arc<str>) {
        let mut positions = self.positions.lock();
        if let Some(entry) = positions
            .iter_mut()
            .find(|(id, _)| Arc::ptr_eq(id, subscription) || **id == **subscription)
        {
            entry.1 = token.clone();
        }
    }
}

/// The writer's end of a connection's outbound queue.
pub(crate) struct Receiver {
    conn: Arc<Conn>,
    /// Items taken from the queue in one go, written in order.
    taken: VecDeque<Outbound>,
}

impl Receiver {
    /// The next queued item, if one is queued now.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        if self.taken.is_empty() {
            self.taken = std::mem::take(&mut *self.conn.queue.lock());
            if !self.taken.is_empty() {
                self.conn
                    .last_batch
                    .store(self.taken.len(), Ordering::Relaxed);
            }
        }
        self.taken.pop_front()
    }

    /// Waits for the next queued item. The storage of the items already
    /// taken is released before waiting, so an idle queue holds no memory.
    pub async fn recv(&mut self) -> Outbound {
        loop {
            if let Some(item) = self.try_recv() {
                return item;
            }
            self.taken = VecDeque::new();
            self.conn.queue_ready.notified().await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let unwritten = {
            let mut queue = self.conn.queue.lock();
            self.conn.writer_open.store(false, Ordering::Release);
            std::mem::take(&mut *queue)
        };
        drop(unwritten);
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("id", &self.id).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(bytes: usize) -> Outbound {
        Outbound {
            frame: Frame::Whole("x".repeat(bytes).into()),
            position: None,
            replay: false,
        }
    }

    fn conn(bytes: usize) -> (Arc<Conn>, Receiver) {
        let bound = QueueBound {
            messages: 100,
            bytes,
        };
        Conn::new(
            1,
            "c1".into(),
            Identity::anonymous(&["*".to_string()]),
            bound,
        )
    }

    fn closed_as_slow_consumer(conn: &Conn) -> bool {
        matches!(
            conn.close_request(),
            Some(CloseRequest::Server {
                code: CloseCode::SlowConsumer,
                notice: Some(NoticeReason::SlowConsumer),
                discard_queue: true,
                ..
            })
        )
    }

    #[test]
    fn a_push_past_the_byte_bound_makes_a_slow_consumer() {
        let (conn, _rx) = conn(100);
        assert!(conn.push(item(60)));
        assert!(!closed_as_slow_consumer(&conn));
        assert!(!conn.push(item(60)));
        assert!(closed_as_slow_consumer(&conn));
    }

    #[test]
    fn a_reply_past_the_byte_bound_makes_a_slow_consumer() {
        let (conn, _rx) = conn(100);
        conn.reply(item(60));
        conn.reply(item(60));
        assert!(closed_as_slow_consumer(&conn));
    }

    #[test]
    fn one_message_larger_than_the_bound_passes_an_empty_queue() {
        let (conn, mut rx) = conn(100);
        conn.reply(item(1000));
        assert!(!closed_as_slow_consumer(&conn));
        let written = rx.try_recv().expect("queued");
        conn.dequeued(&written);
        assert!(conn.push(item(60)));
        assert!(!closed_as_slow_consumer(&conn));
    }

    #[test]
    fn an_empty_queue_holds_no_storage_until_a_push_sized_by_the_last_batch() {
        let (conn, mut rx) = conn(1 << 20);
        for _ in 0..40 {
            assert!(conn.push(item(10)));
        }
        let taken: Vec<Outbound> = std::iter::from_fn(|| rx.try_recv()).collect();
        assert_eq!(taken.len(), 40);
        taken.iter().for_each(|item| conn.dequeued(item));
        assert_eq!(conn.queue.lock().capacity(), 0);
        assert!(conn.push(item(10)));
        assert!(conn.queue.lock().capacity() >= 40);
    }

    #[test]
    fn replayed_history_does_not_count_against_the_byte_bound() {
        let (conn, _rx) = conn(100);
        conn.replay(item(500));
        assert!(conn.push(item(60)));
        assert!(!closed_as_slow_consumer(&conn));
    }
}
