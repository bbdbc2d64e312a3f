//! A catalogue of named, deterministic faults, for showing that a client or a
//! conformance suite notices a broken server.
//!
//! Each [`InjectedFault`] has a stable kebab-case name (`drop-event`, ...)
//! used by `tidewire-server --fault NAME` and `tidewire-conform run --embedded
//! --inject-fault NAME`. Faults that only change what is written go through an
//! [`OutboundFilter`]; faults that need the server to decide differently set a
//! switch in [`Faults`]. Every fault applies to every connection and involves
//! no randomness, so a run with a fault is reproducible.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;
use tidewire_protocol::{ErrorCode, RequestId, ServerMessage};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::config::{Config, Faults};
use crate::hooks::{OutboundFilter, Outgoing};

/// One deliberate misbehaviour of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InjectedFault {
    /// The second event (`change` or `publication`) of every subscription is never sent.
    DropEvent,
    /// The first event of every subscription is sent twice.
    DuplicateEvent,
    /// The first two events of every subscription are sent in swapped order.
    ReorderEvents,
    /// Every reply after a connection's first carries the id of the request before it.
    WrongReplyId,
    /// `created` replies lack `record`, which the schema requires.
    OmitRequiredField,
    /// Error replies carry the registry code after the right one.
    WrongErrorCode,
    /// No `heartbeat` is ever sent.
    SkipHeartbeat,
    /// The rate limit is announced in `welcome` but not enforced.
    IgnoreRateLimit,
    /// Watch and topic subscriptions ignore their `filter` (and `pipeline`).
    LeakAcrossFilter,
    /// Requests are checked against no scopes: everything is allowed.
    LeakAcrossScope,
    /// An `edit` naming a stale version is applied to the current document.
    AcceptStaleEdit,
    /// A member whose connection drops stays in its rooms, with no `presence` left.
    KeepDroppedMember,
    /// Only every third `heartbeat` is sent: an idle connection hears one
    /// every three announced intervals.
    LateHeartbeat,
    /// `publication.message_id` differs from the publisher's `published`.
    PublicationIdMismatch,
    /// `publication.published_at` differs from the publisher's `published`.
    PublicationTimeMismatch,
    /// `room_message.message.message_id` differs from the author's `posted`.
    RoomMessageIdMismatch,
    /// `room_message.message.sent_at` differs from the author's `posted`.
    SentAtMismatch,
    /// Timestamps are written without their `Z`, so they name no instant.
    ZonelessTimestamps,
    /// A member whose connection dropped is reported with reason `left`.
    WrongLeaveReason,
    /// `history_page.has_more` is always false.
    HistoryNeverHasMore,
    /// Every `history_page` lacks its oldest message.
    HistoryDropsOldest,
    /// Every message of every room is written with one and the same `message_id`.
    ConstantMessageIds,
    /// `typing` pushes carry the opposite of the typist's `active`.
    InvertedTyping,
    /// `history_page.has_more` is always true.
    HistoryAlwaysHasMore,
    /// `history_page` lists its messages newest first.
    HistoryNewestFirst,
    /// A `presence` of a member that left carries no `reason`.
    PresenceWithoutReason,
    /// Observers are listed and announced with the role `participant`.
    ObserverAsParticipant,
    /// Member objects lack the `display_name` and `metadata` of the member's `join`.
    DropMemberInfo,
    /// A `join` without `display_name` does not take the token's display name.
    IgnoreTokenName,
    /// A `join` whose display name or metadata exceeds its bound joins without them.
    AcceptOversizedMemberInfo,
    /// Pushes carry no `server_time`.
    PushWithoutTime,
    /// `stats.server.connections_total` reports the open connections.
    TotalIsCurrent,
    /// `stats.server.limits` announces one more subscription than the welcome.
    StatsLimitsDiffer,
    /// The connection rate per client address is announced but not enforced.
    IgnoreConnectRate,
    /// The post rate per room is announced but not enforced.
    IgnoreRoomPostRate,
    /// Errors carry no `retry`.
    ErrorWithoutRetry,
    /// Application error codes lose their `x-` prefix.
    UnprefixedExtensionCode,
    /// `records.total` counts the matching records hidden from the principal too.
    CountHiddenRecords,
    /// Watches deliver the changes of records hidden from their principal.
    LeakHiddenChange,
    /// An update that hides a record from a watch's principal is not reported.
    HideWithoutDelete,
    /// An update that reveals a record to a watch's principal is an update event.
    RevealAsUpdate,
    /// `read` by `record_id` returns a record hidden from the principal.
    ReadHiddenById,
}

