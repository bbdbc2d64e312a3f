//! The topics profile's requests: `subscribe` and `publish`.

use tidewire_protocol::{ErrorBody, Publish, Published, ServerMessage, Subscribe};

use super::{parse_filter, Caller, Reply};
use crate::auth::Action;
use crate::session::{Session, Subscription};
use crate::topics::TopicSub;

pub(super) fn subscribe(
    session: &mut Session,
    caller: &Caller,
    subscribe: &Subscribe,
) -> Result<Reply, ErrorBody> {
    // An invalid filter is reported before a missing scope (TW-CORE-23).
    let filter = parse_filter(subscribe.filter.as_ref())?
        .filter(|_| !session.state.config.faults.leak_across_filter);
    caller.require(Action::Subscribe, &subscribe.topic, "subscribing to")?;
    session.check_subscription_limit()?;
    let (key, sub_id) = session.new_subscription_id();
    // The topics module queues the `subscribed` reply itself, ahead of the
    // replayed and live publications it pushes under the same lock.
    let message = session.state.topics.lock().subscribe(
        &subscribe.topic,
        (session.conn.num, key),
        TopicSub {
            conn: session.conn.clone(),
            id: sub_id.as_str().into(),
            filter,
        },
        subscribe.id.clone(),
        subscribe.start_after.as_ref(),
    )?;
    session.subscriptions.insert(
        sub_id.clone(),
        Subscription::Topic(subscribe.topic.to_string(), key),
    );
    Ok(Reply {
        message,
        queued: true,
    })
}

pub(super) fn publish(
    session: &Session,
    caller: &Caller,
    publish: &Publish,
) -> Result<Reply, ErrorBody> {
    caller.require(Action::Publish, &publish.topic, "publishing to")?;
    let (message_id, published_at, position) =
        session
            .state
            .topics
            .lock()
            .publish(&publish.topic, caller.principal, &publish.data);
    Ok(ServerMessage::Published(Published {
        id: publish.id.clone(),
        topic: publish.topic.clone(),
        message_id,
        published_at,
        position: Some(position),
    })
    .into())
}
