//! The stats profile's request: `get_stats`, the server's and this
//! connection's counters.

use std::sync::atomic::Ordering;

use tidewire_protocol::{ConnectionStats, GetStats, ServerMessage, Stats};

use super::Reply;
use crate::session::Session;

pub(super) fn get_stats(session: &Session, get: &GetStats) -> Reply {
    ServerMessage::Stats(Stats {
        id: get.id.clone(),
        server: session.state.stats(),
        connection: ConnectionStats {
            subscriptions: session.subscriptions.len() as u64,
            rooms: session.rooms.len() as u64,
            messages_in: session.conn.messages_in.load(Ordering::Relaxed),
            messages_out: session.conn.messages_out.load(Ordering::Relaxed),
        },
    })
    .into()
}
