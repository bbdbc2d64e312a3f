//! The server's choices where spec/PROTOCOL.md leaves it free, in one place.
//!
//! [`Variant::Usual`] is how the reference server has always behaved.
//! [`Variant::Alternate`] takes the other side of every freedom the
//! specification gives a server, so that a suite run against both shows
//! which cases rely on a choice rather than on a requirement. The table
//! "what --variant alternate changes" in reference-server/README.md lists
//! each freedom and the text that makes it free.
//!
//! Handlers never ask which variant runs: they call [`Choices`], which names
//! things (ids, tokens) and shapes what is written (extra members, wording,
//! member and array order, timestamp precision, push order, heartbeat time).

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tidewire_protocol::CloseCode;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::outbound::{Frame, Outbound};

/// Which side of the specification's freedoms the server takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The reference server's own choices.
    #[default]
    Usual,
    /// The other side of every freedom (see the module docs).
    Alternate,
}

/// A name that is no variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown variant {name:?} (known: usual, alternate)")]
pub struct UnknownVariant {
    pub name: String,
}

impl Variant {
    pub const ALL: [Variant; 2] = [Variant::Usual, Variant::Alternate];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Usual => "usual",
            Variant::Alternate => "alternate",
        }
    }

    pub(crate) fn choices(self) -> Arc<dyn Choices> {
        match self {
            Variant::Usual => Arc::new(Usual),
            Variant::Alternate => Arc::new(Alternate::default()),
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Variant {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Variant, UnknownVariant> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| UnknownVariant { name: s.into() })
    }
}

/// Everything the server decides where the specification lets it.
pub(crate) trait Choices: Send + Sync {
    /// Unique among the connections of one run (TW-CORE-26).
    fn connection_id(&self, number: u64) -> String;
    /// Never used twice on one connection (TW-WATCH-2, TW-TOPIC-3, TW-CORE-32).
    fn subscription_id(&self, connection: u64, key: u64) -> String;
    /// Opaque, 1 to 512 characters (section 9).
    fn resume_token(&self, epoch: &str, position: u64) -> String;
    /// The epoch and position of a token this server issued; `None` when malformed.
    fn parse_resume_token<'t>(&self, token: &'t str) -> Option<(&'t str, u64)>;
    /// Increasing in code point order within a room (TW-ROOM-10).
    fn room_message_id(&self, posted: u64) -> String;
    /// Unique within the run (TW-TOPIC-1).
    fn publication_id(&self, published: u64) -> String;
    /// An `_id` for a `create` without one (TW-REC-3).
    fn record_id(&self) -> String;
    /// How long after the last message a heartbeat is sent: at most
    /// `interval` (TW-CORE-28).
    fn heartbeat_after(&self, interval: Duration) -> Duration;
    /// The reason of a close frame with `code`, given the usual one.
    fn close_reason(&self, code: CloseCode, usual: &str) -> String;
    /// How long after the client's last frame the liveness Ping goes out,
    /// for an announced `ping_interval_ms` of `interval` (section 5.8).
    fn ping_after(&self, interval: Duration) -> Duration;
    /// The most bytes of escaped data one `part` carries, for a client
    /// bound of `max` bytes (section 5.7.2).
    fn part_budget(&self, max: usize) -> usize;
    /// Reshapes a change event once, before filters see it, since filters
    /// see the event as it is sent (TW-WATCH-6).
    fn shape_event(&self, event: &mut Value);
    /// Reshapes a message just before it is written.
    fn shape_frame(&self, frame: Frame) -> Frame;
    /// Whether pushes of subscriptions may be held back and let out in
    /// another order (see [`HeldPushes`]).
    fn reorders_pushes(&self) -> bool;
    /// Whether search results of equal score come in descending `_id`
    /// order rather than ascending: section 24 leaves their order open.
    fn search_ties_descending(&self) -> bool;
    /// The score written for a search result whose score computes as
    /// `exact`: within the tolerance of section 24.
    fn search_score(&self, exact: f64) -> f64;
    /// Members added to every object of a change event beyond its schema,
    /// which watch filters may therefore name (section 8.4).
    fn event_members_beyond_schema(&self) -> &'static [&'static str];
    /// Whether the update events of a `view` watch that do not leave the
    /// view carry `full_document_before_change` too (TW-VIEW-3 requires it
    /// on `leave` events only).
    fn pre_image_beyond_leave(&self) -> bool;
    /// The epoch a stream of `kind` shows in its positions, given the epoch
    /// of the stream's storage (section 9.1: any string of 1 to 128 characters).
    fn position_epoch(&self, kind: StreamKind, epoch: &str) -> String;
    /// The `seq` of a stream's `n`-th entry, `n` 0 standing for the start:
    /// increasing in `n`, by one or more (section 9.1).
    fn position_seq(&self, n: u64) -> u64;
    /// The number of entries whose `seq` is at most `seq`: the inverse of
    /// `position_seq`, for a `seq` a client sends back.
    fn entries_through(&self, seq: u64) -> u64;
    /// What `welcome.retention` announces for a stream that keeps `kept`
    /// entries: a minimum (section 9.3), so at most `kept`.
    fn retention_announced(&self, kept: u64) -> u64;
}

