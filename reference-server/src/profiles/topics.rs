//! The topics profile's requests: `subscribe` and `publish`.

use tidewire_protocol::{ErrorBody, Origin, Publish, Published, ServerMessage, Subscribe};

use super::{parse_filter, Caller, Reply};
use crate::auth::Action;
use crate::idempotency::Remember;
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
            head: crate::fanout::publication_head(&sub_id),
            permission: crate::auth::Permission::default(),
        },
        subscribe.id.clone(),
        subscribe.start_after.as_ref(),
    )?;
    session.subscriptions.insert(
        sub_id.clone(),
        Subscription::Topic(subscribe.topic.to_string(), key),
    );
    session.targets.insert(
        sub_id.clone(),
        (Action::Subscribe, subscribe.topic.to_string()),
    );
    session.conn.live.lock().topics.insert(sub_id);
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
    let faults = &session.state.config.faults;
    let key = publish
        .idempotency_key
        .as_ref()
        .filter(|_| !faults.ignore_idempotency_keys);
    let remember = key.map(|key| Remember::new(caller.principal, &key.0, publish));
    let origin = Origin {
        connection_id: session.conn.id.clone(),
        idempotency_key: key.cloned(),
    };
    let mut topics = session.state.topics.lock();
    if let Some(write) = &remember {
        match topics.recall(write, &publish.id) {
            Ok(Some(repeat)) => return Ok(repeat.into()),
            Ok(None) => {}
            Err(_) if faults.accept_reused_keys => {}
            Err(reused) => return Err(reused),
        }
    }
    let (message_id, published_at, position) = topics.publish(
        &publish.topic,
        caller.principal,
        &publish.data,
        Some(&origin).filter(|_| !faults.omit_origin),
    );
    let reply = Published {
        id: publish.id.clone(),
        topic: publish.topic.clone(),
        message_id,
        published_at,
        position: Some(position),
    };
    if let Some(write) = &remember {
        topics.remember(write, &reply);
    }
    Ok(ServerMessage::Published(reply).into())
}
