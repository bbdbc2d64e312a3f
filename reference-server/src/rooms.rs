//! Rooms: membership and presence, chat with bounded history, typing, and
//! per-room collaborative documents.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tidewire_protocol::{
    ChatMessage, DisplayName, DocumentEdit, EditOp, ErrorBody, ErrorCode, LeaveReason, Member,
    MemberMetadata, Name, Position, Presence, PresenceAction, RateLimit, Role, RoomMessage,
    ServerMessage, Timestamp, TypingNotice,
};

use crate::auth::Action;
use crate::fanout::shared_frame;
use crate::idempotency::{Kept, Keys, Remember};
use crate::outbound::{Conn, Outbound};
use crate::persist::{Disk, StorageError};
use crate::quota::{retry_after_ms, SlidingWindow};
use crate::store::{now_ms, WriteMeta};
use crate::util::{error, error_with, invalid_at, now_timestamp};
use crate::variant::{Choices, StreamKind};

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
    /// Counts a post or an edit against the room post rate, or refuses it.
    fn admit_post(&mut self, rate: Option<RateLimit>) -> Result<(), ErrorBody> {
        let Some(rate) = rate else {
            return Ok(());
        };
        let window = Duration::from_millis(rate.window_ms);
        self.recent_posts
            .admit(rate.messages as usize, window, Instant::now())
            .map_err(|wait| room_post_rate_limited(rate, wait))
    }
}

/// What a `history` request bounds its page by (section 11.6).
#[derive(Debug, Default)]
pub(crate) struct HistoryBounds<'a> {
    pub limit: usize,
    pub before: Option<&'a str>,
    pub before_position: Option<&'a Position>,
    pub after_position: Option<&'a Position>,
    pub since: Option<&'a Timestamp>,
    pub until: Option<&'a Timestamp>,
}

/// Switches of the named faults this module honours.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RoomFaults {
    pub replay_from_position: bool,
    pub accepts_any_position: bool,
    pub history_after_inclusive: bool,
    pub document_position_behind: bool,
    pub forward_history_never_has_more: bool,
    pub accept_reused_keys: bool,
}

impl Room {
    fn member(&self, conn: u64) -> Option<&RoomMember> {
        self.members.iter().find(|m| m.conn.num == conn)
    }

    /// The entry number of the oldest kept message (`posted + 1` when none is).
    fn first_kept(&self) -> u64 {
        self.posted + 1 - self.history.len() as u64
    }

    /// Sends one serialization of `message` to every member except `except`
    /// whose connection may still see the room.
    fn broadcast(&self, room: &str, message: &ServerMessage, except: Option<u64>) {
        let frame = shared_frame(message);
        for member in &self.members {
            if Some(member.conn.num) == except {
                continue;
            }
            if !member.conn.identity().scopes.allows(Action::Join, room) {
                continue;
            }
            member.conn.push(Outbound::shared(&frame));
        }
    }
}

