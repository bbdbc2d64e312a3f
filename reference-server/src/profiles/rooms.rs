//! The rooms profile's requests: `join`, `leave`, `post`, `typing` and
//! `history`. Every room request checks the `join:room:` scope.

use tidewire_protocol::{
    Ack, ErrorBody, ErrorCode, History, HistoryPage, Join, Joined, Leave, LeaveReason, Left, Post,
    Posted, ServerMessage, Typing,
};

use super::records::write_meta;
use super::{Caller, Reply};
use crate::auth::Action;
use crate::outbound::Outbound;
use crate::rooms::{instant, HistoryBounds, ShownAs};
use crate::session::Session;
use crate::util::error;

const DEFAULT_HISTORY_LIMIT: u64 = 50;
const MAX_HISTORY_LIMIT: u64 = 500;

pub(super) fn join(
    session: &mut Session,
    caller: &Caller,
    join: &Join,
) -> Result<Reply, ErrorBody> {
    caller.require(Action::Join, &join.room, "joining")?;
    let token_name = if session.state.config.faults.ignore_token_name {
        None
    } else {
        session.conn.identity().display_name.clone()
    };
    let shown_as = ShownAs {
        role: join.role,
        display_name: join.display_name.clone().or(token_name),
        metadata: join.metadata.clone(),
    };
    let mut reply = None;
    // Queued under the rooms lock, ahead of the replayed messages.
    session.state.rooms.lock().join(
        &join.room,
        &session.conn,
        caller.principal,
        shown_as,
        join.start_after.as_ref(),
        |members, position| {
            let message = ServerMessage::Joined(Joined {
                id: join.id.clone(),
                room: join.room.clone(),
                role: join.role,
                members,
                position: Some(position),
                recovered: join.start_after.as_ref().map(|_| true),
            });
            session.conn.reply(Outbound::message(&message));
            reply = Some(message);
        },
    )?;
    session.rooms.insert(join.room.to_string());
    session.conn.live.lock().rooms.insert(join.room.to_string());
    Ok(Reply {
        message: reply.expect("join replies when it succeeds"),
        queued: true,
    })
}

pub(super) fn leave(session: &mut Session, leave: &Leave) -> Result<Reply, ErrorBody> {
    let left = session
        .state
        .rooms
        .lock()
        .leave(&leave.room, session.conn.num, LeaveReason::Left);
    if !left {
        return Err(error(
            ErrorCode::NotFound,
            format!("not a member of room {:?}", leave.room.as_str()),
        ));
    }
    session.rooms.remove(leave.room.as_str());
    session.conn.live.lock().rooms.remove(leave.room.as_str());
    Ok(ServerMessage::Left(Left {
        id: leave.id.clone(),
        room: leave.room.clone(),
    })
    .into())
}

pub(super) fn post(session: &Session, caller: &Caller, post: &Post) -> Result<Reply, ErrorBody> {
    caller.require(Action::Join, &post.room, "posting to")?;
    let key = post
        .idempotency_key
        .as_ref()
        .filter(|_| !session.state.config.faults.ignore_post_keys);
    let meta = write_meta(session, caller, &post.id, key, post);
    // Queued under the rooms lock, so the author sees `posted` before its
    // own `room_message` push.
    let (message, queued) = session.state.rooms.lock().post(
        &post.room,
        session.conn.num,
        &post.body,
        &meta,
        |message_id, sent_at, position| {
            ServerMessage::Posted(Posted {
                id: post.id.clone(),
                room: post.room.clone(),
                message_id: message_id.to_string(),
                sent_at: sent_at.clone(),
                position: Some(position.clone()),
            })
        },
    )?;
    Ok(Reply { message, queued })
}

pub(super) fn typing(
    session: &Session,
    caller: &Caller,
    typing: &Typing,
) -> Result<Reply, ErrorBody> {
    caller.require(Action::Join, &typing.room, "typing in")?;
    session
        .state
        .rooms
        .lock()
        .typing(&typing.room, session.conn.num, typing.active)?;
    Ok(ServerMessage::Ack(Ack {
        id: typing.id.clone(),
    })
    .into())
}

pub(super) fn history(
    session: &Session,
    caller: &Caller,
    history: &History,
) -> Result<Reply, ErrorBody> {
    // A time that names no instant is invalid from the request alone (section 4.4).
    for (field, at) in [("since", &history.since), ("until", &history.until)] {
        if let Some(at) = at {
            instant(field, at)?;
        }
    }
    caller.require(Action::Join, &history.room, "reading")?;
    let limit = history
        .limit
        .unwrap_or(DEFAULT_HISTORY_LIMIT)
        .min(MAX_HISTORY_LIMIT) as usize;
    let bounds = HistoryBounds {
        limit,
        before: history.before.as_deref(),
        before_position: history.before_position.as_ref(),
        after_position: history.after_position.as_ref(),
        since: history.since.as_ref(),
        until: history.until.as_ref(),
    };
    let (messages, has_more) =
        session
            .state
            .rooms
            .lock()
            .history(&history.room, session.conn.num, &bounds)?;
    Ok(ServerMessage::HistoryPage(HistoryPage {
        id: history.id.clone(),
        room: history.room.clone(),
        messages,
        has_more,
    })
    .into())
}
