//! Topic subscriptions and publication fan-out, with a bounded log of each
//! topic's recent publications from which a subscription can resume.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{json, Value};
use tidewire_filter::Filter;
use tidewire_protocol::{
    ErrorBody, ErrorCode, Origin, Position, Progress, Published, RequestId, ServerMessage,
    Subscribed, Timestamp,
};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::auth::{Action, Permission};
use crate::fanout::{publication_frame, publication_frame_body};
use crate::idempotency::{Kept, Keys, Remember};
use crate::outbound::{Conn, Outbound};
use crate::util::{error, now_timestamp};
use crate::variant::{Choices, StreamKind};

pub(crate) struct TopicSub {
    pub conn: Arc<Conn>,
    pub id: Arc<str>,
    pub filter: Option<Filter>,
    /// The head of this subscription's publication frames (`fanout::publication_head`).
    pub head: Utf8Bytes,
    pub permission: Permission,
}

impl TopicSub {
    /// Whether this subscription receives `data` published to `topic`.
    fn selects(&self, topic: &str, data: &Value) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(data)) && self.allowed(topic)
    }

    /// Whether this subscription receives `kept` on replay. The kept data is
    /// read back from its body only for a subscription with a filter.
    fn selects_kept(&self, topic: &str, kept: &KeptPublication) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(&kept.data())) && self.allowed(topic)
    }

    fn allowed(&self, topic: &str) -> bool {
        self.permission.allows(&self.conn, Action::Subscribe, topic)
    }
}

/// A kept publication: its frame body, for replay. The data is kept only
/// inside the body (a topic keeps up to `retention` publications of up to the
/// largest message each, so a second copy would double that) and read back
/// from it for filters when a subscription replays.
struct KeptPublication {
    n: u64,
    body: Utf8Bytes,
}

impl KeptPublication {
    fn data(&self) -> Value {
        #[derive(serde::Deserialize)]
        struct Data {
            data: Value,
        }
        let fields = format!("{{{}", self.body);
        serde_json::from_str::<Data>(&fields).map_or(Value::Null, |fields| fields.data)
    }
}

/// One topic's sequence and its most recent publications.
#[derive(Default)]
struct TopicLog {
    /// Publications ever made to the topic in this epoch.
    head: u64,
    kept: VecDeque<KeptPublication>,
}

/// Switches of the named faults this module honours.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TopicFaults {
    pub replay_from_position: bool,
    pub recover_beyond_retention: bool,
}

pub(crate) struct Topics {
    subs: HashMap<String, BTreeMap<(u64, u64), TopicSub>>,
    logs: HashMap<String, TopicLog>,
    /// Publications kept per topic.
    retention: usize,
    /// Topics are not stored, so each run has an epoch of its own.
    epoch: String,
    published: u64,
    choices: Arc<dyn Choices>,
    /// The idempotency keys of recent publishes. Topics keep nothing across
    /// a restart, and neither do their keys.
    keys: Keys,
    faults: TopicFaults,
}

