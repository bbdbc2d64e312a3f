//! Values that appear inside messages of both directions.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::names::CollectionName;

/// A JSON object: a record, a projection of one, or a set of updated fields.
pub type Object = Map<String, Value>;

/// A server-assigned subscription id, unique within its connection.
pub type SubscriptionId = String;

/// An instant in RFC 3339 form, UTC, e.g. `2026-01-24T10:30:00.123Z`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub String);

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "An instant in RFC 3339 form, UTC, e.g. `2026-01-24T10:30:00.123Z`.",
        })
    }
}

/// An opaque position in a server's change journal. Clients store it and send
/// it back in `watch.resume_after`; they MUST NOT parse it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ResumeToken(pub String);

/// A token that is not a string of 1 to 512 characters is not well formed,
/// which is `invalid_message`, not `history_lost` (TW-POS-5).
impl<'de> Deserialize<'de> for ResumeToken {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let token = String::deserialize(deserializer)?;
        if (1..=512).contains(&token.chars().count()) {
            Ok(ResumeToken(token))
        } else {
            Err(serde::de::Error::custom(
                "a resume token is a string of 1 to 512 characters",
            ))
        }
    }
}

impl JsonSchema for ResumeToken {
    fn schema_name() -> Cow<'static, str> {
        "ResumeToken".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "minLength": 1,
            "maxLength": 512,
            "description": "An opaque position in the server's change journal, naming the journal's epoch and a position in it. Clients store it and send it back in `watch.resume_after`; they must not parse it.",
        })
    }
}

/// A position in one stream (the change journal, a topic, a room, a document): the
/// stream's epoch and a sequence number within it. Two positions of the same epoch
/// compare by `seq`, the greater being later; positions of different epochs do not
/// compare, and a server that starts a new epoch answers a resume from an older one
/// with `history_lost` (section 9.1).
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Position {
    /// Names one life of the stream; it changes whenever the server cannot continue the
    /// earlier sequence (an in-memory server restarted, a journal lost).
    #[schemars(length(min = 1, max = 128))]
    #[serde(deserialize_with = "epoch")]
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(regex = "[a-z0-9]{1,16}"))]
    pub epoch: String,
    /// Increases with every entry of the stream within an epoch, by one or more.
    #[schemars(range(max = crate::lenient::MAX_INTEGER))]
    #[serde(deserialize_with = "crate::lenient::integer")]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "0..=crate::lenient::MAX_INTEGER")
    )]
    pub seq: u64,
}

/// An epoch that is not a string of 1 to 128 characters is not well formed,
/// which is `invalid_message`, not `history_lost` (TW-POS-5).
fn epoch<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let epoch = String::deserialize(deserializer)?;
    if (1..=128).contains(&epoch.chars().count()) {
        Ok(epoch)
    } else {
        Err(serde::de::Error::custom(
            "an epoch is a string of 1 to 128 characters",
        ))
    }
}

/// Where a live subscription stands in its stream, carried by heartbeats so that a
/// subscription that receives nothing still has a position to resume from.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Progress {
    pub subscription: SubscriptionId,
    /// Every entry of the stream up to this position that the subscription selects
    /// was sent before the message carrying it.
    pub position: Position,
}

/// How much of each stream the server keeps for resuming, as `welcome` announces it.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Retention {
    /// Changes of the journal kept, at least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<u64>,
    /// Publications of each topic kept, at least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<u64>,
    /// Messages of each room kept, at least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<u64>,
}

/// A filter of the Tidewire filter language: a JSON object of field paths and
/// `$` operators, evaluated with the shared filter crate.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Filter(pub Object);

/// The profiles a server may implement. A server lists those it implements in `welcome.profiles`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    Core,
    Auth,
    Records,
    Watch,
    Resume,
    Topics,
    Rooms,
    Collab,
    Limits,
    Stats,
    Vector,
}

