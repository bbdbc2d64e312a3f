//! Every message of Tidewire v1, one struct each, gathered into one tagged
//! enum per direction. The `type` field on the wire is the enum's tag.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use schemars::JsonSchema;

use crate::names::{CollectionName, Name, RequestId};
use crate::types::*;

/// What every message type states about itself: its `type` on the wire and the
/// profile it belongs to. Implemented for each message struct by the tables below.
pub trait Message {
    const TAG: &'static str;
    const PROFILE: Profile;
}

/// Declares a direction's enum from `Variant(Struct) = "tag" => profile P` rows,
/// so that the tag list, the dispatch by tag, the profiles and the schema
/// generation share one table.
macro_rules! message_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $variant:ident($ty:ident) = $tag:literal => profile $profile:ident, )*
        }
    ) => {
        $(#[$meta])*
        #[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub enum $name {
            $( #[serde(rename = $tag)] $variant($ty), )*
        }

        impl $name {
            /// Every `type` of this direction, in declaration order.
            pub const TAGS: &'static [&'static str] = &[$($tag),*];

            /// The `type` of this message on the wire.
            pub fn tag(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => $tag, )*
                }
            }

            /// The profile a server must implement to serve or send this message.
            pub fn profile(&self) -> Profile {
                match self {
                    $( Self::$variant(_) => Profile::$profile, )*
                }
            }

            /// The profile of the message whose `type` is `tag`; `None` when the tag is
            /// not of this direction.
            pub fn profile_of(tag: &str) -> Option<Profile> {
                match tag {
                    $( $tag => Some(Profile::$profile), )*
                    _ => None,
                }
            }

            /// Deserializes the struct named by `tag`, reporting the path of a bad field.
            /// `None` when the tag is not of this direction.
            pub fn from_tagged_value(
                tag: &str,
                value: Value,
            ) -> Option<Result<Self, serde_path_to_error::Error<serde_json::Error>>> {
                match tag {
                    $( $tag => Some(serde_path_to_error::deserialize::<_, $ty>(value).map(Self::$variant)), )*
                    _ => None,
                }
            }

            /// The Rust type name and its `type` tag for each message, for schema generation.
            pub(crate) fn variants() -> Vec<$crate::schema::VariantSchema> {
                vec![$( $crate::schema::VariantSchema::of::<$ty>($tag), )*]
            }
        }

        $(
            impl From<$ty> for $name {
                fn from(message: $ty) -> Self {
                    Self::$variant(message)
                }
            }

            impl Message for $ty {
                const TAG: &'static str = $tag;
                const PROFILE: Profile = Profile::$profile;
            }
        )*
    };
}

/// The client direction: every row is a request and also names its success
/// reply types (any request may instead be answered with `error`).
macro_rules! request_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $variant:ident($ty:ident) = $tag:literal => profile $profile:ident, reply $($reply:ident)|+, )*
        }
    ) => {
        message_enum! {
            $(#[$meta])*
            pub enum $name {
                $( $variant($ty) = $tag => profile $profile, )*
            }
        }

        impl $name {
            /// Each request `type` with the `type`s of its success replies, in declaration order.
            pub const REPLIES: &'static [(&'static str, &'static [&'static str])] =
                &[$( ($tag, &[$(<$reply as Message>::TAG),+]), )*];

            /// The `type`s of the success replies to this request.
            pub fn reply_tags(&self) -> &'static [&'static str] {
                match self {
                    $( Self::$variant(_) => &[$(<$reply as Message>::TAG),+], )*
                }
            }

            /// The request id every client message carries.
            pub fn id(&self) -> &RequestId {
                match self {
                    $( Self::$variant(message) => &message.id, )*
                }
            }
        }

        // A reply must be a server message: this fails to compile otherwise.
        const _: () = {
            $( $( let _: fn($reply) -> ServerMessage = ServerMessage::from; )+ )*
        };
    };
}

request_enum! {
    /// A message a client sends. Every one is a request: it carries a client-chosen `id`
    /// and gets exactly one terminal reply with the same `id`.
    pub enum ClientMessage {
        Ping(Ping) = "ping" => profile Core, reply Pong,
        Auth(Auth) = "auth" => profile Auth, reply Authenticated,
        Create(Create) = "create" => profile Records, reply Created,
        Read(Read) = "read" => profile Records, reply Records,
        Update(Update) = "update" => profile Records, reply Updated,
        Delete(Delete) = "delete" => profile Records, reply Deleted,
        Watch(Watch) = "watch" => profile Watch, reply Watching,
        Subscribe(Subscribe) = "subscribe" => profile Topics, reply Subscribed,
        Unsubscribe(Unsubscribe) = "unsubscribe" => profile Core, reply Unsubscribed,
        Publish(Publish) = "publish" => profile Topics, reply Published,
        Join(Join) = "join" => profile Rooms, reply Joined,
        Leave(Leave) = "leave" => profile Rooms, reply Left,
        Post(Post) = "post" => profile Rooms, reply Posted,
        Typing(Typing) = "typing" => profile Rooms, reply Ack,
        History(History) = "history" => profile Rooms, reply HistoryPage,
        Edit(Edit) = "edit" => profile Collab, reply EditApplied,
        GetDocument(GetDocument) = "get_document" => profile Collab, reply Document,
        GetStats(GetStats) = "get_stats" => profile Stats, reply Stats,
    }
}