impl Topics {
    pub fn new(
        choices: Arc<dyn Choices>,
        epoch: &str,
        retention: usize,
        faults: TopicFaults,
    ) -> Topics {
        Topics {
            subs: HashMap::new(),
            logs: HashMap::new(),
            retention,
            epoch: choices.position_epoch(StreamKind::Topic, epoch),
            published: 0,
            choices,
            keys: Keys::new(std::time::Duration::ZERO),
            faults,
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

    fn position(&self, n: u64) -> Position {
        Position {
            epoch: self.epoch.clone(),
            seq: self.choices.position_seq(n),
        }
    }

    fn head(&self, topic: &str) -> u64 {
        self.logs.get(topic).map_or(0, |log| log.head)
    }

    /// The entry count after which `start` replays, if it can be honoured:
    /// this epoch, not beyond the topic's head, every later publication kept
    /// (TW-RECOVER-2, TW-RECOVER-3).
    fn start(&self, topic: &str, start: &Position) -> Result<u64, ErrorBody> {
        let lost = |why: &str| error(ErrorCode::HistoryLost, why.to_string());
        if start.epoch != self.epoch {
            return Err(lost("the position is from another epoch of the topic"));
        }
        let head = self.head(topic);
        if start.seq > self.choices.position_seq(head) {
            return Err(lost("the position is ahead of the topic"));
        }
        let after = self.choices.entries_through(start.seq);
        let first_kept = self
            .logs
            .get(topic)
            .and_then(|log| log.kept.front())
            .map_or(head + 1, |kept| kept.n);
        if after + 1 < first_kept && !self.faults.recover_beyond_retention {
            return Err(lost(
                "the publications after the position are no longer kept",
            ));
        }
        Ok(after)
    }

    /// Registers a subscription and queues its `subscribed` reply, then the
    /// kept publications after `start_after`, under the topics lock: no
    /// publication falls between the barrier and the replay.
    pub fn subscribe(
        &mut self,
        topic: &str,
        key: (u64, u64),
        sub: TopicSub,
        request: RequestId,
        start_after: Option<&Position>,
    ) -> Result<ServerMessage, ErrorBody> {
        let after = start_after.map(|p| self.start(topic, p)).transpose()?;
        let reply = ServerMessage::Subscribed(Subscribed {
            id: request,
            subscription: sub.id.to_string(),
            position: Some(self.position(self.head(topic))),
            recovered: after.map(|_| true),
        });
        sub.conn.reply(Outbound::message(&reply));
        if let (Some(after), Some(log)) = (after, self.logs.get(topic)) {
            let first = if self.faults.replay_from_position {
                after
            } else {
                after + 1
            };
            for kept in log.kept.iter().filter(|kept| kept.n >= first) {
                if sub.selects_kept(topic, kept) {
                    sub.conn.replay(Outbound {
                        frame: publication_frame(&sub.head, &kept.body),
                        position: None,
                        replay: false,
                    });
                }
            }
        }
        self.subs
            .entry(topic.to_string())
            .or_default()
            .insert(key, sub);
        Ok(reply)
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

    /// Where each topic subscription of connection `conn` stands: every
    /// publication was pushed under this lock, so the topic's head.
    pub fn progress(&self, conn: u64) -> Vec<((u64, u64), Progress)> {
        let mut progress = Vec::new();
        for (topic, subs) in &self.subs {
            let position = self.position(self.head(topic));
            for (key, sub) in subs.range((conn, 0)..=(conn, u64::MAX)) {
                progress.push((
                    *key,
                    Progress {
                        subscription: sub.id.to_string(),
                        position: position.clone(),
                    },
                ));
            }
        }
        progress
    }

    /// Pushes `data` to every matching subscription of `topic` and keeps it
    /// for resuming. Runs under the topics lock, so publications to one topic
    /// reach each subscription in publish order.
    pub fn publish(
        &mut self,
        topic: &str,
        publisher: &str,
        data: &Value,
        origin: Option<&Origin>,
    ) -> (String, Timestamp, Position) {
        self.published += 1;
        // The epoch keeps ids of different runs apart (TW-POS-6).
        let message_id = format!(
            "{}.{}",
            self.epoch,
            self.choices.publication_id(self.published)
        );
        let published_at = now_timestamp();
        let n = self.head(topic) + 1;
        let position = self.position(n);
        let mut fields = json!({
            "topic": topic,
            "message_id": message_id,
            "publisher": publisher,
            "published_at": published_at,
            "data": data,
            "position": position,
        });
        if let Some(origin) = origin {
            fields["origin"] = serde_json::to_value(origin).expect("origins serialize");
        }
        let body = publication_frame_body(&fields);
        for sub in self.subs.get(topic).into_iter().flat_map(BTreeMap::values) {
            if sub.selects(topic, data) {
                sub.conn.push(Outbound {
                    frame: publication_frame(&sub.head, &body),
                    position: None,
                    replay: false,
                });
            }
        }
        let retention = self.retention;
        let log = self.logs.entry(topic.to_string()).or_default();
        log.head = n;
        if retention > 0 {
            log.kept.push_back(KeptPublication { n, body });
            while log.kept.len() > retention {
                log.kept.pop_front();
            }
        }
        (message_id, published_at, position)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::auth::Identity;
    use crate::outbound::{QueueBound, Receiver};
    use crate::variant::Variant;

    fn subscriber(topics: &mut Topics, topic: &str) -> (Arc<Conn>, Receiver) {
        let bound = QueueBound {
            messages: 100,
            bytes: 1 << 20,
        };
        let identity = Identity::anonymous(&["*".to_string()]);
        let (conn, rx) = Conn::new(1, "c1".into(), identity, bound);
        let sub = TopicSub {
            conn: conn.clone(),
            id: "s1".into(),
            filter: None,
            head: crate::fanout::publication_head("s1"),
            permission: Permission::default(),
        };
        topics
            .subscribe(
                topic,
                (1, 1),
                sub,
                RequestId::new("r1").expect("a valid id"),
                None,
            )
            .expect("subscribed");
        (conn, rx)
    }

    fn publications(rx: &mut Receiver) -> usize {
        std::iter::from_fn(|| rx.try_recv())
            .filter(|item| item.frame.clone().into_text().contains(r#""publication""#))
            .count()
    }

    #[test]
    fn a_narrowed_identity_stops_the_next_publication() {
        let mut topics = Topics::new(Variant::Usual.choices(), "e", 10, TopicFaults::default());
        let (conn, mut rx) = subscriber(&mut topics, "news");
        topics.publish("news", "p", &json!(1), None);
        assert_eq!(publications(&mut rx), 1);

        // The subscription stays, as it does when its `ended` is not sent:
        // the scopes decide each delivery.
        *conn.identity_mut() = Identity::anonymous(&["subscribe:topic:other".to_string()]);
        topics.publish("news", "p", &json!(2), None);
        assert_eq!(publications(&mut rx), 0);

        *conn.identity_mut() = Identity::anonymous(&["subscribe:topic:news".to_string()]);
        topics.publish("news", "p", &json!(3), None);
        assert_eq!(publications(&mut rx), 1);
    }
}