impl Profile {
    pub const ALL: [Profile; 11] = [
        Profile::Core,
        Profile::Auth,
        Profile::Records,
        Profile::Watch,
        Profile::Resume,
        Profile::Topics,
        Profile::Rooms,
        Profile::Collab,
        Profile::Limits,
        Profile::Stats,
        Profile::Vector,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Core => "core",
            Profile::Auth => "auth",
            Profile::Records => "records",
            Profile::Watch => "watch",
            Profile::Resume => "resume",
            Profile::Topics => "topics",
            Profile::Rooms => "rooms",
            Profile::Collab => "collab",
            Profile::Limits => "limits",
            Profile::Stats => "stats",
            Profile::Vector => "vector",
        }
    }

    pub fn parse(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// Whether the server requires authentication.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Every connection is the anonymous principal with every scope.
    Off,
    /// Unauthenticated connections are the anonymous principal with the server's anonymous scopes.
    Optional,
    /// Every request before a successful `auth` is refused with `unauthorized`, and a
    /// connection that has not authenticated within `timeout_ms` is closed with 1008.
    Required,
}

/// Server identification, for logs and reports.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
}

/// The connection's authentication state as of the welcome.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuthInfo {
    pub mode: AuthMode,
    /// The principal authenticated at the handshake, if a token was offered there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// How long an unauthenticated connection may stay open in `required` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "proptest::option::of(1..=u64::MAX)")
    )]
    pub timeout_ms: Option<u64>,
    /// The scopes the connection holds as of the welcome (section 6.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// When the handshake's token expires; absent when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Milliseconds from the welcome until the handshake's token expires;
    /// absent when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// How many milliseconds before a token's expiry the `token_expiring`
    /// notice is sent (section 6.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_notice_ms: Option<u64>,
}

/// A message-rate limit: at most `messages` client messages in any `window_ms`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RateLimit {
    #[schemars(range(min = 1))]
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "1..=u32::MAX"))]
    pub messages: u32,
    #[schemars(range(min = 1))]
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "1..=u64::MAX"))]
    pub window_ms: u64,
}

/// The limits the server enforces on this connection.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Limits {
    /// Largest client frame accepted; a larger one closes the connection with 1009.
    #[schemars(range(min = 1))]
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "1..=u64::MAX"))]
    pub max_message_bytes: u64,
    /// Deepest nesting of arrays and objects accepted in a client message.
    #[schemars(range(min = 1))]
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "1..=u32::MAX"))]
    pub max_nesting_depth: u32,
    /// Most live subscriptions (watch and topic) on one connection.
    #[schemars(range(min = 1))]
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "1..=u32::MAX"))]
    pub max_subscriptions: u32,
    /// Client message rate; absent when the server applies none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateLimit>,
    /// Server messages that may wait for this connection before it is a slow consumer.
    #[schemars(range(min = 1))]
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "1..=u32::MAX"))]
    pub outbound_queue: u32,
    /// Bytes of server messages that may wait for this connection before it is a slow
    /// consumer. Optional because it was added within version 1 (section 22).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "proptest::option::of(1..=u64::MAX)")
    )]
    pub outbound_queue_bytes: Option<u64>,
    /// The largest filter accepted; a larger one is refused with `invalid_message`.
    /// Optional because it was added within version 1 (section 22).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<FilterLimits>,
    /// Connection attempts accepted from one client address per window; absent when the
    /// server applies none (section 13.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_rate: Option<ConnectRate>,
    /// Posts accepted in one room per window, from all its members together; absent when
    /// the server applies none (section 13.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_post_rate: Option<RateLimit>,
}

/// A limit on connection attempts: at most `attempts` handshakes from one client address
/// in any `window_ms`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectRate {
    pub attempts: u32,
    pub window_ms: u64,
}

/// Bounds on the size of one filter (or one pipeline stage).
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FilterLimits {
    /// Field conditions and operators in the whole filter.
    #[schemars(range(min = 1))]
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "1..=u32::MAX"))]
    pub max_conditions: u32,
    /// Elements of one `$and` or `$or`.
    #[schemars(range(min = 1))]
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "1..=u32::MAX"))]
    pub max_branches: u32,
    /// Elements of one `$in` or `$nin`.
    #[schemars(range(min = 1))]
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "1..=u32::MAX"))]
    pub max_in_values: u32,
    /// Characters of one `$like` or `$ilike` pattern.
    #[schemars(range(min = 1))]
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "1..=u32::MAX"))]
    pub max_pattern_chars: u32,
}

/// A sort key for `read`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SortKey {
    /// A dotted field path.
    pub field: String,
    #[serde(default, deserialize_with = "crate::lenient::null_as_default")]
    pub order: SortOrder,
}

#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    #[default]
    Asc,
    Desc,
}