/// How a member is shown besides its principal: its role, and the display name and
/// metadata of section 11.7.
pub(crate) struct ShownAs {
    pub role: Role,
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
    /// The epoch of room streams: the journal's, kept with the history.
    epoch: String,
    /// The epoch of documents, which are kept in memory only: the run's.
    document_epoch: String,
    faults: RoomFaults,
    /// The idempotency keys of recent posts, kept with the history.
    post_keys: Keys,
    /// The idempotency keys of recent edits. Documents are kept in memory
    /// only, and so are their keys.
    edit_keys: Keys,
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
            epoch: choices.position_epoch(StreamKind::Room, "-"),
            document_epoch: choices.position_epoch(StreamKind::Document, "-"),
            choices,
            post_rate: None,
            faults: RoomFaults::default(),
            post_keys: Keys::new(Duration::ZERO),
            edit_keys: Keys::new(Duration::ZERO),
        }
    }

    /// How long the keys of posts and edits are remembered.
    pub fn with_idempotency_window(mut self, window: Duration) -> Rooms {
        self.post_keys = Keys::new(window);
        self.edit_keys = Keys::new(window);
        self
    }

    /// The reply to repeat for a write whose key `keys` remember; `None` when
    /// the write is new, or repeats a key of another request under the
    /// `accept-reused-keys` fault.
    fn recall(
        keys: &Keys,
        meta: &WriteMeta,
        accept_reused_keys: bool,
    ) -> Result<Option<ServerMessage>, ErrorBody> {
        let Some((write, id)) = &meta.remember else {
            return Ok(None);
        };
        match keys.recall(write, id, now_ms()) {
            Err(reused) if reused.code == ErrorCode::Conflict && accept_reused_keys => Ok(None),
            other => other,
        }
    }

    /// Names the epochs: `stored` that of the room history (which lives as
    /// long as the journal), `run` that of this run (documents).
    pub fn with_epochs(mut self, stored: &str, run: &str, faults: RoomFaults) -> Rooms {
        self.epoch = self.choices.position_epoch(StreamKind::Room, stored);
        self.document_epoch = self.choices.position_epoch(StreamKind::Document, run);
        self.faults = faults;
        self
    }

    fn position(&self, n: u64) -> Position {
        Position {
            epoch: self.epoch.clone(),
            seq: self.choices.position_seq(n),
        }
    }

    fn document_position(&self, version: u64) -> Position {
        Position {
            epoch: self.document_epoch.clone(),
            seq: self.choices.position_seq(version),
        }
    }

    /// The entry count a client's room position stands for, if it is of this
    /// epoch and not beyond the room's head (TW-RECOVER-6, TW-RECOVER-9).
    fn entries_through(&self, room: Option<&Room>, position: &Position) -> Result<u64, ErrorBody> {
        if self.faults.accepts_any_position {
            return Ok(self.choices.entries_through(position.seq));
        }
        let lost = |why: &str| error(ErrorCode::HistoryLost, why.to_string());
        if position.epoch != self.epoch {
            return Err(lost("the position is from another epoch of the room"));
        }
        let head = room.map_or(0, |r| r.posted);
        if position.seq > self.choices.position_seq(head) {
            return Err(lost("the position is ahead of the room"));
        }
        Ok(self.choices.entries_through(position.seq))
    }

    /// As `entries_through`, and every message after the position is kept.
    fn start(&self, room: Option<&Room>, position: &Position) -> Result<u64, ErrorBody> {
        let after = self.entries_through(room, position)?;
        let first_kept = room.map_or(1, Room::first_kept);
        if after + 1 < first_kept && !self.faults.accepts_any_position {
            return Err(error(
                ErrorCode::HistoryLost,
                "the messages after the position are no longer kept",
            ));
        }
        Ok(after)
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
        post_keys: Vec<(Remember, Kept)>,
    ) -> Result<Rooms, StorageError> {
        for (write, kept) in post_keys {
            self.post_keys.insert(&write, kept);
        }
        disk.forget_post_keys(&self.post_keys.expire(now_ms()))?;
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

    /// Calls `reply` with the member list including the joiner and the room's
    /// position, then queues the kept messages after `start_after`, all under
    /// the rooms lock, so no message falls between the barrier and the replay.
    /// Joining again updates the role, display name and metadata, without a
    /// presence (TW-ROOM-5). A `start_after` that cannot be honoured leaves
    /// everything as it was.
    pub fn join(
        &mut self,
        room: &Name,
        conn: &Arc<Conn>,
        principal: &str,
        shown_as: ShownAs,
        start_after: Option<&Position>,
        reply: impl FnOnce(Vec<Member>, Position),
    ) -> Result<(), ErrorBody> {
        let after = start_after
            .map(|p| self.start(self.rooms.get(room.as_str()), p))
            .transpose()?;
        let first_replayed = match after {
            Some(after) if self.faults.replay_from_position => Some(after),
            Some(after) => Some(after + 1),
            None => None,
        };
        let head = self.rooms.get(room.as_str()).map_or(0, |r| r.posted);
        let position = self.position(head);
        let state = self.rooms.entry(room.to_string()).or_default();
        if let Some(existing) = state.members.iter_mut().find(|m| m.conn.num == conn.num) {
            existing.member.role = shown_as.role;
            existing.member.display_name = shown_as.display_name;
            existing.member.metadata = shown_as.metadata;
        } else {
            let member = Member {
                connection_id: conn.id.clone(),
                principal: principal.to_string(),
                role: shown_as.role,
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
        reply(
            state.members.iter().map(|m| m.member.clone()).collect(),
            position,
        );
        if let Some(first) = first_replayed {
            let first_kept = state.first_kept();
            for (n, message) in (first_kept..).zip(&state.history) {
                if n >= first {
                    let push = ServerMessage::RoomMessage(RoomMessage {
                        room: room.clone(),
                        message: message.clone(),
                        server_time: None,
                    });
                    conn.replay(Outbound::message(&push));
                }
            }
        }
        Ok(())
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
    /// included. The author's reply, built by `reply`, is queued first so the
    /// author sees `posted` before the push. Returns the reply and whether it
    /// was queued: a post that repeats an earlier one by its idempotency key
    /// posts nothing, and its reply, the earlier one's, is not.
    pub fn post(
        &mut self,
        room: &Name,
        conn: u64,
        body: &Value,
        meta: &WriteMeta,
        reply: impl FnOnce(&str, &Timestamp, &Position) -> ServerMessage,
    ) -> Result<(ServerMessage, bool), ErrorBody> {
        let (_, author) = self.participant(room, conn)?;
        // Before the post rate: a repeat posts nothing, so it uses none of it.
        let now = now_ms();
        let forgotten = self.post_keys.expire(now);
        if let Some(repeat) = Self::recall(&self.post_keys, meta, self.faults.accept_reused_keys)? {
            return Ok((repeat, false));
        }
        let posted = self.rooms.get(room.as_str()).map_or(0, |r| r.posted) + 1;
        let position = self.position(posted);
        let state = self
            .rooms
            .get_mut(room.as_str())
            .expect("checked by participant");
        state.admit_post(self.post_rate)?;
        let posted = state.posted + 1;
        // Never before the previous message, whatever the clock does, so
        // that time bounds select a run of positions (section 9.4).
        let mut sent_at = now_timestamp();
        if let Some(last) = state.history.back() {
            if last.sent_at > sent_at {
                sent_at = last.sent_at.clone();
            }
        }
        let message = ChatMessage {
            // The epoch keeps ids of different runs apart (TW-POS-6), and as
            // a common prefix keeps their order within the room.
            message_id: format!("{}.{}", self.epoch, self.choices.room_message_id(posted)),
            author,
            body: body.clone(),
            sent_at,
            position: Some(position),
            origin: meta.origin.clone(),
        };
        let answer = reply(
            &message.message_id,
            &message.sent_at,
            message.position.as_ref().expect("set above"),
        );
        let kept = meta.kept(|_| answer.clone(), now);
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
            disk.post(
                room,
                posted,
                &message,
                &dropped,
                (kept.as_ref(), &forgotten),
            )
            .map_err(|err| {
                tracing::error!(%err, "a room message could not be made durable");
                error(ErrorCode::Internal, "the message could not be made durable")
            })?;
        }
        state.posted = posted;
        if let Some((write, kept)) = kept {
            self.post_keys.insert(&write, kept);
        }
        if let Some(member) = state.member(conn) {
            member.conn.reply(Outbound::message(&answer));
        }
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
        Ok((answer, true))
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

    /// The kept messages within `bounds`, oldest first: the most recent
    /// `limit` of them, or the oldest when paging forward (from a position
    /// or a time); and whether the bounds select more than the page.
    pub fn history(
        &self,
        room: &str,
        conn: u64,
        bounds: &HistoryBounds,
    ) -> Result<(Vec<ChatMessage>, bool), ErrorBody> {
        let state = self.rooms.get(room).ok_or_else(|| not_a_member(room))?;
        state.member(conn).ok_or_else(|| not_a_member(room))?;
        if let Some(before) = bounds.before_position {
            self.entries_through(Some(state), before)?;
        }
        let after_n = bounds
            .after_position
            .map(|p| self.start(Some(state), p))
            .transpose()?
            .map(|after| {
                if self.faults.history_after_inclusive {
                    after.saturating_sub(1)
                } else {
                    after
                }
            });
        let since = bounds.since.map(|t| instant("since", t)).transpose()?;
        let until = bounds.until.map(|t| instant("until", t)).transpose()?;
        // Message ids of one epoch share a prefix and then sort in posting
        // order, so an unknown `before` still works as a cursor.
        let selected: Vec<&ChatMessage> = (state.first_kept()..)
            .zip(&state.history)
            .filter(|(n, m)| {
                bounds.before.is_none_or(|b| m.message_id.as_str() < b)
                    && bounds
                        .before_position
                        .is_none_or(|before| self.choices.position_seq(*n) < before.seq)
                    && after_n.is_none_or(|after| *n > after)
                    && since.is_none_or(|since| sent_micros(m) >= since)
                    && until.is_none_or(|until| sent_micros(m) < until)
            })
            .map(|(_, m)| m)
            .collect();
        let limit = bounds.limit.min(selected.len());
        let forward = bounds.after_position.is_some() || bounds.since.is_some();
        let page: &[&ChatMessage] = if forward {
            &selected[..limit]
        } else {
            &selected[selected.len() - limit..]
        };
        let has_more =
            selected.len() > page.len() && !(forward && self.faults.forward_history_never_has_more);
        Ok((page.iter().map(|m| (*m).clone()).collect(), has_more))
    }

    /// Applies `ops` when `version` is current; returns the reply `reply`
    /// builds from the new version and position. An edit that repeats an
    /// earlier one by its idempotency key applies nothing and gets the earlier
    /// one's reply.
    #[allow(clippy::too_many_arguments)]
    pub fn edit(
        &mut self,
        room: &Name,
        conn: u64,
        document: &Name,
        version: u64,
        ops: &[EditOp],
        meta: &WriteMeta,
        reply: impl FnOnce(u64, Position) -> ServerMessage,
    ) -> Result<ServerMessage, ErrorBody> {
        let (_, author) = self.participant(room, conn)?;
        // Before the version check: a repeat names the version it was made against.
        let now = now_ms();
        self.edit_keys.expire(now);
        if let Some(repeat) = Self::recall(&self.edit_keys, meta, self.faults.accept_reused_keys)? {
            return Ok(repeat);
        }
        let document_epoch = self.document_epoch.clone();
        let state = self
            .rooms
            .get_mut(room.as_str())
            .expect("checked by participant");
        state.admit_post(self.post_rate)?;
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
        let position = Position {
            epoch: document_epoch,
            seq: self.choices.position_seq(version),
        };
        let push = ServerMessage::DocumentEdit(DocumentEdit {
            room: room.clone(),
            document: document.clone(),
            version,
            author,
            ops: ops.to_vec(),
            server_time: None,
            position: Some(position.clone()),
            origin: meta.origin.clone(),
        });
        let answer = reply(version, position);
        if let Some((write, kept)) = meta.kept(|_| answer.clone(), now) {
            self.edit_keys.insert(&write, kept);
        }
        state.broadcast(room, &push, Some(conn));
        Ok(answer)
    }

    pub fn document(
        &self,
        room: &str,
        conn: u64,
        document: &str,
    ) -> Result<(u64, String, Position), ErrorBody> {
        let state = self.rooms.get(room).ok_or_else(|| not_a_member(room))?;
        state.member(conn).ok_or_else(|| not_a_member(room))?;
        let (version, content) = state
            .documents
            .get(document)
            .map_or((0, String::new()), |d| (d.version, d.content.clone()));
        let shown = if self.faults.document_position_behind {
            version.saturating_sub(1)
        } else {
            version
        };
        Ok((version, content, self.document_position(shown)))
    }
}

/// Milliseconds since the Unix epoch of a timestamp a client sent; one that
/// names no instant is invalid from the request alone.
pub(crate) fn instant(field: &str, at: &Timestamp) -> Result<u128, ErrorBody> {
    humantime::parse_rfc3339_weak(&at.0)
        .ok()
        .filter(|_| at.0.ends_with('Z'))
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_micros())
        .ok_or_else(|| invalid_at(field, format!("{:?} is no RFC 3339 UTC instant", at.0)))
}

fn sent_micros(message: &ChatMessage) -> u128 {
    instant("sent_at", &message.sent_at).unwrap_or(0)
}
