//! The server time every push carries (`server_time`, TW-TIME-1).
//!
//! It is written in one place, as a frame goes to the socket, so that it is
//! the time the push was sent rather than when it was built or queued, and so
//! that frames serialized once for many receivers (fan-out, room broadcasts)
//! need no per-receiver re-serialization: the member is spliced in after the
//! frame's `type` while the frame's head and shared body are joined into the
//! one text the socket is given.

use std::cell::RefCell;
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

/// The last formatted time, per thread, and the millisecond it names: a
/// fan-out writes hundreds of pushes within one millisecond, and the
/// timestamp has millisecond precision, so each is formatted once.
struct FormattedNow {
    millis: u128,
    text: String,
}

thread_local! {
    static NOW: RefCell<FormattedNow> = const {
        RefCell::new(FormattedNow { millis: u128::MAX, text: String::new() })
    };
}

/// Calls `with` with the current time as the protocol's timestamp.
fn with_now<R>(with: impl FnOnce(&str) -> R) -> R {
    let now = SystemTime::now();
    let millis = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    NOW.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.millis != millis {
            cached.text.clear();
            let _ = write!(cached.text, "{}", humantime::format_rfc3339_millis(now));
            cached.millis = millis;
        }
        with(&cached.text)
    })
}

/// `frame` with `"server_time":"<now>"` added when it is a push; replies pass
/// unchanged. A push comes back as one string, joined and stamped in a single
/// allocation (the socket needs one message text anyway), while it waited in
/// the queue with its body shared.
pub(crate) fn stamp_push(frame: Frame) -> Frame {
    let (head, shared) = match &frame {
        Frame::Whole(text) => (text.as_str(), ""),
        Frame::Spliced { head, shared } => (head.as_str(), shared.as_str()),
    };
    let Some(at) = push_insertion_point(head) else {
        return frame;
    };
    let text = with_now(|now| {
        let mut out =
            String::with_capacity(head.len() + MEMBER_PREFIX.len() + now.len() + 1 + shared.len());
        out.push_str(&head[..at]);
        out.push_str(MEMBER_PREFIX);
        out.push_str(now);
        out.push('"');
        out.push_str(&head[at..]);
        out.push_str(shared);
        out
    });
    Frame::Whole(text.into())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use tidewire_protocol::{asyncapi, ServerMessage};

    use super::*;

    fn stamped(message: &ServerMessage) -> Value {
        let frame = stamp_push(Frame::Whole(message.to_json().into()));
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
        let Frame::Whole(text) = stamp_push(frame) else {
            panic!("a stamped push is one text");
        };
        let value: Value = serde_json::from_str(&text).expect("a stamped frame is JSON");
        assert!(text.starts_with(r#"{"type":"change","server_time":""#));
        assert!(text.ends_with(r#","subscription":"s1","event":{"k":1}}"#));
        assert_eq!(value["event"]["k"], 1);
    }

    #[test]
    fn the_stamp_is_the_time_of_the_write() {
        let stamp = |frame: Frame| -> String {
            let text = stamp_push(frame).into_text();
            let value: Value = serde_json::from_str(&text).unwrap();
            value["server_time"].as_str().unwrap().to_string()
        };
        let push = || Frame::Whole(r#"{"type":"heartbeat","subscriptions":[]}"#.into());
        let before = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let first = stamp(push());
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = stamp(push());
        let after = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        // RFC 3339 UTC timestamps of one length order as text.
        assert!(before <= first && first < second && second <= after);
    }
}