message_enum! {
    /// A message a server sends: a reply (carries the request's `id`) or a push (carries none).
    pub enum ServerMessage {
        Welcome(Welcome) = "welcome" => profile Core,
        Pong(Pong) = "pong" => profile Core,
        Heartbeat(Heartbeat) = "heartbeat" => profile Core,
        Error(ErrorMessage) = "error" => profile Core,
        Notice(Notice) = "notice" => profile Core,
        Authenticated(Authenticated) = "authenticated" => profile Auth,
        Created(Created) = "created" => profile Records,
        Records(Records) = "records" => profile Records,
        Updated(Updated) = "updated" => profile Records,
        Deleted(Deleted) = "deleted" => profile Records,
        Watching(Watching) = "watching" => profile Watch,
        Change(Change) = "change" => profile Watch,
        Subscribed(Subscribed) = "subscribed" => profile Topics,
        Unsubscribed(Unsubscribed) = "unsubscribed" => profile Core,
        Published(Published) = "published" => profile Topics,
        Publication(Publication) = "publication" => profile Topics,
        Joined(Joined) = "joined" => profile Rooms,
        Left(Left) = "left" => profile Rooms,
        Presence(Presence) = "presence" => profile Rooms,
        Posted(Posted) = "posted" => profile Rooms,
        RoomMessage(RoomMessage) = "room_message" => profile Rooms,
        TypingNotice(TypingNotice) = "typing" => profile Rooms,
        Ack(Ack) = "ack" => profile Rooms,
        HistoryPage(HistoryPage) = "history_page" => profile Rooms,
        EditApplied(EditApplied) = "edit_applied" => profile Collab,
        DocumentEdit(DocumentEdit) = "document_edit" => profile Collab,
        Document(Document) = "document" => profile Collab,
        Stats(Stats) = "stats" => profile Stats,
    }
}

impl ServerMessage {
    /// The request id for replies; `None` for pushes, and for errors not tied to a request.
    pub fn reply_to(&self) -> Option<&RequestId> {
        match self {
            ServerMessage::Welcome(_)
            | ServerMessage::Heartbeat(_)
            | ServerMessage::Notice(_)
            | ServerMessage::Change(_)
            | ServerMessage::Publication(_)
            | ServerMessage::Presence(_)
            | ServerMessage::RoomMessage(_)
            | ServerMessage::TypingNotice(_)
            | ServerMessage::DocumentEdit(_) => None,
            ServerMessage::Error(m) => m.id.as_ref(),
            ServerMessage::Pong(m) => Some(&m.id),
            ServerMessage::Authenticated(m) => Some(&m.id),
            ServerMessage::Created(m) => Some(&m.id),
            ServerMessage::Records(m) => Some(&m.id),
            ServerMessage::Updated(m) => Some(&m.id),
            ServerMessage::Deleted(m) => Some(&m.id),
            ServerMessage::Watching(m) => Some(&m.id),
            ServerMessage::Subscribed(m) => Some(&m.id),
            ServerMessage::Unsubscribed(m) => Some(&m.id),
            ServerMessage::Published(m) => Some(&m.id),
            ServerMessage::Joined(m) => Some(&m.id),
            ServerMessage::Left(m) => Some(&m.id),
            ServerMessage::Posted(m) => Some(&m.id),
            ServerMessage::Ack(m) => Some(&m.id),
            ServerMessage::HistoryPage(m) => Some(&m.id),
            ServerMessage::EditApplied(m) => Some(&m.id),
            ServerMessage::Document(m) => Some(&m.id),
            ServerMessage::Stats(m) => Some(&m.id),
        }
    }

    /// Serializes to the text of one frame.
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(self).expect("server messages serialize")
    }
}

// ---------------------------------------------------------------------------
// Client to server
// ---------------------------------------------------------------------------

/// Asks for a `pong` with the same `id` and `payload` (profile core).
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ping {
    pub id: RequestId,
    /// Any JSON value; echoed unchanged in the `pong`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "proptest::option::of(crate::arbitrary::json_not_null())")
    )]
    pub payload: Option<Value>,
}

/// Authenticates the connection, or refreshes its token without dropping
/// subscriptions (profile auth). Replied to with `authenticated`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Auth {
    pub id: RequestId,
    /// A static token or an HS256 JWT.
    pub token: String,
}