/// A name that is no fault of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault {name:?} (known: {})", InjectedFault::names().join(", "))]
pub struct UnknownFault {
    pub name: String,
}

impl InjectedFault {
    /// Every fault of the catalogue, in a fixed order.
    pub const ALL: [InjectedFault; 42] = [
        InjectedFault::DropEvent,
        InjectedFault::DuplicateEvent,
        InjectedFault::ReorderEvents,
        InjectedFault::WrongReplyId,
        InjectedFault::OmitRequiredField,
        InjectedFault::WrongErrorCode,
        InjectedFault::SkipHeartbeat,
        InjectedFault::IgnoreRateLimit,
        InjectedFault::LeakAcrossFilter,
        InjectedFault::LeakAcrossScope,
        InjectedFault::AcceptStaleEdit,
        InjectedFault::KeepDroppedMember,
        InjectedFault::LateHeartbeat,
        InjectedFault::PublicationIdMismatch,
        InjectedFault::PublicationTimeMismatch,
        InjectedFault::RoomMessageIdMismatch,
        InjectedFault::SentAtMismatch,
        InjectedFault::ZonelessTimestamps,
        InjectedFault::WrongLeaveReason,
        InjectedFault::HistoryNeverHasMore,
        InjectedFault::HistoryDropsOldest,
        InjectedFault::ConstantMessageIds,
        InjectedFault::InvertedTyping,
        InjectedFault::HistoryAlwaysHasMore,
        InjectedFault::HistoryNewestFirst,
        InjectedFault::PresenceWithoutReason,
        InjectedFault::ObserverAsParticipant,
        InjectedFault::DropMemberInfo,
        InjectedFault::IgnoreTokenName,
        InjectedFault::AcceptOversizedMemberInfo,
        InjectedFault::PushWithoutTime,
        InjectedFault::TotalIsCurrent,
        InjectedFault::StatsLimitsDiffer,
        InjectedFault::IgnoreConnectRate,
        InjectedFault::IgnoreRoomPostRate,
        InjectedFault::ErrorWithoutRetry,
        InjectedFault::UnprefixedExtensionCode,
        InjectedFault::CountHiddenRecords,
        InjectedFault::LeakHiddenChange,
        InjectedFault::HideWithoutDelete,
        InjectedFault::RevealAsUpdate,
        InjectedFault::ReadHiddenById,
    ];