/// A collection, named by database and collection.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Namespace {
    pub database: CollectionName,
    pub collection: CollectionName,
}

#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationType {
    Insert,
    Update,
    Delete,
}

/// Identifies the changed record.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DocumentKey {
    #[serde(rename = "_id")]
    pub id: String,
}

/// What an update changed: top-level or dotted fields set to new values, and fields removed.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct UpdateDescription {
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::object()")
    )]
    pub updated_fields: Object,
    pub removed_fields: Vec<String>,
}

/// One committed change to a record. Watch filters are evaluated against this object
/// exactly as it appears on the wire.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChangeEvent {
    pub operation_type: OperationType,
    pub ns: Namespace,
    pub document_key: DocumentKey,
    /// The record after the change: always on insert, on update when the watch asked
    /// for `full_document`, never on delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "proptest::option::of(crate::arbitrary::object())")
    )]
    pub full_document: Option<Object>,
    /// Present on update events only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_description: Option<UpdateDescription>,
    pub committed_at: Timestamp,
    /// Resuming after this token replays every later change.
    pub resume_token: ResumeToken,
    /// The record before the change, in the events of a `view` watch: on every `leave`
    /// event, and (at the server's choice) on the other update events of the view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "proptest::option::of(crate::arbitrary::object())")
    )]
    pub full_document_before_change: Option<Object>,
    /// How the change moves the record relative to a `view` watch's filter; present on
    /// the events of `view` watches only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<ViewTransition>,
    /// Who made the change, so that a writer recognises its own writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// The change's position in the journal; names the same point as `resume_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}

/// The write behind a push: the connection that sent it and its idempotency key.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Origin {
    /// The `welcome.connection_id` of the writing connection.
    pub connection_id: String,
    /// The write's `idempotency_key`; absent when it carried none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
}

/// A client-chosen key that makes a write safe to retry (section 7.5): 1 to 128
/// characters, unique among the writes of one principal within the announced window.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct IdempotencyKey(
    #[schemars(length(min = 1, max = 128))]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "\"[a-z0-9-]{1,32}\"")
    )]
    pub String,
);

impl<'de> Deserialize<'de> for IdempotencyKey {
    /// Refuses a key outside the schema's bounds, so that the decoder and the schema agree.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let key = String::deserialize(deserializer)?;
        let chars = key.chars().count();
        if (1..=128).contains(&chars) {
            Ok(IdempotencyKey(key))
        } else {
            Err(serde::de::Error::invalid_length(
                chars,
                &"1 to 128 characters",
            ))
        }
    }
}

/// How a change moves a record relative to the records a `view` watch selects.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ViewTransition {
    /// The record was not selected before the change and is after it.
    Enter,
    /// The record was selected before the change and still is.
    Stay,
    /// The record was selected before the change and is not after it (or is deleted).
    Leave,
}

/// A subscription's last delivered position, for resuming it elsewhere.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubscriptionPosition {
    pub subscription: SubscriptionId,
    pub resume_token: ResumeToken,
}

/// A role in a room.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May post, type and edit documents.
    #[default]
    Participant,
    /// May read messages, history and documents, but not post, type or edit.
    Observer,
}

/// One connection's membership of a room.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Member {
    pub connection_id: String,
    pub principal: String,
    pub role: Role,
    /// The name to show for the member: from its `join`, else from its token; absent when
    /// neither gave one (section 11.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<crate::DisplayName>,
    /// The application metadata of the member's `join`; absent when it gave none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<crate::MemberMetadata>,
}

#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresenceAction {
    Joined,
    Left,
}

/// Why a member left a room.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// The member sent `leave`.
    Left,
    /// The member's connection closed.
    Disconnected,
    /// The server ended the membership while the connection stayed open (an
    /// `ended` push told the member why).
    Ended,
}

