//! The registration of every message of Tidewire v1: one table per direction
//! gathers the message structs (defined per profile in `profiles/`) into a
//! tagged enum, and states each message's `type` tag and profile and each
//! request's success replies. The `type` field on the wire is the enum's tag.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::names::RequestId;
use crate::profiles::*;
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
        Search(Search) = "search" => profile Vector, reply SearchResults,
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
        SearchResults(SearchResults) = "search_results" => profile Vector,
        Ended(Ended) = "ended" => profile Core,
        Part(Part) = "part" => profile Core,
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
            | ServerMessage::DocumentEdit(_)
            | ServerMessage::Ended(_) => None,
            ServerMessage::Part(_) => None,
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
            ServerMessage::SearchResults(m) => Some(&m.id),
        }
    }

    /// Serializes to the text of one frame.
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(self).expect("server messages serialize")
    }
}