    /// The stable kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            InjectedFault::DropEvent => "drop-event",
            InjectedFault::DuplicateEvent => "duplicate-event",
            InjectedFault::ReorderEvents => "reorder-events",
            InjectedFault::WrongReplyId => "wrong-reply-id",
            InjectedFault::OmitRequiredField => "omit-required-field",
            InjectedFault::WrongErrorCode => "wrong-error-code",
            InjectedFault::SkipHeartbeat => "skip-heartbeat",
            InjectedFault::IgnoreRateLimit => "ignore-rate-limit",
            InjectedFault::LeakAcrossFilter => "leak-across-filter",
            InjectedFault::LeakAcrossScope => "leak-across-scope",
            InjectedFault::AcceptStaleEdit => "accept-stale-edit",
            InjectedFault::KeepDroppedMember => "keep-dropped-member",
            InjectedFault::LateHeartbeat => "late-heartbeat",
            InjectedFault::PublicationIdMismatch => "publication-id-mismatch",
            InjectedFault::PublicationTimeMismatch => "publication-time-mismatch",
            InjectedFault::RoomMessageIdMismatch => "room-message-id-mismatch",
            InjectedFault::SentAtMismatch => "sent-at-mismatch",
            InjectedFault::ZonelessTimestamps => "zoneless-timestamps",
            InjectedFault::WrongLeaveReason => "wrong-leave-reason",
            InjectedFault::HistoryNeverHasMore => "history-never-has-more",
            InjectedFault::HistoryDropsOldest => "history-drops-oldest",
            InjectedFault::ConstantMessageIds => "constant-message-ids",
            InjectedFault::InvertedTyping => "inverted-typing",
            InjectedFault::HistoryAlwaysHasMore => "history-always-has-more",
            InjectedFault::HistoryNewestFirst => "history-newest-first",
            InjectedFault::PresenceWithoutReason => "presence-without-reason",
            InjectedFault::ObserverAsParticipant => "observer-as-participant",
            InjectedFault::DropMemberInfo => "drop-member-info",
            InjectedFault::IgnoreTokenName => "ignore-token-name",
            InjectedFault::AcceptOversizedMemberInfo => "accept-oversized-member-info",
            InjectedFault::PushWithoutTime => "push-without-time",
            InjectedFault::TotalIsCurrent => "total-is-current",
            InjectedFault::StatsLimitsDiffer => "stats-limits-differ",
            InjectedFault::IgnoreConnectRate => "ignore-connect-rate",
            InjectedFault::IgnoreRoomPostRate => "ignore-room-post-rate",
            InjectedFault::ErrorWithoutRetry => "error-without-retry",
            InjectedFault::UnprefixedExtensionCode => "unprefixed-extension-code",
            InjectedFault::CountHiddenRecords => "count-hidden-records",
            InjectedFault::LeakHiddenChange => "leak-hidden-change",
            InjectedFault::HideWithoutDelete => "hide-without-delete",
            InjectedFault::RevealAsUpdate => "reveal-as-update",
            InjectedFault::ReadHiddenById => "read-hidden-by-id",
        }
    }

    /// One line saying what the server does wrong.
    pub fn description(self) -> &'static str {
        match self {
            InjectedFault::DropEvent => {
                "the second change/publication of every subscription is not sent"
            }
            InjectedFault::DuplicateEvent => {
                "the first change/publication of every subscription is sent twice"
            }
            InjectedFault::ReorderEvents => {
                "the first two changes/publications of every subscription arrive swapped"
            }
            InjectedFault::WrongReplyId => {
                "each reply after a connection's first carries the previous request's id"
            }
            InjectedFault::OmitRequiredField => "`created` replies lack the required `record`",
            InjectedFault::WrongErrorCode => {
                "error replies carry the next registry code instead of the right one"
            }
            InjectedFault::SkipHeartbeat => "no heartbeat is ever sent",
            InjectedFault::IgnoreRateLimit => "the announced rate limit is not enforced",
            InjectedFault::LeakAcrossFilter => {
                "watch and topic subscriptions receive events their filter excludes"
            }
            InjectedFault::LeakAcrossScope => "requests are allowed whatever the scopes say",
            InjectedFault::AcceptStaleEdit => {
                "an edit against a stale version is applied instead of a conflict"
            }
            InjectedFault::KeepDroppedMember => {
                "a member whose connection drops stays listed, with no presence left"
            }
            InjectedFault::LateHeartbeat => {
                "an idle connection hears a heartbeat every third interval"
            }
            InjectedFault::PublicationIdMismatch => {
                "publications carry another message_id than the publisher's published"
            }
            InjectedFault::PublicationTimeMismatch => {
                "publications carry another published_at than the publisher's published"
            }
            InjectedFault::RoomMessageIdMismatch => {
                "room messages carry another message_id than the author's posted"
            }
            InjectedFault::SentAtMismatch => {
                "room messages carry another sent_at than the author's posted"
            }
            InjectedFault::ZonelessTimestamps => "timestamps lack their Z (UTC) designator",
            InjectedFault::WrongLeaveReason => {
                "a member whose connection dropped is reported as having left"
            }
            InjectedFault::HistoryNeverHasMore => "history pages always say has_more false",
            InjectedFault::HistoryDropsOldest => "history pages lack their oldest message",
            InjectedFault::ConstantMessageIds => "every room message has the same message_id",
            InjectedFault::InvertedTyping => "typing pushes carry the opposite active",
            InjectedFault::HistoryAlwaysHasMore => "history pages always say has_more true",
            InjectedFault::HistoryNewestFirst => "history pages list their messages newest first",
            InjectedFault::PresenceWithoutReason => {
                "presence of a departed member lacks its reason"
            }
            InjectedFault::ObserverAsParticipant => "observers are listed as participants",
            InjectedFault::DropMemberInfo => {
                "members are shown without their display name and metadata"
            }
            InjectedFault::IgnoreTokenName => "a join without display_name ignores the token's",
            InjectedFault::AcceptOversizedMemberInfo => {
                "a join over the display name or metadata bound joins without them"
            }
            InjectedFault::PushWithoutTime => "pushes carry no server_time",
            InjectedFault::TotalIsCurrent => "stats report the open connections as the total",
            InjectedFault::StatsLimitsDiffer => {
                "stats report another max_subscriptions than the welcome"
            }
            InjectedFault::IgnoreConnectRate => {
                "the connection rate per address is announced but not enforced"
            }
            InjectedFault::IgnoreRoomPostRate => {
                "the post rate per room is announced but not enforced"
            }
            InjectedFault::ErrorWithoutRetry => "errors carry no retry class",
            InjectedFault::UnprefixedExtensionCode => {
                "application error codes are sent without their x- prefix"
            }
            InjectedFault::CountHiddenRecords => {
                "records.total counts matching records hidden from the principal"
            }
            InjectedFault::LeakHiddenChange => {
                "watches deliver changes of records hidden from their principal"
            }
            InjectedFault::HideWithoutDelete => {
                "an update that hides a record from a watch's principal is not reported"
            }
            InjectedFault::RevealAsUpdate => {
                "an update that reveals a record to a watch's principal is sent as an update"
            }
            InjectedFault::ReadHiddenById => {
                "read by record_id returns a record hidden from the principal"
            }
        }
    }

    /// The names of every fault, in catalogue order.
    pub fn names() -> Vec<&'static str> {
        InjectedFault::ALL.iter().map(|f| f.name()).collect()
    }

    /// Returns `config` with this fault switched on. Faults compose: an
    /// outbound fault runs before any filter already installed, which then
    /// sees what the fault let through.
    pub fn apply(self, mut config: Config) -> Config {
        let faults = &mut config.faults;
        match self {
            InjectedFault::SkipHeartbeat => faults.skip_heartbeats = true,
            InjectedFault::IgnoreRateLimit => faults.ignore_rate_limit = true,
            InjectedFault::OmitRequiredField => faults.omit_required_field = true,
            InjectedFault::LeakAcrossFilter => faults.leak_across_filter = true,
            InjectedFault::LeakAcrossScope => faults.leak_across_scope = true,
            InjectedFault::AcceptStaleEdit => faults.accept_stale_edit = true,
            InjectedFault::KeepDroppedMember => faults.keep_dropped_member = true,
            InjectedFault::PushWithoutTime => faults.push_without_time = true,
            InjectedFault::IgnoreTokenName => faults.ignore_token_name = true,
            InjectedFault::AcceptOversizedMemberInfo => faults.accept_oversized_member_info = true,
            InjectedFault::IgnoreConnectRate => faults.ignore_connect_rate = true,
            InjectedFault::IgnoreRoomPostRate => faults.ignore_room_post_rate = true,
            InjectedFault::UnprefixedExtensionCode => faults.unprefixed_extension_codes = true,
            InjectedFault::CountHiddenRecords => faults.count_hidden_records = true,
            InjectedFault::LeakHiddenChange => faults.leak_hidden_change = true,
            InjectedFault::HideWithoutDelete => faults.hide_without_delete = true,
            InjectedFault::RevealAsUpdate => faults.reveal_as_update = true,
            InjectedFault::ReadHiddenById => faults.read_hidden_by_id = true,
            InjectedFault::DropEvent
            | InjectedFault::DuplicateEvent
            | InjectedFault::ReorderEvents
            | InjectedFault::WrongReplyId
            | InjectedFault::WrongErrorCode
            | InjectedFault::LateHeartbeat
            | InjectedFault::PublicationIdMismatch
            | InjectedFault::PublicationTimeMismatch
            | InjectedFault::RoomMessageIdMismatch
            | InjectedFault::SentAtMismatch
            | InjectedFault::ZonelessTimestamps
            | InjectedFault::WrongLeaveReason
            | InjectedFault::HistoryNeverHasMore
            | InjectedFault::HistoryDropsOldest
            | InjectedFault::ConstantMessageIds
            | InjectedFault::InvertedTyping
            | InjectedFault::HistoryAlwaysHasMore
            | InjectedFault::HistoryNewestFirst
            | InjectedFault::PresenceWithoutReason
            | InjectedFault::ObserverAsParticipant
            | InjectedFault::DropMemberInfo
            | InjectedFault::TotalIsCurrent
            | InjectedFault::StatsLimitsDiffer
            | InjectedFault::ErrorWithoutRetry => {
                let inner = config.outbound_filter.take();
                config.outbound_filter = Some(Arc::new(FaultFilter {
                    fault: self,
                    connections: Mutex::new(HashMap::new()),
                    inner,
                }));
            }
        }
        config
    }
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for InjectedFault {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<InjectedFault, UnknownFault> {
        InjectedFault::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFault {
                name: s.to_string(),
            })
    }
}