/// The streams that have positions (section 9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    Journal,
    Topic,
    Room,
    Document,
}

/// The reference server's own choices.
struct Usual;

impl Choices for Usual {
    fn connection_id(&self, number: u64) -> String {
        format!("c{number}")
    }

    fn subscription_id(&self, _connection: u64, key: u64) -> String {
        format!("s{key}")
    }

    fn resume_token(&self, epoch: &str, position: u64) -> String {
        format!("{epoch}:{position}")
    }

    fn parse_resume_token<'t>(&self, token: &'t str) -> Option<(&'t str, u64)> {
        let (epoch, position) = token.rsplit_once(':')?;
        Some((epoch, position.parse().ok()?))
    }

    fn room_message_id(&self, posted: u64) -> String {
        format!("{posted:016}")
    }

    fn publication_id(&self, published: u64) -> String {
        format!("{published:016}")
    }

    fn record_id(&self) -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    fn heartbeat_after(&self, interval: Duration) -> Duration {
        interval
    }

    fn close_reason(&self, _code: CloseCode, usual: &str) -> String {
        usual.to_string()
    }

    fn ping_after(&self, interval: Duration) -> Duration {
        interval
    }

    fn part_budget(&self, max: usize) -> usize {
        max
    }

    fn shape_event(&self, _event: &mut Value) {}

    fn shape_frame(&self, frame: Frame) -> Frame {
        frame
    }

    fn reorders_pushes(&self) -> bool {
        false
    }

    fn search_ties_descending(&self) -> bool {
        false
    }

    fn search_score(&self, exact: f64) -> f64 {
        exact
    }

    fn event_members_beyond_schema(&self) -> &'static [&'static str] {
        &[]
    }
    fn pre_image_beyond_leave(&self) -> bool {
        false
    }
    fn position_epoch(&self, _kind: StreamKind, epoch: &str) -> String {
        epoch.to_string()
    }

    fn position_seq(&self, n: u64) -> u64 {
        n
    }

    fn entries_through(&self, seq: u64) -> u64 {
        seq
    }

    fn retention_announced(&self, kept: u64) -> u64 {
        kept
    }
}

/// The unknown member the alternate server adds to every object it may grow
/// (TW-CORE-6, section 22).
pub const EXTRA_MEMBER: &str = "x_variant";

/// The extension member (an `x-` name, section 22.1) the alternate server adds
/// beside [`EXTRA_MEMBER`]: peers ignore extensions they do not implement (TW-EXT-2).
pub const EXTENSION_MEMBER: &str = "x-alternate";

/// Resume tokens hide their position behind this mask, so that they neither
/// sort nor count in commit order: nothing but the server may read them.
const TOKEN_MASK: u64 = 0x5a5a_3c3c_0f0f_9696;

