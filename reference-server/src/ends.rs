//! Ends the client did not ask for (section 5.9): re-authentication that no
//! longer allows a subscription or room membership ends it at once, and a
//! close for shutdown, token expiry or a slow consumer ends everything the
//! connection holds. Each end is an `ended` push, after which nothing for
//! the stream follows and `unsubscribe` or `leave` naming it is `not_found`.

use std::collections::BTreeSet;

use tidewire_protocol::{
    CloseCode, EndReason, Ended, LeaveReason, Name, Position, ResumeToken, ServerMessage,
};

use crate::auth::{Action, Scopes};
use crate::outbound::{Conn, Outbound};
use crate::session::{Session, Subscription};
use crate::variant::Choices;

/// The topic subscriptions and rooms of a connection, which the close path
/// ends (watches are listed in `Conn::positions`).
#[derive(Default)]
pub(crate) struct Live {
    pub topics: BTreeSet<String>,
    pub rooms: BTreeSet<String>,
}

/// The reason a server close with `code` ends every stream for; `None` for
/// the closes the client caused with its own frames or requests.
pub(crate) fn reason_of_close(code: CloseCode) -> Option<EndReason> {
    match code {
        CloseCode::GoingAway => Some(EndReason::ShuttingDown),
        CloseCode::AuthExpired => Some(EndReason::TokenExpired),
        CloseCode::SlowConsumer => Some(EndReason::SlowConsumer),
        _ => None,
    }
}

/// The `ended` pushes of a close: one per watch, with the last position
/// written to the client, one per topic subscription and one per room.
pub(crate) fn on_close(
    conn: &Conn,
    choices: &dyn Choices,
    reason: EndReason,
) -> Vec<ServerMessage> {
    let watches = conn.positions.lock().clone();
    let live = conn.live.lock();
    let mut ended: Vec<ServerMessage> = watches
        .iter()
        .map(|(subscription, token)| {
            watch_ended(subscription.to_string(), reason, token.to_string(), choices)
        })
        .collect();
    ended.extend(live.topics.iter().map(|subscription| {
        ServerMessage::Ended(Ended {
            subscription: Some(subscription.clone()),
            room: None,
            reason,
            resume_token: None,
            position: None,
        })
    }));
    ended.extend(live.rooms.iter().filter_map(|room| {
        Some(ServerMessage::Ended(Ended {
            subscription: None,
            room: Some(Name::new(room.clone()).ok()?),
            reason,
            resume_token: None,
            position: None,
        }))
    }));
    ended
}

fn watch_ended(
    subscription: String,
    reason: EndReason,
    token: String,
    choices: &dyn Choices,
) -> ServerMessage {
    let position = choices
        .parse_resume_token(&token)
        .map(|(epoch, seq)| Position {
            epoch: epoch.to_string(),
            seq,
        });
    ServerMessage::Ended(Ended {
        subscription: Some(subscription),
        room: None,
        reason,
        resume_token: Some(ResumeToken(token)),
        position,
    })
}

impl Session {
    /// Ends, with reason `scopes_narrowed`, every subscription and room
    /// membership that `scopes` would not let the connection create now.
    pub(crate) fn end_disallowed(&mut self, scopes: &Scopes) {
        if self.state.config.faults.end_silently_on_narrowing {
            return;
        }
        let reason = EndReason::ScopesNarrowed;
        let mut disallowed: Vec<String> = self
            .targets
            .iter()
            .filter(|(_, (action, target))| !scopes.allows(*action, target))
            .map(|(id, _)| id.clone())
            .collect();
        disallowed.sort();
        let keep = self.state.config.faults.ended_keeps_subscription;
        let silent = self.state.config.faults.ends_without_telling;
        let tell = |conn: &Conn, ended: &ServerMessage| {
            if !silent {
                conn.reply(Outbound::message(ended));
            }
        };
        let conn = self.conn.num;
        for id in disallowed {
            let ended = match self.subscriptions.get(&id) {
                Some(Subscription::Watch(key)) => {
                    // Under the store lock, so no later change can be queued
                    // for the watch: the head is a position that misses nothing.
                    let mut store = self.state.store.write();
                    if !keep {
                        store.unwatch((conn, *key));
                    }
                    let token = store.token(store.head());
                    let ended = watch_ended(id.clone(), reason, token, &*self.state.choices);
                    tell(&self.conn, &ended);
                    true
                }
                Some(Subscription::Topic(topic, key)) => {
                    // Under the topics lock, so no later publication is queued for it.
                    let mut topics = self.state.topics.lock();
                    if !keep {
                        topics.unsubscribe(topic, (conn, *key));
                    }
                    let ended = ServerMessage::Ended(Ended {
                        subscription: Some(id.clone()),
                        room: None,
                        reason,
                        resume_token: None,
                        position: None,
                    });
                    tell(&self.conn, &ended);
                    true
                }
                None => false,
            };
            if ended && !keep {
                self.subscriptions.remove(&id);
                self.targets.remove(&id);
                self.conn.remove_position(&id);
                self.conn.live.lock().topics.remove(&id);
            }
        }
        let rooms: Vec<String> = self
            .rooms
            .iter()
            .filter(|room| !scopes.allows(Action::Join, room))
            .cloned()
            .collect();
        for room in rooms {
            let Ok(name) = Name::new(room.clone()) else {
                continue;
            };
            let mut registry = self.state.rooms.lock();
            if !keep {
                registry.leave(&name, conn, LeaveReason::Ended);
            }
            let ended = ServerMessage::Ended(Ended {
                subscription: None,
                room: Some(name),
                reason,
                resume_token: None,
                position: None,
            });
            tell(&self.conn, &ended);
            drop(registry);
            if !keep {
                self.rooms.remove(&room);
                self.conn.live.lock().rooms.remove(&room);
            }
        }
    }
}