impl Config {
    /// Switches on one fault of the catalogue (see [`InjectedFault`]).
    pub fn with_fault(self, fault: InjectedFault) -> Config {
        fault.apply(self)
    }
}

impl Faults {
    /// Whether any switch is on.
    pub fn any(&self) -> bool {
        *self != Faults::default()
    }
}

/// What the outbound faults remember about one connection.
#[derive(Default)]
struct ConnFaultState {
    /// Events seen so far per subscription.
    events: HashMap<String, u64>,
    /// Events held back by `reorder-events`, per subscription.
    held: BTreeMap<String, ServerMessage>,
    /// The id of the last reply, for `wrong-reply-id`.
    last_reply_id: Option<RequestId>,
    /// Heartbeats the server meant to send, for `late-heartbeat`.
    heartbeats: u64,
}

/// The outbound filter of the faults that only change what is written.
struct FaultFilter {
    fault: InjectedFault,
    // Entries are never removed: the filter does not learn when a connection
    // ends, and a server runs with a fault only for the length of a test.
    connections: Mutex<HashMap<String, ConnFaultState>>,
    inner: Option<Arc<dyn OutboundFilter>>,
}

fn event_subscription(message: &ServerMessage) -> Option<&str> {
    match message {
        ServerMessage::Change(change) => Some(&change.subscription),
        ServerMessage::Publication(publication) => Some(&publication.subscription),
        _ => None,
    }
}