/// Members whose value is the client's data, returned as it was given
/// (records, published data, bodies, payloads, set values, edit operations):
/// the alternate server adds nothing to them and reorders nothing in them.
const CLIENT_DATA: [&str; 10] = [
    "record",
    "records",
    "full_document",
    "data",
    "body",
    "payload",
    "updated_fields",
    "ops",
    "metadata",
    "full_document_before_change",
];

/// Arrays whose order the specification leaves open; the alternate server
/// reverses them.
const UNORDERED: [&str; 5] = [
    "profiles",
    "members",
    "scopes",
    "positions",
    "removed_fields",
];

/// Members holding timestamps, which the alternate server writes with
/// microseconds instead of milliseconds.
const TIMESTAMPS: [&str; 6] = [
    "at",
    "committed_at",
    "sent_at",
    "published_at",
    "expires_at",
    "server_time",
];

#[derive(Default)]
struct Alternate {
    records: AtomicU64,
}

impl Choices for Alternate {
    fn connection_id(&self, number: u64) -> String {
        // `+` and `/`: an id is any string, not a name, a path segment or a regex.
        format!("conn+{number:x}/{}", uuid::Uuid::new_v4().simple())
    }

    fn subscription_id(&self, connection: u64, key: u64) -> String {
        format!("Ⓢ{connection:x}.{key:x}")
    }

    fn resume_token(&self, epoch: &str, position: u64) -> String {
        format!("{:016x}{epoch}", position ^ TOKEN_MASK)
    }

    fn parse_resume_token<'t>(&self, token: &'t str) -> Option<(&'t str, u64)> {
        let masked = token.get(..16)?;
        let position = u64::from_str_radix(masked, 16).ok()? ^ TOKEN_MASK;
        Some((&token[16..], position))
    }

    fn room_message_id(&self, posted: u64) -> String {
        // Fixed-width hex keeps the order; the random tail keeps clients from
        // computing ids or counting on them being dense.
        let tail = uuid::Uuid::new_v4().as_u128() as u16;
        format!("{posted:012x}~{tail:04x}")
    }

    fn publication_id(&self, _published: u64) -> String {
        format!("pub-{}", uuid::Uuid::new_v4())
    }

    fn record_id(&self) -> String {
        let n = self.records.fetch_add(1, Ordering::Relaxed) + 1;
        let tail = uuid::Uuid::new_v4().as_u128() as u32;
        format!("rec:{n}/{tail:08x}")
    }

    fn heartbeat_after(&self, interval: Duration) -> Duration {
        // Early in the window rather than at its end: TW-CORE-28 bounds the
        // silence, not the heartbeat.
        interval * 3 / 5
    }

    fn ping_after(&self, interval: Duration) -> Duration {
        // Earlier than the interval: TW-LIVE-2 bounds the wait, not the ping.
        interval * 3 / 5
    }

    fn part_budget(&self, max: usize) -> usize {
        // Parts well under the bound, so a client cannot rely on their size.
        (max / 3).max(64)
    }

    fn close_reason(&self, code: CloseCode, usual: &str) -> String {
        match code {
            // TW-AUTH-3 and TW-LIMIT-5 name these reasons.
            CloseCode::PolicyViolation | CloseCode::TryAgainLater => usual.to_string(),
            // Section 18.1: the delay leads the reason; the text after it is free.
            _ if code.carries_delay() => match tidewire_protocol::close_reason_delay(usual) {
                Some(delay_ms) => CloseCode::reason_with_delay(delay_ms, "Closed."),
                None => format!("Closed ({}).", code.code()),
            },
            // Section 18: the other reasons are for humans and logs.
            _ => format!("Closed ({}).", code.code()),
        }
    }

    fn shape_event(&self, event: &mut Value) {
        shape(event, "change.event");
    }

    fn shape_frame(&self, frame: Frame) -> Frame {
        let text = frame.into_text();
        let Ok(mut message) = serde_json::from_str::<Value>(&text) else {
            return Frame::Whole(text);
        };
        let kind = message["type"].as_str().unwrap_or_default().to_string();
        reword(&mut message, &kind);
        shape(&mut message, &kind);
        Frame::Whole(serde_json::to_string_pretty(&message).map_or(text, Utf8Bytes::from))
    }

    fn reorders_pushes(&self) -> bool {
        true
    }

    fn search_ties_descending(&self) -> bool {
        true
    }

    fn search_score(&self, exact: f64) -> f64 {
        // Single precision, as many vector stores keep their vectors: within
        // the tolerance, and rarely the bits a double computation gives.
        exact as f32 as f64
    }

    fn event_members_beyond_schema(&self) -> &'static [&'static str] {
        &[EXTRA_MEMBER]
    }
    fn pre_image_beyond_leave(&self) -> bool {
        true
    }
    fn position_epoch(&self, kind: StreamKind, epoch: &str) -> String {
        // Each kind of stream its own epoch, with characters no usual epoch
        // has: clients compare epochs as strings and nothing else.
        let kind = match kind {
            StreamKind::Journal => "journal",
            StreamKind::Topic => "topic",
            StreamKind::Room => "room",
            StreamKind::Document => "doc",
        };
        format!("{kind}/{epoch}+Ω")
    }

    fn position_seq(&self, n: u64) -> u64 {
        // Neither starting at 0 nor dense: clients compare seqs, never count them.
        SEQ_START.saturating_add(n.saturating_mul(SEQ_STEP))
    }

    fn entries_through(&self, seq: u64) -> u64 {
        seq.saturating_sub(SEQ_START) / SEQ_STEP
    }

    /// One entry fewer than kept: a client may not take the announced
    /// retention for the point where `history_lost` begins.
    fn retention_announced(&self, kept: u64) -> u64 {
        kept.saturating_sub(1).max(1)
    }
}

