//! Rooms: membership and presence, chat with bounded history, typing, and
//! per-room collaborative documents.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tidewire_protocol::{
    ChatMessage, DisplayName, DocumentEdit, EditOp, ErrorBody, ErrorCode, LeaveReason, Member,
    MemberMetadata, Name, Presence, PresenceAction, RateLimit, Role, RoomMessage, ServerMessage,
    Timestamp, TypingNotice,
};

use crate::auth::Action;
use crate::fanout::shared_frame;
use crate::outbound::{Conn, Outbound};
use crate::persist::{Disk, StorageError};
use crate::quota::{retry_after_ms, SlidingWindow};
use crate::util::{error, error_with, invalid_at, now_timestamp};
use crate::variant::Choices;

struct RoomMember {
    conn: Arc<Conn>,
    member: Member,
}

#[derive(Default)]
struct Document {
    version: u64,
    content: String,
}

#[derive(Default)]
struct Room {
    members: Vec<RoomMember>,
    history: VecDeque<ChatMessage>,
    posted: u64,
    documents: HashMap<String, Document>,
    /// Recent accepted posts, for the room post rate (section 13.7).
    recent_posts: SlidingWindow,
}

impl Room {
    fn member(&self, conn: u64) -> Option<&RoomMember> {
        self.members.iter().find(|m| m.conn.num == conn)
    }

    /// Sends one serialization of `message` to every member except `except`
    /// whose connection may still see the room.
    fn broadcast(&self, room: &str, message: &ServerMessage, except: Option<u64>) {
        let frame = shared_frame(message);
        for member in &self.members {
            if Some(member.conn.num) == except {
                continue;
            }
            if !member
                .conn
                .identity
                .read()
                .scopes
                .allows(Action::Join, room)
            {
                continue;
            }
            member.conn.push(Outbound::shared(&frame));
        }
    }
}

/// How a member is shown besides its principal (section 11.7).
pub(crate) struct ShownAs {
    pub display_name: Option<DisplayName>,
    pub metadata: Option<MemberMetadata>,
}

pub(crate) struct Rooms {
    rooms: HashMap<String, Room>,
    history_bound: usize,
    /// The data directory for history; `None` keeps it in memory only.
    disk: Option<Arc<Disk>>,
    choices: Arc<dyn Choices>,
    /// Posts accepted per room per window; `None`: no limit.
    post_rate: Option<RateLimit>,
}

fn not_a_member(room: &str) -> ErrorBody {
    error(
        ErrorCode::Forbidden,
        format!("not a member of room {room:?}"),
    )
}

/// TW-QUOTA-4: `rate_limited` naming the room post rate and when to post again.
fn room_post_rate_limited(rate: RateLimit, wait: Duration) -> ErrorBody {
    let mut details = tidewire_protocol::Object::new();
    details.insert("limit".into(), "room_post_rate".into());
    details.insert("retry_after_ms".into(), retry_after_ms(wait).into());
    ErrorBody {
        code: ErrorCode::RateLimited.into(),
        message: format!(
            "the room accepts at most {} posts in {} ms",
            rate.messages, rate.window_ms
        ),
        details: Some(details),
        retry: Some(ErrorCode::RateLimited.recovery()),
    }
}

fn observer(room: &str) -> ErrorBody {
    error(
        ErrorCode::Forbidden,
        format!("observers of room {room:?} may not do that"),
    )
}

impl Rooms {
    pub fn new(history_bound: usize, choices: Arc<dyn Choices>) -> Rooms {
        Rooms {
            rooms: HashMap::new(),
            history_bound,
            disk: None,
            choices,
            post_rate: None,
        }
    }

    /// Limits the posts every room accepts per window (section 13.7).
    pub fn with_post_rate(mut self, rate: Option<RateLimit>) -> Rooms {
        self.post_rate = rate;
        self
    }

    /// Restores each room's history and message count from a data directory
    /// (trimmed to the current bound); later posts go to `disk`.
    pub fn recover(
        mut self,
        disk: Arc<Disk>,
        rooms: impl IntoIterator<Item = (String, (u64, Vec<ChatMessage>))>,
    ) -> Result<Rooms, StorageError> {
        for (name, (posted, history)) in rooms {
            let over = history.len().saturating_sub(self.history_bound);
            let dropped: Vec<&str> = history[..over]
                .iter()
                .map(|m| m.message_id.as_str())
                .collect();
            disk.drop_room_messages(&name, &dropped)?;
            let room = Room {
                history: history[over..].iter().cloned().collect(),
                posted,
                ..Room::default()
            };
            self.rooms.insert(name, room);
        }
        self.disk = Some(disk);
        Ok(self)
    }