/// Inserts a record (profile records). Replied to with `created`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Create {
    pub id: RequestId,
    pub database: CollectionName,
    pub collection: CollectionName,
    /// The record. A string `_id` names it; without one the server assigns an id.
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::object()")
    )]
    pub record: Object,
}

/// Reads one record by id, or records by query (profile records). Replied to with `records`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Read {
    pub id: RequestId,
    pub database: CollectionName,
    pub collection: CollectionName,
    /// Read exactly this record; `not_found` when it does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Sort keys, most significant first; ties keep `_id` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sort: Vec<SortKey>,
    /// At most this many records (default 100; larger values are treated as 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Skip this many matching records first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
    /// Project each record to these dotted field paths; `_id` is always kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
}

/// Changes fields of a record (profile records). Replied to with `updated`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Update {
    pub id: RequestId,
    pub database: CollectionName,
    pub collection: CollectionName,
    pub record_id: String,
    /// Fields to set, by dotted path.
    #[serde(default, skip_serializing_if = "Object::is_empty")]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::object()")
    )]
    pub set: Object,
    /// Fields to remove, by dotted path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<String>,
}

/// Removes a record (profile records). Replied to with `deleted`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Delete {
    pub id: RequestId,
    pub database: CollectionName,
    pub collection: CollectionName,
    pub record_id: String,
}

/// Subscribes to changes of every collection, one database, or one collection
/// (profiles watch and resume). Replied to with `watching`; `change` pushes follow.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Watch {
    pub id: RequestId,
    /// Absent: every database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<CollectionName>,
    /// Absent: every collection of `database`. Requires `database`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<CollectionName>,
    /// Evaluated against each change event as it appears on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// `$match` stages, all of which an event must pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(
            strategy = "proptest::option::of(proptest::collection::vec(crate::arbitrary::object(), 0..3))"
        )
    )]
    pub pipeline: Option<Vec<Object>>,
    /// Include the record after the change in update events.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full_document: bool,
    /// Replay every matching change after this position, then continue live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_after: Option<ResumeToken>,
}

/// Subscribes to a topic (profile topics). Replied to with `subscribed`; `publication` pushes follow.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Subscribe {
    pub id: RequestId,
    pub topic: Name,
    /// Evaluated against each publication's `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
}

/// Ends a watch or topic subscription (profile core). Replied to with `unsubscribed`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Unsubscribe {
    pub id: RequestId,
    pub subscription: SubscriptionId,
}

/// Publishes data to a topic (profile topics). Replied to with `published`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Publish {
    pub id: RequestId,
    pub topic: Name,
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::json()")
    )]
    pub data: Value,
}

/// Joins a room (profile rooms). Replied to with `joined`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Join {
    pub id: RequestId,
    pub room: Name,
    #[serde(default)]
    pub role: Role,
}

/// Leaves a room (profile rooms). Replied to with `left`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Leave {
    pub id: RequestId,
    pub room: Name,
}

/// Posts a message to a room the connection has joined (profile rooms). Replied to with `posted`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Post {
    pub id: RequestId,
    pub room: Name,
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::json()")
    )]
    pub body: Value,
}

/// Shows or clears this member's typing indicator (profile rooms). Replied to with `ack`.
/// Typing is ephemeral: it is not kept in history.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Typing {
    pub id: RequestId,
    pub room: Name,
    pub active: bool,
}

/// Pages back through a room's history (profile rooms). Replied to with `history_page`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct History {
    pub id: RequestId,
    pub room: Name,
    /// At most this many messages (default 50; larger values are treated as 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only messages older than this `message_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
}

/// Applies operations to a room's shared document at a known version (profile collab).
/// Replied to with `edit_applied`, or `conflict` when `version` is stale.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Edit {
    pub id: RequestId,
    pub room: Name,
    pub document: Name,
    /// The version the operations were made against.
    pub version: u64,
    pub ops: Vec<EditOp>,
}

/// Reads a room's shared document (profile collab). Replied to with `document`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GetDocument {
    pub id: RequestId,
    pub room: Name,
    pub document: Name,
}

/// Asks for server and connection counters (profile stats). Replied to with `stats`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GetStats {
    pub id: RequestId,
}

// ---------------------------------------------------------------------------
// Server to client
// ---------------------------------------------------------------------------

/// The first message on every connection: who the server is and what it offers.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Welcome {
    pub connection_id: String,
    /// Always `tidewire.v1` for this version.
    pub protocol: String,
    pub server: ServerInfo,
    pub profiles: Vec<Profile>,
    /// A `heartbeat` is sent after this many milliseconds without other server messages.
    pub heartbeat_ms: u64,
    pub limits: Limits,
    pub auth: AuthInfo,
}