/// Where the alternate server's sequences start, and their step.
const SEQ_START: u64 = 1_000_000;
const SEQ_STEP: u64 = 7;

/// Different human-readable texts: programs act on codes, never on these
/// (section 3.4, section 5.4).
fn reword(message: &mut Value, kind: &str) {
    match kind {
        "error" => {
            let code = message["error"]["code"].as_str().unwrap_or("internal");
            let text = format!("Request declined ({code}); see the error code and details.");
            message["error"]["message"] = Value::String(text);
        }
        "notice" => {
            let reason = message["reason"].as_str().unwrap_or_default();
            message["message"] = Value::String(format!("Heads up: {reason}."));
        }
        "welcome" => {
            message["server"]["name"] = Value::String("tidewire-server (alternate)".into());
            let version = message["server"]["version"].as_str().unwrap_or_default();
            message["server"]["version"] = Value::String(format!("{version}+alternate"));
        }
        _ => {}
    }
}

/// Adds [`EXTRA_MEMBER`] and [`EXTENSION_MEMBER`] to `value` and every server object below it,
/// writes its members in reverse order, reverses the unordered arrays and
/// lengthens timestamps; the client's data is left as it is. A `change`'s
/// event was shaped when it was committed and is left alone here.
fn shape(value: &mut Value, at: &str) {
    let Value::Object(object) = value else {
        if let Value::Array(items) = value {
            for item in items {
                shape(item, at);
            }
        }
        return;
    };
    let mut shaped = Map::new();
    shaped.insert(EXTRA_MEMBER.into(), serde_json::json!({ "at": at }));
    shaped.insert(EXTENSION_MEMBER.into(), Value::Bool(true));
    let members = std::mem::take(object);
    for (key, mut member) in members.into_iter().rev() {
        let client_data = CLIENT_DATA.contains(&key.as_str());
        let committed_event = at == "change" && key == "event";
        if !client_data && !committed_event {
            if UNORDERED.contains(&key.as_str()) {
                if let Value::Array(items) = &mut member {
                    items.reverse();
                }
            }
            if TIMESTAMPS.contains(&key.as_str()) {
                lengthen_timestamp(&mut member);
            }
            shape(&mut member, &format!("{at}.{key}"));
        }
        shaped.insert(key, member);
    }
    *object = shaped;
}

