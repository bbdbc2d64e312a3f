//! The core profile's requests: `ping`, and `unsubscribe`, which ends a
//! subscription of any profile (a watch or a topic subscription).

use tidewire_protocol::{
    ErrorBody, ErrorCode, Ping, Pong, ServerMessage, Unsubscribe, Unsubscribed,
};

use super::Reply;
use crate::session::{Session, Subscription};
use crate::util::error;

pub(super) fn ping(ping: &Ping) -> Reply {
    ServerMessage::Pong(Pong {
        id: ping.id.clone(),
        payload: ping.payload.clone().filter(|p| !p.is_null()),
    })
    .into()
}

pub(super) fn unsubscribe(
    session: &mut Session,
    unsubscribe: &Unsubscribe,
) -> Result<Reply, ErrorBody> {
    let Some(sub) = session.subscriptions.remove(&unsubscribe.subscription) else {
        return Err(error(
            ErrorCode::NotFound,
            format!("no subscription {:?}", unsubscribe.subscription),
        ));
    };
    let conn = session.conn.num;
    session.targets.remove(&unsubscribe.subscription);
    session
        .conn
        .live
        .lock()
        .topics
        .remove(&unsubscribe.subscription);
    match sub {
        Subscription::Watch(key) => {
            session.state.store.write().unwatch((conn, key));
            session.conn.remove_position(&unsubscribe.subscription);
        }
        Subscription::Topic(topic, key) => {
            session.state.topics.lock().unsubscribe(&topic, (conn, key));
        }
    }
    Ok(ServerMessage::Unsubscribed(Unsubscribed {
        id: unsubscribe.id.clone(),
        subscription: unsubscribe.subscription.clone(),
    })
    .into())
}
