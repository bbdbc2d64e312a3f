//! The collab profile's requests: `edit` and `get_document`, on the shared
//! documents of a room. Like every room request they check the `join:room:` scope.

use tidewire_protocol::{Document, Edit, EditApplied, ErrorBody, GetDocument, ServerMessage};

use super::records::write_meta;
use super::{Caller, Reply};
use crate::auth::Action;
use crate::session::Session;
use crate::util::invalid_at;

pub(super) fn edit(session: &Session, caller: &Caller, edit: &Edit) -> Result<Reply, ErrorBody> {
    // Invalid by the profile's rules comes before forbidden (section 4.4).
    if edit.ops.is_empty() {
        return Err(invalid_at("ops", "an edit needs at least one operation"));
    }
    caller.require(Action::Join, &edit.room, "editing in")?;
    let conn = session.conn.num;
    let mut rooms = session.state.rooms.lock();
    let base = if session.state.config.faults.accept_stale_edit {
        rooms
            .document(&edit.room, conn, &edit.document)
            .map_or(edit.version, |(current, _, _)| current)
    } else {
        edit.version
    };
    let key = edit
        .idempotency_key
        .as_ref()
        .filter(|_| !session.state.config.faults.ignore_edit_keys);
    let meta = write_meta(session, caller, &edit.id, key, edit);
    let reply = rooms.edit(
        &edit.room,
        conn,
        &edit.document,
        base,
        &edit.ops,
        &meta,
        |version, position| {
            ServerMessage::EditApplied(EditApplied {
                id: edit.id.clone(),
                room: edit.room.clone(),
                document: edit.document.clone(),
                version,
                position: Some(position),
            })
        },
    )?;
    Ok(reply.into())
}

pub(super) fn get_document(
    session: &Session,
    caller: &Caller,
    get: &GetDocument,
) -> Result<Reply, ErrorBody> {
    caller.require(Action::Join, &get.room, "reading")?;
    let (version, content, position) =
        session
            .state
            .rooms
            .lock()
            .document(&get.room, session.conn.num, &get.document)?;
    Ok(ServerMessage::Document(Document {
        id: get.id.clone(),
        room: get.room.clone(),
        document: get.document.clone(),
        version,
        content,
        position: Some(position),
    })
    .into())
}