    /// Rooms with at least one member.
    pub fn active(&self) -> usize {
        self.rooms
            .values()
            .filter(|r| !r.members.is_empty())
            .count()
    }

    fn participant(&self, room: &str, conn: u64) -> Result<(&Room, Member), ErrorBody> {
        let state = self.rooms.get(room).ok_or_else(|| not_a_member(room))?;
        let member = state.member(conn).ok_or_else(|| not_a_member(room))?;
        if member.member.role != Role::Participant {
            return Err(observer(room));
        }
        Ok((state, member.member.clone()))
    }

    /// Returns the member list including the joiner. Joining again updates the
    /// role, display name and metadata, without a presence (TW-ROOM-5).
    pub fn join(
        &mut self,
        room: &Name,
        conn: &Arc<Conn>,
        principal: &str,
        role: Role,
        shown_as: ShownAs,
    ) -> Vec<Member> {
        let state = self.rooms.entry(room.to_string()).or_default();
        if let Some(existing) = state.members.iter_mut().find(|m| m.conn.num == conn.num) {
            existing.member.role = role;
            existing.member.display_name = shown_as.display_name;
            existing.member.metadata = shown_as.metadata;
        } else {
            let member = Member {
                connection_id: conn.id.clone(),
                principal: principal.to_string(),
                role,
                display_name: shown_as.display_name,
                metadata: shown_as.metadata,
            };
            state.members.push(RoomMember {
                conn: conn.clone(),
                member: member.clone(),
            });
            let presence = ServerMessage::Presence(Presence {
                room: room.clone(),
                action: PresenceAction::Joined,
                member,
                reason: None,
                server_time: None,
            });
            state.broadcast(room, &presence, Some(conn.num));
        }
        state.members.iter().map(|m| m.member.clone()).collect()
    }

    pub fn leave(&mut self, room: &Name, conn: u64, reason: LeaveReason) -> bool {
        let Some(state) = self.rooms.get_mut(room.as_str()) else {
            return false;
        };
        let Some(index) = state.members.iter().position(|m| m.conn.num == conn) else {
            return false;
        };
        let gone = state.members.remove(index);
        let presence = ServerMessage::Presence(Presence {
            room: room.clone(),
            action: PresenceAction::Left,
            member: gone.member,
            reason: Some(reason),
            server_time: None,
        });
        state.broadcast(room, &presence, None);
        true
    }

    /// Appends to history and sends `room_message` to every member, the author
    /// included. `reply` runs first so the author sees `posted` before the push.
    pub fn post(
        &mut self,
        room: &Name,
        conn: u64,
        body: &Value,
        reply: impl FnOnce(&str, &Timestamp),
    ) -> Result<(), ErrorBody> {
        let (_, author) = self.participant(room, conn)?;
        let state = self
            .rooms
            .get_mut(room.as_str())
            .expect("checked by participant");
        if let Some(rate) = self.post_rate {
            let window = Duration::from_millis(rate.window_ms);
            let admitted = state
                .recent_posts
                .admit(rate.messages as usize, window, Instant::now());
            if let Err(wait) = admitted {
                return Err(room_post_rate_limited(rate, wait));
            }
        }
        let posted = state.posted + 1;
        let message = ChatMessage {
            message_id: self.choices.room_message_id(posted),
            author,
            body: body.clone(),
            sent_at: now_timestamp(),
        };
        // Durable before the reply and the broadcast, like record writes.
        if let Some(disk) = &self.disk {
            let over = (state.history.len() + 1).saturating_sub(self.history_bound);
            let mut dropped: Vec<&str> = state
                .history
                .iter()
                .take(over)
                .map(|m| m.message_id.as_str())
                .collect();
            if over > state.history.len() {
                dropped.push(&message.message_id);
            }
            disk.post(room, posted, &message, &dropped).map_err(|err| {
                tracing::error!(%err, "a room message could not be made durable");
                error(ErrorCode::Internal, "the message could not be made durable")
            })?;
        }
        state.posted = posted;
        reply(&message.message_id, &message.sent_at);
        state.history.push_back(message.clone());
        while state.history.len() > self.history_bound {
            state.history.pop_front();
        }
        let push = ServerMessage::RoomMessage(RoomMessage {
            room: room.clone(),
            message,
            server_time: None,
        });
        state.broadcast(room, &push, None);
        Ok(())
    }