/// The reply to `ping`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Pong {
    pub id: RequestId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "proptest::option::of(crate::arbitrary::json_not_null())")
    )]
    pub payload: Option<Value>,
}

/// Keeps idle connections alive and shows the server is live.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Heartbeat {
    pub at: Timestamp,
}

/// The failure reply to a request, or a report of a frame that could not be tied to one.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorMessage {
    /// The failed request's id; absent when the frame carried no usable id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    pub error: ErrorBody,
}

/// Something the client should know before the server acts on it.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Notice {
    pub reason: NoticeReason,
    pub message: String,
    /// For `slow_consumer`: where each watch subscription can resume.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub positions: Vec<SubscriptionPosition>,
}

/// The reply to a successful `auth`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Authenticated {
    pub id: RequestId,
    pub principal: String,
    pub scopes: Vec<String>,
    /// When the token expires, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// The reply to `create`: the stored record, with its `_id`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Created {
    pub id: RequestId,
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::object()")
    )]
    pub record: Object,
}

/// The reply to `read`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Records {
    pub id: RequestId,
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "proptest::collection::vec(crate::arbitrary::object(), 0..3)")
    )]
    pub records: Vec<Object>,
    /// How many records matched before `offset` and `limit`.
    pub total: u64,
    /// How many records this reply carries.
    pub count: u64,
}

/// The reply to `update`: the record after the change.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Updated {
    pub id: RequestId,
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::object()")
    )]
    pub record: Object,
}

/// The reply to `delete`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Deleted {
    pub id: RequestId,
    pub record_id: String,
}

/// The reply to `watch`. A barrier: every matching change committed after it is delivered.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Watching {
    pub id: RequestId,
    pub subscription: SubscriptionId,
    /// The journal position at the barrier; resuming from it misses nothing.
    pub resume_token: ResumeToken,
    /// True when `resume_after` was given and every change after it will be replayed
    /// without a gap. A token that cannot be honoured is a `history_lost` error instead.
    pub resumed: bool,
}

/// A change matching a watch subscription.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    pub subscription: SubscriptionId,
    pub event: ChangeEvent,
}

/// The reply to `subscribe`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Subscribed {
    pub id: RequestId,
    pub subscription: SubscriptionId,
}

/// The reply to `unsubscribe`. No push for the subscription follows it.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Unsubscribed {
    pub id: RequestId,
    pub subscription: SubscriptionId,
}

/// The reply to `publish`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Published {
    pub id: RequestId,
    pub topic: Name,
    pub message_id: String,
    pub published_at: Timestamp,
}

/// Data published to a topic, sent to each subscription whose filter matches it.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Publication {
    pub subscription: SubscriptionId,
    pub topic: Name,
    pub message_id: String,
    pub publisher: String,
    pub published_at: Timestamp,
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::json()")
    )]
    pub data: Value,
}

/// The reply to `join`: the membership, with every member including this one.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Joined {
    pub id: RequestId,
    pub room: Name,
    pub role: Role,
    pub members: Vec<Member>,
}

/// The reply to `leave`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Left {
    pub id: RequestId,
    pub room: Name,
}

/// A member joined or left a room; sent to the other members.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Presence {
    pub room: Name,
    pub action: PresenceAction,
    pub member: Member,
    /// On `left`: whether the member left or its connection dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<LeaveReason>,
}

/// The reply to `post`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Posted {
    pub id: RequestId,
    pub room: Name,
    pub message_id: String,
    pub sent_at: Timestamp,
}

/// A message posted to a room; sent to every member, the author included.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoomMessage {
    pub room: Name,
    pub message: ChatMessage,
}

/// A member's typing indicator changed; sent to the other members.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TypingNotice {
    pub room: Name,
    pub member: Member,
    pub active: bool,
}

/// The reply to a request that has nothing to return (`typing`).
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ack {
    pub id: RequestId,
}

/// The reply to `history`: messages oldest first.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HistoryPage {
    pub id: RequestId,
    pub room: Name,
    pub messages: Vec<ChatMessage>,
    /// True when older messages exist; page on with `before` set to the first `message_id`.
    pub has_more: bool,
}

/// The reply to an accepted `edit`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EditApplied {
    pub id: RequestId,
    pub room: Name,
    pub document: Name,
    /// The document's version after the edit.
    pub version: u64,
}

/// An accepted edit; sent to the other members of the room.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DocumentEdit {
    pub room: Name,
    pub document: Name,
    /// The document's version after the edit.
    pub version: u64,
    pub author: Member,
    pub ops: Vec<EditOp>,
}

/// The reply to `get_document`. A document never edited has version 0 and empty content.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Document {
    pub id: RequestId,
    pub room: Name,
    pub document: Name,
    pub version: u64,
    pub content: String,
}

/// The reply to `get_stats`.
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Stats {
    pub id: RequestId,
    pub server: ServerStats,
    pub connection: ConnectionStats,
}
