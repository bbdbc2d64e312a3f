//! The server time every push carries (`server_time`, TW-TIME-1).
//!
//! It is written in one place, as a frame goes to the socket, so that it is
//! the time the push was sent rather than when it was built or queued, and so
//! that frames serialized once for many receivers (fan-out, room broadcasts)
//! need no per-receiver re-serialization: the member is spliced in after the
//! frame's `type`, into the small head where a frame has one.

use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::outbound::Frame;
use crate::util::now_timestamp;

const TYPE_PREFIX: &str = r#"{"type":""#;

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

/// `frame` with `"server_time":"<now>"` added when it is a push; replies pass unchanged.
pub(crate) fn stamp_push(frame: Frame) -> Frame {
    let head = match &frame {
        Frame::Whole(text) => text,
        Frame::Spliced { head, .. } => head,
    };
    let Some(at) = push_insertion_point(head) else {
        return frame;
    };
    let stamp = format!(r#","server_time":"{}""#, now_timestamp().0);
    let splice = |text: &Utf8Bytes| -> Utf8Bytes {
        let mut out = String::with_capacity(text.len() + stamp.len());
        out.push_str(&text[..at]);
        out.push_str(&stamp);
        out.push_str(&text[at..]);
        out.into()
    };
    match frame {
        Frame::Whole(text) => Frame::Whole(splice(&text)),
        Frame::Spliced { head, shared } => Frame::Spliced {
            head: splice(&head),
            shared,
        },
    }
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
    fn a_spliced_frame_is_stamped_in_its_head() {
        let frame = Frame::Spliced {
            head: r#"{"type":"change","subscription":"s1","event":"#.into(),
            shared: r#"{"k":1}}"#.into(),
        };
        let Frame::Spliced { head, shared } = stamp_push(frame) else {
            panic!("a spliced frame stays spliced");
        };
        assert!(head.starts_with(r#"{"type":"change","server_time":""#));
        assert_eq!(shared.as_str(), r#"{"k":1}}"#);
    }
}