/// A message posted to a room, as broadcast and as kept in history.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChatMessage {
    /// Server-assigned; increases with every message of the room, so it serves as a history cursor.
    pub message_id: String,
    pub author: Member,
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::json()")
    )]
    pub body: Value,
    pub sent_at: Timestamp,
    /// The message's position in the room's stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// Who posted it, so that a writer recognises its own posts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// One operation of a collaborative edit. Positions and lengths count Unicode scalar values.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum EditOp {
    /// Insert `text` before the character at `position` (`position` = length appends).
    Insert {
        #[schemars(range(max = crate::lenient::MAX_INTEGER))]
        #[serde(deserialize_with = "crate::lenient::integer")]
        #[cfg_attr(
            any(test, feature = "arbitrary"),
            proptest(strategy = "0..=crate::lenient::MAX_INTEGER")
        )]
        position: u64,
        text: String,
    },
    /// Remove `length` characters starting at `position`.
    Delete {
        #[schemars(range(max = crate::lenient::MAX_INTEGER))]
        #[serde(deserialize_with = "crate::lenient::integer")]
        #[cfg_attr(
            any(test, feature = "arbitrary"),
            proptest(strategy = "0..=crate::lenient::MAX_INTEGER")
        )]
        position: u64,
        #[schemars(range(max = crate::lenient::MAX_INTEGER))]
        #[serde(deserialize_with = "crate::lenient::integer")]
        #[cfg_attr(
            any(test, feature = "arbitrary"),
            proptest(strategy = "0..=crate::lenient::MAX_INTEGER")
        )]
        length: u64,
    },
}

/// Counters for the whole server.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ServerStats {
    pub connections: u64,
    pub subscriptions: u64,
    pub rooms: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub uptime_ms: u64,
    /// Connections that received a `welcome` since the server started, open or closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections_total: Option<u64>,
    /// The limits a connection opened now would be given (its `welcome.limits`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// The most connections the server serves at once; absent when it sets no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u64>,
}

/// Counters for the requesting connection.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ConnectionStats {
    pub subscriptions: u64,
    pub rooms: u64,
    pub messages_in: u64,
    pub messages_out: u64,
}

/// Why the server sent a `notice`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeReason {
    /// The outbound queue overflowed; the connection is closed with 4002 next, and
    /// `positions` say where each watch subscription can resume.
    SlowConsumer,
    /// The server is shutting down; the connection is closed with 1001 next.
    ShuttingDown,
    /// The token expires soon; send `auth` with a fresh token to keep the connection.
    TokenExpiring,
}

/// The error object of an `error` message.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::error::details_by_code)]
pub struct ErrorBody {
    /// A code of the registry, or an application's own in the namespace `x-` (section 17.1).
    pub code: crate::AnyErrorCode,
    /// A human-readable explanation. Not for programs to parse.
    pub message: String,
    /// Code-specific fields: `retry_after_ms` (rate_limited), `current_version` (conflict on
    /// an edit), `path` (invalid_message naming a field or filter location), `limit` (limit_exceeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "proptest::option::of(crate::arbitrary::extension_members())")
    )]
    pub details: Option<Object>,
    /// What a client does after this error: `retryable` (the same request may succeed
    /// after a back-off) or `terminal` (not unchanged). The registry's class for its codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(
            strategy = "proptest::option::of(proptest::prop_oneof![proptest::strategy::Just(crate::Recovery::Retryable), proptest::strategy::Just(crate::Recovery::Terminal)])"
        )
    )]
    pub retry: Option<crate::Recovery>,
}

/// How `search` scores a stored vector against the query (section 24).
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Cosine similarity, from -1 to 1; higher is nearer.
    Cosine,
    /// The dot product; higher is nearer.
    Dot,
    /// The Euclidean distance, at least 0; lower is nearer.
    Euclidean,
}

/// One result of a `search`: a record and its score by the request's metric.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScoredRecord {
    /// The record, projected to the request's `fields` when it has them.
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::object()")
    )]
    pub record: Object,
    /// Within the tolerance of section 24 of the exact score; never bit-exact across servers.
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::score()")
    )]
    pub score: f64,
}

/// The database, and possibly the collection, that a connection's endpoint binds
/// (section 2.7): requests on the connection may omit them and may name no others.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BoundScope {
    pub database: CollectionName,
    /// Absent when the endpoint binds only the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<CollectionName>,
}

/// Why the server ended a subscription or room membership the client did not end itself.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Re-authentication gave the connection scopes that no longer allow it.
    ScopesNarrowed,
    /// The connection's token expired; the connection is closed with 4001 next.
    TokenExpired,
    /// The server is shutting down; the connection is closed with 1001 next.
    ShuttingDown,
    /// The outbound queue overflowed; the connection is closed with 4002 next.
    SlowConsumer,
}