/// `2026-01-24T10:30:00.123Z` becomes `2026-01-24T10:30:00.123000Z`: the same
/// instant (RFC 3339 allows any number of fraction digits).
fn lengthen_timestamp(value: &mut Value) {
    if let Value::String(text) = value {
        if let Some(instant) = text.strip_suffix('Z') {
            if instant.rsplit_once('.').is_some_and(|(_, f)| f.len() == 3) {
                *text = format!("{instant}000Z");
            }
        }
    }
}

/// The alternate server's push order: pushes of subscriptions (`change`,
/// `publication`) are held back, then let out after the next other message
/// (so a reply overtakes them) or [`HOLD_FOR`] after the first was held, the
/// subscription that pushed last first. Each subscription keeps its own order
/// (TW-WATCH-9, TW-TOPIC-6); only the order between subscriptions, and
/// between a push and replies, changes, which sections 3.2 and 16.2 leave
/// open. Held pushes go out before their subscription's `unsubscribed`
/// (TW-CORE-32) and before a `notice`, which may precede a close.
#[derive(Default)]
pub(crate) struct HeldPushes {
    held: Vec<(String, Outbound)>,
    since: Option<Instant>,
}

/// How long a push may be held when nothing else is written.
const HOLD_FOR: Duration = Duration::from_millis(20);
/// Pushes held at most, so a busy subscription does not pile up behind the bound.
const HOLD_AT_MOST: usize = 16;

impl HeldPushes {
    /// What to write now in place of `item`, in order.
    pub fn take(&mut self, mut item: Outbound) -> Vec<Outbound> {
        // The alternate server reshapes every frame whole anyway.
        let text = item.frame.into_text();
        let (kind, subscription) = kind_and_subscription(&text);
        item.frame = Frame::Whole(text);
        match (kind.as_str(), subscription) {
            ("change" | "publication", Some(subscription)) => {
                self.held.push((subscription, item));
                self.since.get_or_insert_with(Instant::now);
                if self.held.len() >= HOLD_AT_MOST {
                    return self.release();
                }
                Vec::new()
            }
            ("unsubscribed" | "ended", Some(subscription)) => {
                let (theirs, others): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
                    .into_iter()
                    .partition(|(held, _)| *held == subscription);
                self.held = others;
                let mut out: Vec<Outbound> = theirs.into_iter().map(|(_, item)| item).collect();
                out.push(item);
                out.extend(self.release());
                out
            }
            // A heartbeat's progress covers the pushes before it (TW-POS-8).
            ("notice" | "heartbeat", _) => {
                let mut out = self.release();
                out.push(item);
                out
            }
            _ => {
                let mut out = vec![item];
                out.extend(self.release());
                out
            }
        }
    }

    /// When the held pushes are due, if any are held.
    pub fn deadline(&self) -> Option<Instant> {
        self.since.map(|since| since + HOLD_FOR)
    }

    /// Everything held, grouped by subscription, the group of the
    /// subscription that pushed last first.
    pub fn release(&mut self) -> Vec<Outbound> {
        self.since = None;
        let mut order: Vec<String> = Vec::new();
        for (subscription, _) in self.held.iter().rev() {
            if !order.contains(subscription) {
                order.push(subscription.clone());
            }
        }
        let mut held = std::mem::take(&mut self.held);
        let mut out = Vec::with_capacity(held.len());
        for subscription in order {
            let (theirs, rest): (Vec<_>, Vec<_>) =
                held.into_iter().partition(|(s, _)| *s == subscription);
            out.extend(theirs.into_iter().map(|(_, item)| item));
            held = rest;
        }
        out
    }
}

fn kind_and_subscription(text: &str) -> (String, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "type", default)]
        kind: String,
        subscription: Option<String>,
    }
    match serde_json::from_str::<Head>(text) {
        Ok(head) => (head.kind, head.subscription),
        Err(_) => (String::new(), None),
    }
}