/// `message` with its `id` member replaced; `None` when it has none to replace.
fn with_reply_id(message: &ServerMessage, id: &RequestId) -> Option<ServerMessage> {
    let mut value = serde_json::to_value(message).ok()?;
    let slot = value.as_object_mut()?.get_mut("id")?;
    *slot = serde_json::to_value(id).ok()?;
    serde_json::from_value(value).ok()
}

fn next_code(code: ErrorCode) -> ErrorCode {
    let all = ErrorCode::ALL;
    let index = all.iter().position(|c| *c == code).unwrap_or(0);
    all[(index + 1) % all.len()]
}

impl FaultFilter {
    fn apply(&self, state: &mut ConnFaultState, message: ServerMessage) -> Vec<ServerMessage> {
        match self.fault {
            InjectedFault::DropEvent | InjectedFault::DuplicateEvent => {
                let Some(subscription) = event_subscription(&message) else {
                    return vec![message];
                };
                let seen = state.events.entry(subscription.to_string()).or_default();
                *seen += 1;
                match (self.fault, *seen) {
                    (InjectedFault::DropEvent, 2) => vec![],
                    (InjectedFault::DuplicateEvent, 1) => vec![message.clone(), message],
                    _ => vec![message],
                }
            }
            InjectedFault::ReorderEvents => reorder(state, message),
            InjectedFault::WrongReplyId => {
                let Some(id) = message.reply_to().cloned() else {
                    return vec![message];
                };
                match state.last_reply_id.replace(id) {
                    Some(previous) => vec![with_reply_id(&message, &previous).unwrap_or(message)],
                    None => vec![message],
                }
            }
            InjectedFault::WrongErrorCode => match message {
                ServerMessage::Error(mut error) if error.id.is_some() => {
                    if let Some(code) = error.error.code.registry() {
                        error.error.code = next_code(code).into();
                    }
                    vec![ServerMessage::Error(error)]
                }
                other => vec![other],
            },
            InjectedFault::LateHeartbeat => match message {
                ServerMessage::Heartbeat(_) => {
                    state.heartbeats += 1;
                    if state.heartbeats % 3 == 0 {
                        vec![message]
                    } else {
                        vec![]
                    }
                }
                other => vec![other],
            },
            fault => {
                vec![rewrite(&message, |value| rewrite_frame(fault, value)).unwrap_or(message)]
            }
        }
    }
}