    pub fn typing(&self, room: &Name, conn: u64, active: bool) -> Result<(), ErrorBody> {
        let (state, member) = self.participant(room, conn)?;
        let push = ServerMessage::TypingNotice(TypingNotice {
            room: room.clone(),
            member,
            active,
            server_time: None,
        });
        state.broadcast(room, &push, Some(conn));
        Ok(())
    }

    /// The `limit` most recent messages older than `before`, oldest first, and
    /// whether older ones remain.
    pub fn history(
        &self,
        room: &str,
        conn: u64,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<ChatMessage>, bool), ErrorBody> {
        let state = self.rooms.get(room).ok_or_else(|| not_a_member(room))?;
        state.member(conn).ok_or_else(|| not_a_member(room))?;
        // Message ids are zero-padded sequence numbers, so string order is
        // message order, and an unknown `before` still works as a cursor.
        let older: Vec<&ChatMessage> = state
            .history
            .iter()
            .filter(|m| before.is_none_or(|b| m.message_id.as_str() < b))
            .collect();
        let start = older.len().saturating_sub(limit);
        let page = older[start..].iter().map(|m| (*m).clone()).collect();
        Ok((page, start > 0))
    }

    /// Applies `ops` when `version` is current; returns the new version.
    pub fn edit(
        &mut self,
        room: &Name,
        conn: u64,
        document: &Name,
        version: u64,
        ops: &[EditOp],
    ) -> Result<u64, ErrorBody> {
        let (_, author) = self.participant(room, conn)?;
        let state = self
            .rooms
            .get_mut(room.as_str())
            .expect("checked by participant");
        if let Some(rate) = self.post_rate {
            let window = Duration::from_millis(rate.window_ms);
            let admitted = state
                .recent_posts
                .admit(rate.messages as usize, window, Instant::now());
            if let Err(wait) = admitted {
                return Err(room_post_rate_limited(rate, wait));
            }
        }
        let doc = state.documents.entry(document.to_string()).or_default();
        if version != doc.version {
            return Err(error_with(
                ErrorCode::Conflict,
                format!(
                    "document {document:?} is at version {}, not {version}",
                    doc.version
                ),
                "current_version",
                doc.version,
            ));
        }
        let mut chars: Vec<char> = doc.content.chars().collect();
        for (index, op) in ops.iter().enumerate() {
            let len = chars.len() as u64;
            match op {
                EditOp::Insert { position, text } => {
                    if *position > len {
                        return Err(invalid_at(
                            format!("ops[{index}].position"),
                            format!("insert at {position} is past the end ({len})"),
                        ));
                    }
                    let at = *position as usize;
                    chars.splice(at..at, text.chars());
                }
                EditOp::Delete { position, length } => {
                    let end = position.checked_add(*length).filter(|end| *end <= len);
                    let Some(end) = end else {
                        return Err(invalid_at(
                            format!("ops[{index}]"),
                            format!("delete of {length} at {position} is past the end ({len})"),
                        ));
                    };
                    chars.drain(*position as usize..end as usize);
                }
            }
        }
        doc.content = chars.into_iter().collect();
        doc.version += 1;
        let version = doc.version;
        let push = ServerMessage::DocumentEdit(DocumentEdit {
            room: room.clone(),
            document: document.clone(),
            version,
            author,
            ops: ops.to_vec(),
            server_time: None,
        });
        state.broadcast(room, &push, Some(conn));
        Ok(version)
    }

    pub fn document(
        &self,
        room: &str,
        conn: u64,
        document: &str,
    ) -> Result<(u64, String), ErrorBody> {
        let state = self.rooms.get(room).ok_or_else(|| not_a_member(room))?;
        state.member(conn).ok_or_else(|| not_a_member(room))?;
        Ok(state
            .documents
            .get(document)
            .map_or((0, String::new()), |d| (d.version, d.content.clone())))
    }
}
