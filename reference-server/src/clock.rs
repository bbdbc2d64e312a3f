//! The server time every push carries (`server_time`, TW-TIME-1).
//!
//! It is written in one place, as a frame goes to the socket, so that it is
//! the time the push was sent rather than when it was built or queued, and so
//! that frames serialized once for many receivers (fan-out, room broadcasts)
//! need no per-receiver re-serialization: the member is spliced in after the
//! frame's `type` while the frame's head and shared body are joined into the
//! one text the socket is given.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::outbound::Frame;

const TYPE_PREFIX: &str = r#"{"type":""#;
const MEMBER_PREFIX: &str = r#","server_time":""#;

/// Where `server_time` goes in `text`, a frame the server serialized
/// (`{"type":"<tag>",...`), when the frame is a push: right after the `type`
/// member. Every reply names its request in `id`, the first member after
/// `type` of every reply type; a push has no `id` (TW-CORE-10).
fn push_insertion_point(text: &str) -> Option<usize> {
    let rest = text.strip_prefix(TYPE_PREFIX)?;
    let tag_end = rest.find('"')?;
    let after_tag = TYPE_PREFIX.len() + tag_end + 1;
    let next = &text[after_tag..];
    if next.starts_with(r#","id":"#) || !next.starts_with(',') {
        return None;
    }
    Some(after_tag)
}

/// The time a writer stamps on its pushes, read once per run of writes that
/// go out without waiting: a fan-out gives each writer a batch of pushes that
/// leave within microseconds, and the timestamp has millisecond precision, so
/// reading and formatting the clock for each push was a large part of a
/// push's cost. The writer calls [`PushClock::expire`] whenever time may have
/// passed: before each batch, and after a write that had to wait.
#[derive(Debug, Default)]
pub(crate) struct PushClock {
    /// The formatted time, valid while `remaining` is not zero.
    text: String,
    /// The millisecond `text` names, so the same millisecond is not formatted twice.
    millis: u128,
    /// Stamps left before the clock is read again: a long batch reads it
    /// again too. Zero, as it starts, reads it at the next stamp.
    remaining: u32,
}

/// Stamps after which the clock is read again within one batch.
const STAMPS_PER_READ: u32 = 64;

impl PushClock {
    /// The next stamp reads the clock.
    pub fn expire(&mut self) {
        self.remaining = 0;
    }

    fn now(&mut self) -> &str {
        if self.remaining == 0 {
            let now = SystemTime::now();
            let millis = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
            if millis != self.millis || self.text.is_empty() {
                self.text.clear();
                let _ = write!(self.text, "{}", humantime::format_rfc3339_millis(now));
                self.millis = millis;
            }
            self.remaining = STAMPS_PER_READ;
        }
        self.remaining -= 1;
        &self.text
    }

    /// `frame` with `"server_time":"<now>"` added when it is a push; replies
    /// pass unchanged. A push comes back as one string, joined and stamped in
    /// a single allocation (the socket needs one message text anyway), while
    /// it waited in the queue with its body shared.
    pub fn stamp_push(&mut self, frame: Frame) -> Frame {
        let (head, shared) = match &frame {
            Frame::Whole(text) => (text.as_str(), ""),
            Frame::Spliced { head, shared } => (head.as_str(), shared.as_str()),
        };
        let Some(at) = push_insertion_point(head) else {
            return frame;
        };
        let now = self.now();
        let mut text =
            String::with_capacity(head.len() + MEMBER_PREFIX.len() + now.len() + 1 + shared.len());
        text.push_str(&head[..at]);
        text.push_str(MEMBER_PREFIX);
        text.push_str(now);
        text.push('"');
        text.push_str(&head[at..]);
        text.push_str(shared);
        Frame::Whole(text.into())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use tidewire_protocol::{asyncapi, ServerMessage};

    use super::*;

    fn stamped(message: &ServerMessage) -> Value {
        let frame = PushClock::default().stamp_push(Frame::Whole(message.to_json().into()));
        serde_json::from_str(&frame.into_text()).expect("a stamped frame is JSON")
    }

    #[test]
    fn every_push_is_stamped_and_no_reply_is() {
        for example in asyncapi::server_examples() {
            let mut message = example.message;
            // The examples show a time; the server builds every push without one.
            let unstamped = {
                let mut value = serde_json::to_value(&message).unwrap();
                value.as_object_mut().unwrap().remove("server_time");
                serde_json::from_value::<ServerMessage>(value).unwrap()
            };
            message = unstamped;
            let frame = stamped(&message);
            let is_push = message.reply_to().is_none();
            assert_eq!(
                frame.get("server_time").is_some(),
                is_push,
                "{}: {frame}",
                example.name
            );
            if is_push {
                let back: ServerMessage = serde_json::from_value(frame).unwrap();
                assert_eq!(back.tag(), message.tag());
            }
        }
    }

    #[test]
    fn a_spliced_frame_is_stamped_in_its_head_and_joined() {
        let frame = Frame::Spliced {
            head: r#"{"type":"change","subscription":"s1","event":"#.into(),
            shared: r#"{"k":1}}"#.into(),
        };
        let Frame::Whole(text) = PushClock::default().stamp_push(frame) else {
            panic!("a stamped push is one text");
        };
        let value: Value = serde_json::from_str(&text).expect("a stamped frame is JSON");
        assert!(text.starts_with(r#"{"type":"change","server_time":""#));
        assert!(text.ends_with(r#","subscription":"s1","event":{"k":1}}"#));
        assert_eq!(value["event"]["k"], 1);
    }

    fn stamp(clock: &mut PushClock) -> String {
        let push = Frame::Whole(r#"{"type":"heartbeat","subscriptions":[]}"#.into());
        let text = clock.stamp_push(push).into_text();
        let value: Value = serde_json::from_str(&text).unwrap();
        value["server_time"].as_str().unwrap().to_string()
    }

    fn wall_clock() -> String {
        humantime::format_rfc3339_millis(SystemTime::now()).to_string()
    }

    #[test]
    fn the_stamp_is_the_time_of_the_write_once_the_clock_expires() {
        let mut clock = PushClock::default();
        let before = wall_clock();
        let first = stamp(&mut clock);
        std::thread::sleep(std::time::Duration::from_millis(2));
        // Within one batch the time read first stands.
        assert_eq!(stamp(&mut clock), first);
        clock.expire();
        let second = stamp(&mut clock);
        let after = wall_clock();
        // RFC 3339 UTC timestamps of one length order as text.
        assert!(before <= first && first < second && second <= after);
    }

    #[test]
    fn a_long_batch_reads_the_clock_again() {
        let mut clock = PushClock::default();
        let first = stamp(&mut clock);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later: Vec<String> = (0..STAMPS_PER_READ).map(|_| stamp(&mut clock)).collect();
        assert!(later[..later.len() - 1].iter().all(|time| *time == first));
        assert!(later[later.len() - 1] > first);
    }
}