/// `message` as `change` leaves its JSON form; `None` when the result is no
/// server message (the fault then lets the message through unchanged).
fn rewrite(message: &ServerMessage, change: impl FnOnce(&mut Value)) -> Option<ServerMessage> {
    let mut value = serde_json::to_value(message).ok()?;
    change(&mut value);
    serde_json::from_value(value).ok()
}

/// Another well-formed timestamp than `stamp`: its last digit moved on.
fn other_timestamp(stamp: &str) -> String {
    let mut chars: Vec<char> = stamp.chars().collect();
    if let Some(digit) = chars.iter_mut().rev().find(|c| c.is_ascii_digit()) {
        let next = (digit.to_digit(10).unwrap_or(0) + 1) % 10;
        *digit = char::from_digit(next, 10).unwrap_or('0');
    }
    chars.into_iter().collect()
}

/// What the faults that alter one member of a frame do to its JSON form.
fn rewrite_frame(fault: InjectedFault, frame: &mut Value) {
    let kind = frame["type"].as_str().unwrap_or_default().to_string();
    let set = |slot: Option<&mut Value>, change: &dyn Fn(&str) -> String| {
        if let Some(slot) = slot {
            if let Some(text) = slot.as_str() {
                *slot = Value::String(change(text));
            }
        }
    };
    match (fault, kind.as_str()) {
        (InjectedFault::PublicationIdMismatch, "publication") => {
            set(frame.get_mut("message_id"), &|id| format!("{id}-copy"));
        }
        (InjectedFault::PublicationTimeMismatch, "publication") => {
            set(frame.get_mut("published_at"), &other_timestamp);
        }
        (InjectedFault::RoomMessageIdMismatch, "room_message") => {
            set(frame.pointer_mut("/message/message_id"), &|id| {
                format!("{id}-copy")
            });
        }
        (InjectedFault::SentAtMismatch, "room_message") => {
            set(frame.pointer_mut("/message/sent_at"), &other_timestamp);
        }
        (InjectedFault::ZonelessTimestamps, _) => {
            for pointer in [
                "/at",
                "/published_at",
                "/sent_at",
                "/message/sent_at",
                "/event/committed_at",
            ] {
                set(frame.pointer_mut(pointer), &|t| {
                    t.trim_end_matches('Z').to_string()
                });
            }
        }
        (InjectedFault::WrongLeaveReason, "presence") if frame["reason"] == "disconnected" => {
            frame["reason"] = Value::from("left");
        }
        (InjectedFault::HistoryNeverHasMore, "history_page") => {
            frame["has_more"] = Value::Bool(false);
        }
        (InjectedFault::HistoryDropsOldest, "history_page") => {
            if let Some(messages) = frame["messages"].as_array_mut() {
                if !messages.is_empty() {
                    messages.remove(0);
                }
            }
        }
        (InjectedFault::ConstantMessageIds, "posted") => {
            set(frame.get_mut("message_id"), &|_| CONSTANT_MESSAGE_ID.into());
        }
        (InjectedFault::ConstantMessageIds, "room_message") => {
            set(frame.pointer_mut("/message/message_id"), &|_| {
                CONSTANT_MESSAGE_ID.into()
            });
        }
        (InjectedFault::ConstantMessageIds, "history_page") => {
            for message in frame["messages"].as_array_mut().into_iter().flatten() {
                message["message_id"] = Value::from(CONSTANT_MESSAGE_ID);
            }
        }
        (InjectedFault::HistoryAlwaysHasMore, "history_page") => {
            frame["has_more"] = Value::Bool(true);
        }
        (InjectedFault::HistoryNewestFirst, "history_page") => {
            if let Some(messages) = frame["messages"].as_array_mut() {
                messages.reverse();
            }
        }
        (InjectedFault::PresenceWithoutReason, "presence") => {
            if let Some(presence) = frame.as_object_mut() {
                presence.remove("reason");
            }
        }
        (InjectedFault::ObserverAsParticipant, _) => {
            let participant = |member: &mut Value| {
                if member["role"] == "observer" {
                    member["role"] = Value::from("participant");
                }
            };
            for pointer in ["/member", "/message/author"] {
                if let Some(member) = frame.pointer_mut(pointer) {
                    participant(member);
                }
            }
            if frame["role"] == "observer" {
                frame["role"] = Value::from("participant");
            }
            let members = frame.get_mut("members").and_then(Value::as_array_mut);
            for member in members.into_iter().flatten() {
                participant(member);
            }
        }
        (InjectedFault::DropMemberInfo, _) => {
            let strip = |member: &mut Value| {
                if let Some(member) = member.as_object_mut() {
                    member.remove("display_name");
                    member.remove("metadata");
                }
            };
            for pointer in ["/member", "/author", "/message/author"] {
                if let Some(member) = frame.pointer_mut(pointer) {
                    strip(member);
                }
            }
            let members = frame.get_mut("members").and_then(Value::as_array_mut);
            for member in members.into_iter().flatten() {
                strip(member);
            }
            let messages = frame.get_mut("messages").and_then(Value::as_array_mut);
            for message in messages.into_iter().flatten() {
                if let Some(author) = message.get_mut("author") {
                    strip(author);
                }
            }
        }
        (InjectedFault::ErrorWithoutRetry, "error") => {
            if let Some(error) = frame.get_mut("error").and_then(Value::as_object_mut) {
                error.remove("retry");
            }
        }
        (InjectedFault::TotalIsCurrent, "stats") => {
            if let Some(open) = frame.pointer("/server/connections").cloned() {
                if let Some(total) = frame.pointer_mut("/server/connections_total") {
                    *total = open;
                }
            }
        }
        (InjectedFault::StatsLimitsDiffer, "stats") => {
            if let Some(slot) = frame.pointer_mut("/server/limits/max_subscriptions") {
                if let Some(n) = slot.as_u64() {
                    *slot = Value::from(n + 1);
                }
            }
        }
        (InjectedFault::InvertedTyping, "typing") => {
            if let Some(active) = frame["active"].as_bool() {
                frame["active"] = Value::Bool(!active);
            }
        }
        _ => {}
    }
}

