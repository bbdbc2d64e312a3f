//! Idempotency keys of writes (section 7.5). A write with a key is
//! remembered, with its reply, per principal for the announced window; a
//! repeat of the same request gets that reply and applies nothing, and a
//! different request under the same key is a `conflict`. Each kind of write
//! has a [`Keys`] of its own, kept by the owner of what it writes under that
//! owner's lock: the store (record writes), the topics (publishes) and the
//! rooms (posts, edits). A data directory keeps the keys of record writes and
//! posts in the same transaction as the write, so a retry after a crash
//! cannot apply twice.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tidewire_protocol::{ErrorBody, ErrorCode, RequestId, ServerMessage};

use crate::util::error_with;

/// A principal's key: keys of different principals never meet.
pub(crate) type KeyName = (String, String);

/// A write that carries a key.
#[derive(Debug, Clone)]
pub(crate) struct Remember {
    pub principal: String,
    pub key: String,
    /// The request without its `id`: a repeat must match it.
    pub fingerprint: String,
}

impl Remember {
    /// `request` is the typed request; its `id` is left out of the fingerprint.
    pub fn new(principal: &str, key: &str, request: &impl Serialize) -> Remember {
        let mut value = serde_json::to_value(request).expect("requests serialize");
        if let Some(object) = value.as_object_mut() {
            object.remove("id");
        }
        let digest = Sha256::digest(value.to_string().as_bytes());
        Remember {
            principal: principal.to_string(),
            key: key.to_string(),
            fingerprint: digest.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    fn name(&self) -> KeyName {
        (self.principal.clone(), self.key.clone())
    }
}

/// A remembered write, as kept in memory and in the data directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Kept {
    pub fingerprint: String,
    /// The original reply, `id` included.
    pub reply: Value,
    pub at_ms: u64,
}

/// The remembered keys, oldest first.
pub(crate) struct Keys {
    keep: Duration,
    kept: HashMap<KeyName, Kept>,
    order: VecDeque<(u64, KeyName)>,
}

impl Keys {
    pub fn new(keep: Duration) -> Keys {
        Keys {
            keep,
            kept: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn keep_ms(&self) -> u64 {
        u64::try_from(self.keep.as_millis()).unwrap_or(u64::MAX)
    }

    /// The reply to repeat for `write`, with `id` in place of the original's;
    /// `None` when the key is not remembered. A key remembered for another
    /// request is a `conflict`.
    pub fn recall(
        &self,
        write: &Remember,
        id: &RequestId,
        now_ms: u64,
    ) -> Result<Option<ServerMessage>, ErrorBody> {
        let Some(kept) = self
            .kept
            .get(&write.name())
            .filter(|kept| now_ms.saturating_sub(kept.at_ms) <= self.keep_ms())
        else {
            return Ok(None);
        };
        if kept.fingerprint != write.fingerprint {
            return Err(error_with(
                ErrorCode::Conflict,
                "the idempotency key was used for another request",
                "idempotency_key",
                write.key.clone(),
            ));
        }
        let mut reply = kept.reply.clone();
        reply["id"] = serde_json::to_value(id).expect("ids serialize");
        serde_json::from_value(reply).map(Some).map_err(|_| {
            error_with(
                ErrorCode::Internal,
                "the remembered reply could not be read back",
                "idempotency_key",
                write.key.clone(),
            )
        })
    }

    pub fn insert(&mut self, write: &Remember, kept: Kept) {
        self.order.push_back((kept.at_ms, write.name()));
        self.kept.insert(write.name(), kept);
    }

    /// Forgets the keys older than the window and returns them, so that the
    /// data directory forgets them too.
    pub fn expire(&mut self, now_ms: u64) -> Vec<KeyName> {
        let keep = self.keep_ms();
        let mut gone = Vec::new();
        while let Some((at_ms, _)) = self.order.front() {
            if now_ms.saturating_sub(*at_ms) <= keep {
                break;
            }
            let (at_ms, name) = self.order.pop_front().expect("a front entry");
            // A key written again later keeps its newer entry.
            if self.kept.get(&name).is_some_and(|k| k.at_ms == at_ms) {
                self.kept.remove(&name);
                gone.push(name);
            }
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tidewire_protocol::Deleted;

    fn id(s: &str) -> RequestId {
        serde_json::from_value(json!(s)).unwrap()
    }

    #[test]
    fn a_repeat_gets_the_reply_and_another_request_a_conflict() {
        let mut keys = Keys::new(Duration::from_millis(100));
        let first = Remember::new("p", "k", &json!({"id": "a", "record_id": "r1"}));
        let reply = ServerMessage::Deleted(Deleted {
            id: id("a"),
            record_id: "r1".into(),
            position: None,
        });
        keys.insert(
            &first,
            Kept {
                fingerprint: first.fingerprint.clone(),
                reply: serde_json::to_value(&reply).unwrap(),
                at_ms: 1000,
            },
        );
        let repeat = Remember::new("p", "k", &json!({"id": "b", "record_id": "r1"}));
        let again = keys.recall(&repeat, &id("b"), 1050).unwrap().unwrap();
        assert_eq!(
            again,
            ServerMessage::Deleted(Deleted {
                id: id("b"),
                record_id: "r1".into(),
                position: None,
            })
        );
        let other = Remember::new("p", "k", &json!({"id": "c", "record_id": "r2"}));
        assert_eq!(
            keys.recall(&other, &id("c"), 1050).unwrap_err().code,
            ErrorCode::Conflict
        );
        let elsewhere = Remember::new("q", "k", &json!({"id": "c", "record_id": "r2"}));
        assert!(keys.recall(&elsewhere, &id("c"), 1050).unwrap().is_none());
        assert!(keys.recall(&repeat, &id("b"), 1101).unwrap().is_none());
        assert_eq!(keys.expire(1101), vec![("p".into(), "k".into())]);
    }
}
