//! Topic subscriptions and publication fan-out.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{json, Value};
use tidewire_filter::Filter;
use tidewire_protocol::{ErrorBody, Origin, Published, RequestId, ServerMessage, Timestamp};

use crate::auth::Action;
use crate::fanout::{publication_frame, publication_frame_body};
use crate::idempotency::{Kept, Keys, Remember};
use crate::outbound::{Conn, Outbound};
use crate::util::now_timestamp;
use crate::variant::Choices;

pub(crate) struct TopicSub {
    pub conn: Arc<Conn>,
    pub id: Arc<str>,
    pub filter: Option<Filter>,
}

pub(crate) struct Topics {
    subs: HashMap<String, BTreeMap<(u64, u64), TopicSub>>,
    published: u64,
    choices: Arc<dyn Choices>,
    /// The idempotency keys of recent publishes. Topics keep nothing across
    /// a restart, and neither do their keys.
    keys: Keys,
}

impl Topics {
    pub fn new(choices: Arc<dyn Choices>) -> Topics {
        Topics {
            subs: HashMap::new(),
            published: 0,
            choices,
            keys: Keys::new(std::time::Duration::ZERO),
        }
    }

    pub fn with_idempotency_window(mut self, window: std::time::Duration) -> Topics {
        self.keys = Keys::new(window);
        self
    }

    /// The reply to repeat for a publish whose key was used before.
    pub fn recall(
        &mut self,
        write: &Remember,
        id: &RequestId,
    ) -> Result<Option<ServerMessage>, ErrorBody> {
        let now = crate::store::now_ms();
        self.keys.expire(now);
        self.keys.recall(write, id, now)
    }

    /// Remembers the reply of a publish that carried a key.
    pub fn remember(&mut self, write: &Remember, reply: &Published) {
        self.keys.insert(
            write,
            Kept {
                fingerprint: write.fingerprint.clone(),
                reply: serde_json::to_value(ServerMessage::Published(reply.clone()))
                    .expect("replies serialize"),
                at_ms: crate::store::now_ms(),
            },
        );
    }

    pub fn subscribe(&mut self, topic: &str, key: (u64, u64), sub: TopicSub) {
        self.subs
            .entry(topic.to_string())
            .or_default()
            .insert(key, sub);
    }

    pub fn unsubscribe(&mut self, topic: &str, key: (u64, u64)) -> bool {
        let Some(subs) = self.subs.get_mut(topic) else {
            return false;
        };
        let removed = subs.remove(&key).is_some();
        if subs.is_empty() {
            self.subs.remove(topic);
        }
        removed
    }

    pub fn count(&self) -> usize {
        self.subs.values().map(BTreeMap::len).sum()
    }

    /// Pushes `data` to every matching subscription of `topic`. Runs under the
    /// topics lock, so publications to one topic reach each subscription in
    /// publish order.
    pub fn publish(
        &mut self,
        topic: &str,
        publisher: &str,
        data: &Value,
        origin: Option<&Origin>,
    ) -> (String, Timestamp) {
        self.published += 1;
        let message_id = self.choices.publication_id(self.published);
        let published_at = now_timestamp();
        let Some(subs) = self.subs.get(topic) else {
            return (message_id, published_at);
        };
        let mut fields = json!({
            "topic": topic,
            "message_id": message_id,
            "publisher": publisher,
            "published_at": published_at,
            "data": data,
        });
        if let Some(origin) = origin {
            fields["origin"] = serde_json::to_value(origin).expect("origins serialize");
        }
        let body = publication_frame_body(&fields);
        for sub in subs.values() {
            if sub.filter.as_ref().is_some_and(|f| !f.matches(data)) {
                continue;
            }
            if !sub
                .conn
                .identity
                .read()
                .scopes
                .allows(Action::Subscribe, topic)
            {
                continue;
            }
            sub.conn.push(Outbound {
                frame: publication_frame(&sub.id, &body),
                position: None,
                replay: false,
            });
        }
        (message_id, published_at)
    }
}