/// The `unprefixed-extension-code` fault, applied to a frame about to be written.
pub(crate) fn unprefix_extension_code(text: Utf8Bytes) -> Utf8Bytes {
    let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(&text) else {
        return text;
    };
    let Some(code) = message.get_mut("error").and_then(|e| e.get_mut("code")) else {
        return text;
    };
    match code.as_str().and_then(|c| c.strip_prefix("x-")) {
        Some(bare) => *code = Value::from(bare),
        None => return text,
    }
    Value::Object(message).to_string().into()
}

/// The `accept-oversized-member-info` fault: a `join` refused only for its
/// display name or metadata, decoded again without them.
pub(crate) fn join_without_member_info(
    text: &str,
    depth: usize,
    err: &tidewire_protocol::DecodeError,
) -> Option<tidewire_protocol::ClientMessage> {
    let path = err.path.as_deref()?;
    if path != "display_name" && path != "metadata" && !path.starts_with("metadata.") {
        return None;
    }
    let mut value: Value = serde_json::from_str(text).ok()?;
    if value.get("type")? != "join" {
        return None;
    }
    let object = value.as_object_mut()?;
    object.remove("display_name");
    object.remove("metadata");
    tidewire_protocol::decode_client_message(&value.to_string(), depth).ok()
}

/// The one id `constant-message-ids` gives every room message.
const CONSTANT_MESSAGE_ID: &str = "m-000001";

/// Holds the first event of each subscription until its second, then sends
/// the second before the first. A held event is let go, in its place, before
/// anything that would otherwise overtake it for good: the subscription's
/// `unsubscribed`, a `notice` (the connection may close), or a `heartbeat`
/// (the connection went idle, so no second event is on its way). Combined
/// with `skip-heartbeat`, a subscription's lone first event is never sent.
fn reorder(state: &mut ConnFaultState, message: ServerMessage) -> Vec<ServerMessage> {
    if let Some(subscription) = event_subscription(&message) {
        let seen = state.events.entry(subscription.to_string()).or_default();
        *seen += 1;
        return match *seen {
            1 => {
                state.held.insert(subscription.to_string(), message);
                vec![]
            }
            _ => match state.held.remove(subscription) {
                Some(first) => vec![message, first],
                None => vec![message],
            },
        };
    }
    let mut out: Vec<ServerMessage> = match &message {
        ServerMessage::Unsubscribed(reply) => {
            state.held.remove(&reply.subscription).into_iter().collect()
        }
        ServerMessage::Notice(_) | ServerMessage::Heartbeat(_) => {
            std::mem::take(&mut state.held).into_values().collect()
        }
        _ => Vec::new(),
    };
    out.push(message);
    out
}

impl OutboundFilter for FaultFilter {
    fn filter(&self, connection_id: &str, message: ServerMessage) -> Vec<Outgoing> {
        let produced = {
            let mut connections = self.connections.lock();
            let state = connections.entry(connection_id.to_string()).or_default();
            self.apply(state, message)
        };
        match &self.inner {
            None => produced.into_iter().map(Outgoing::now).collect(),
            Some(inner) => produced
                .into_iter()
                .flat_map(|m| inner.filter(connection_id, m))
                .collect(),
        }
    }
}

/// The `omit-required-field` fault, applied to a frame about to be written.
pub(crate) fn omit_required_field(text: Utf8Bytes) -> Utf8Bytes {
    let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(&text) else {
        return text;
    };
    if message.get("type").and_then(Value::as_str) != Some("created") {
        return text;
    }
    message.remove("record");
    Value::Object(message).to_string().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names = InjectedFault::names();
        for fault in InjectedFault::ALL {
            assert_eq!(fault.name().parse::<InjectedFault>(), Ok(fault));
            assert_eq!(fault.to_string(), fault.name());
            assert!(fault
                .name()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-'));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), InjectedFault::ALL.len());
        let err = "drop-events".parse::<InjectedFault>().unwrap_err();
        assert!(err.to_string().contains("drop-event, duplicate-event"));
    }

    #[test]
    fn every_fault_changes_the_configuration() {
        for fault in InjectedFault::ALL {
            let config = Config::default().with_fault(fault);
            assert!(
                config.faults.any() || config.outbound_filter.is_some(),
                "{fault} changes nothing"
            );
        }
    }

    #[test]
    fn error_codes_move_to_another_registry_code() {
        for code in ErrorCode::ALL {
            assert_ne!(next_code(code), code);
        }
    }

    fn through(fault: InjectedFault, frames: &[Value]) -> Vec<Value> {
        let config = Config::default().with_fault(fault);
        let filter = config.outbound_filter.expect("a filter fault");
        frames
            .iter()
            .flat_map(|frame| {
                let message: ServerMessage = serde_json::from_value(frame.clone()).unwrap();
                filter.filter("c-1", message)
            })
            .map(|out| serde_json::to_value(out.message).unwrap())
            .collect()
    }

    #[test]
    fn a_late_heartbeat_is_every_third_one() {
        let beat = serde_json::json!({"type": "heartbeat", "at": "2026-01-24T10:30:00.000Z"});
        let sent = through(InjectedFault::LateHeartbeat, &vec![beat; 6]);
        assert_eq!(sent.len(), 2);
    }

    #[test]
    fn a_moved_timestamp_is_another_well_formed_one() {
        assert_eq!(
            other_timestamp("2026-01-24T10:30:00.129Z"),
            "2026-01-24T10:30:00.120Z"
        );
        let posted = serde_json::json!({"type": "room_message", "room": "r", "message": {
            "message_id": "m-000002", "body": 1, "sent_at": "2026-01-24T10:30:00.000Z",
            "author": {"connection_id": "c-1", "principal": "p", "role": "observer"}}});
        let moved = &through(InjectedFault::SentAtMismatch, std::slice::from_ref(&posted))[0];
        assert_eq!(moved["message"]["sent_at"], "2026-01-24T10:30:00.001Z");
        let constant = &through(
            InjectedFault::ConstantMessageIds,
            std::slice::from_ref(&posted),
        )[0];
        assert_eq!(constant["message"]["message_id"], CONSTANT_MESSAGE_ID);
        let promoted = &through(InjectedFault::ObserverAsParticipant, &[posted])[0];
        assert_eq!(promoted["message"]["author"]["role"], "participant");
    }

    #[test]
    fn omitting_leaves_other_messages_alone() {
        let created: Utf8Bytes = r#"{"type":"created","id":"c1","record":{"_id":"a"}}"#.into();
        let omitted: Value = serde_json::from_str(&omit_required_field(created)).unwrap();
        assert_eq!(omitted, serde_json::json!({"type": "created", "id": "c1"}));
        let pong: Utf8Bytes = r#"{"type":"pong","id":"p1"}"#.into();
        assert_eq!(omit_required_field(pong.clone()), pong);
    }
}
