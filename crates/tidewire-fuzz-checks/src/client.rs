//! The server's side of a client's bytes: the frame checks of section 4.1 and
//! the decoding of section 4.3, checked against an oracle written from the
//! specification rather than from `decode_client_message`.

use std::io::{Read, Write};

use arbitrary::Unstructured;
use serde_json::{Map, Value};
use tidewire_protocol::{decode_client_message, ClientMessage, DecodeError, ErrorCode};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;

use crate::gen;

/// The reference server's default `limits.max_nesting_depth`.
pub const MAX_NESTING_DEPTH: usize = 32;
/// The reference server's default `limits.max_message_bytes`.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// What section 4 lets a server do with one complete message.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Decoded: the request goes on to processing (section 4.4).
    Message(ClientMessage),
    /// An `error` reply; the connection stays open.
    Error(DecodeError),
    /// The connection closes with this code.
    Close(u16),
}

/// Applies the frame checks of section 4.1 to one text message's payload,
/// then decodes it. Binary frames never reach this: see [`check_ws_frames`].
pub fn frame_outcome(payload: &[u8], max_message_bytes: usize) -> Outcome {
    if payload.len() > max_message_bytes {
        return Outcome::Close(1009);
    }
    match std::str::from_utf8(payload) {
        Err(_) => Outcome::Close(1007),
        Ok(text) => match decode_client_message(text, MAX_NESTING_DEPTH) {
            Ok(message) => Outcome::Message(message),
            Err(err) => Outcome::Error(err),
        },
    }
}

/// Fuzz target `client_frame`: the bytes are one text frame's payload.
pub fn check_client_frame(bytes: &[u8]) {
    match frame_outcome(bytes, MAX_MESSAGE_BYTES) {
        Outcome::Close(code) => {
            assert_eq!(
                code, 1007,
                "only the UTF-8 check can fail below the size limit"
            );
            assert!(std::str::from_utf8(bytes).is_err());
        }
        _ => check_decoding(std::str::from_utf8(bytes).expect("decoded frames are UTF-8")),
    }
}

/// Fuzz target `client_message`: a message shaped from the bytes (a known or
/// unknown `type`, an `id` that is valid or not, members named like those of
/// the client schemas holding values of any type), serialized and decoded.
pub fn check_client_message(bytes: &[u8]) {
    let mut u = Unstructured::new(bytes);
    let Ok(text) = shaped_message(&mut u) else {
        return;
    };
    check_decoding(&text);
}

/// Member names of the client message schemas (`spec/schema/client/`).
const FIELDS: &[&str] = &[
    "active",
    "before",
    "body",
    "collection",
    "data",
    "database",
    "document",
    "field",
    "fields",
    "filter",
    "full_document",
    "id",
    "length",
    "limit",
    "offset",
    "op",
    "ops",
    "order",
    "payload",
    "pipeline",
    "position",
    "record",
    "record_id",
    "resume_after",
    "role",
    "room",
    "set",
    "sort",
    "subscription",
    "text",
    "token",
    "topic",
    "type",
    "unset",
    "version",
];

fn shaped_message(u: &mut Unstructured) -> arbitrary::Result<String> {
    let mut object = Map::new();
    if u.ratio(15, 16)? {
        let tag = match u.int_in_range(0..=7)? {
            0 => Value::String(gen::string(u)?),
            1 => gen::value(u, 1)?,
            _ => Value::String(u.choose(ClientMessage::TAGS)?.to_string()),
        };
        object.insert("type".into(), tag);
    }
    if u.ratio(15, 16)? {
        let id = match u.int_in_range(0..=7)? {
            0 => gen::value(u, 1)?,
            1 => Value::String(gen::string(u)?),
            2 => Value::String("x".repeat(u.int_in_range(127..=129)?)),
            _ => Value::String(u.choose(&["1", "r7", "a b", "~!", "\u{7f}"])?.to_string()),
        };
        object.insert("id".into(), id);
    }
    for _ in 0..u.int_in_range(0..=6)? {
        let name = u.choose(FIELDS)?.to_string();
        let value = match u.int_in_range(0..=9)? {
            0..=2 => Value::String(
                u.choose(&[
                    "app", "users", "r1", "a.b", "", "insert", "asc", "owner", "1",
                ])?
                .to_string(),
            ),
            3 => Value::from(u.int_in_range(-2i64..=3)?),
            4 => Value::Array(vec![Value::Object(gen::object(u, 1)?)]),
            _ => gen::value(u, gen::MAX_VALUE_DEPTH)?,
        };
        object.insert(name, value);
    }
    let text = Value::Object(object).to_string();
    // Nesting is refused before parsing; wrap the message to probe the limit
    // and the counter's handling of strings and escapes around it.
    Ok(match u.int_in_range(0..=15)? {
        0 => {
            let levels = u.int_in_range(MAX_NESTING_DEPTH - 2..=MAX_NESTING_DEPTH + 1)?;
            format!(
                r#"{{"type":"ping","id":"d","payload":{}{}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
            .replacen("[]", &format!("[{text}]"), 1)
        }
        1 => {
            let cut = u.int_in_range(0..=text.len())?;
            text.get(..cut).unwrap_or(&text).to_string()
        }
        _ => text,
    })
}

/// A request id as section 3.2 defines it: 1 to 128 printable ASCII characters.
fn is_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// How deep arrays and objects nest in a parsed value; the message itself is 1.
fn value_depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(value_depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(value_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Whether a `details.path` (`limit`, `sort[1].field`, `ops[0]`) names a
/// member present in `value`. Keys may themselves hold `.` or `[`, so every
/// key that fits the start of the path is tried.
pub fn path_exists(value: &Value, path: &str) -> bool {
    if path.is_empty() {
        return true;
    }
    match value {
        Value::Array(items) => {
            let Some(rest) = path.strip_prefix('[') else {
                return false;
            };
            let Some((index, rest)) = rest.split_once(']') else {
                return false;
            };
            let rest = rest.strip_prefix('.').unwrap_or(rest);
            match index.parse::<usize>().ok().and_then(|i| items.get(i)) {
                Some(item) => path_exists(item, rest),
                None => false,
            }
        }
        Value::Object(map) => map.iter().any(|(key, member)| {
            let Some(rest) = path.strip_prefix(key.as_str()) else {
                return false;
            };
            if rest.is_empty() {
                true
            } else if let Some(rest) = rest.strip_prefix('.') {
                !rest.is_empty() && path_exists(member, rest)
            } else {
                rest.starts_with('[') && path_exists(member, rest)
            }
        }),
        _ => false,
    }
}

fn expect_error(
    result: &Result<ClientMessage, DecodeError>,
    text: &str,
    code: ErrorCode,
    id: Option<&str>,
    path: Option<&str>,
) {
    let err = match result {
        Ok(message) => {
            panic!("{text:?} decoded as {message:?}; section 4.3 refuses it with {code}")
        }
        Err(err) => err,
    };
    assert_eq!(err.code, code, "{text:?}: {err}");
    assert_eq!(err.id.as_ref().map(|id| id.as_str()), id, "{text:?}: {err}");
    assert_eq!(err.path.as_deref(), path, "{text:?}: {err}");
    assert!(!err.message.is_empty());
    let reply = err.to_error_message();
    assert_eq!(reply.id, err.id);
}

/// The checks of section 4.3, in order, with the exact error each one gives.
pub fn check_decoding(text: &str) {
    let result = decode_client_message(text, MAX_NESTING_DEPTH);
    let invalid = ErrorCode::InvalidMessage;
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        // Checks 5 and 6 both answer `invalid_message` with no id and no path.
        return expect_error(&result, text, invalid, None, None);
    };
    if value_depth(&value) > MAX_NESTING_DEPTH {
        return expect_error(&result, text, invalid, None, None);
    }
    let Value::Object(object) = &value else {
        return expect_error(&result, text, invalid, None, None);
    };
    let readable = object
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| is_request_id(id));
    let tag = match object.get("type") {
        Some(Value::String(tag)) => tag,
        _ => return expect_error(&result, text, invalid, readable, Some("type")),
    };
    if !ClientMessage::TAGS.contains(&tag.as_str()) {
        return expect_error(
            &result,
            text,
            ErrorCode::UnknownType,
            readable,
            Some("type"),
        );
    }
    let Some(id) = readable else {
        return expect_error(&result, text, invalid, None, Some("id"));
    };
    match result {
        Ok(message) => {
            assert_eq!(message.tag(), tag, "{text:?}");
            assert_eq!(message.id().as_str(), id, "{text:?}");
            // What was accepted must say the same thing when sent again.
            let again = serde_json::to_string(&message).expect("client messages serialize");
            let decoded = decode_client_message(&again, MAX_NESTING_DEPTH).unwrap_or_else(|err| {
                panic!("{text:?} decoded, but its re-encoding {again:?} fails: {err}")
            });
            assert_eq!(decoded, message, "{text:?} re-encoded as {again:?}");
        }
        Err(err) => {
            assert_eq!(err.code, invalid, "{text:?}: {err}");
            assert_eq!(
                err.id.as_ref().map(|id| id.as_str()),
                Some(id),
                "{text:?}: {err}"
            );
            if let Some(path) = &err.path {
                let mut members = object.clone();
                members.remove("type");
                assert!(
                    path_exists(&Value::Object(members), path),
                    "{text:?}: details.path {path:?} names no member of the frame ({err})"
                );
            }
        }
    }
}

/// An in-memory peer: reads come from the fuzz input, writes are counted.
struct Peer<'a> {
    input: &'a [u8],
    written: usize,
}

impl Read for Peer<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Peer<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.written += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The message size limit of the frames target: small, so that fuzzed frames
/// cross it (the server takes it from `Config::max_message_bytes`).
pub const FRAMES_MAX_MESSAGE_BYTES: usize = 256;

/// Fuzz target `ws_frames`: the bytes are what a client sends after the
/// upgrade. The server's WebSocket layer, configured as the server configures
/// it, turns them into messages; each ends in one outcome of section 4.
pub fn check_ws_frames(bytes: &[u8]) {
    let config = WebSocketConfig::default()
        .max_message_size(Some(FRAMES_MAX_MESSAGE_BYTES))
        .max_frame_size(Some(FRAMES_MAX_MESSAGE_BYTES));
    let peer = Peer {
        input: bytes,
        written: 0,
    };
    let mut ws = WebSocket::from_raw_socket(peer, Role::Server, Some(config));
    // Every message takes at least a two-byte header from the input.
    for _ in 0..=bytes.len() / 2 + 1 {
        match ws.read() {
            Ok(Message::Text(text)) => {
                assert!(
                    text.len() <= FRAMES_MAX_MESSAGE_BYTES,
                    "{} bytes passed the limit",
                    text.len()
                );
                check_decoding(&text);
            }
            Ok(Message::Binary(data)) => {
                assert!(
                    data.len() <= FRAMES_MAX_MESSAGE_BYTES,
                    "{} bytes passed the limit",
                    data.len()
                );
                // Closes with 1003 (section 4.1, check 2).
                break;
            }
            // Control frames are answered by the WebSocket layer.
            Ok(_) => {}
            // Capacity and UTF-8 errors close with 1009 and 1007 (checks 1 and
            // 3); protocol errors and the end of the input close the transport.
            Err(_) => break,
        }
    }
    // Pongs and the close reply are all the server writes: bounded by the input.
    let written = ws.get_ref().written;
    assert!(
        written <= 2 * bytes.len() + 256,
        "wrote {written} bytes for {} read",
        bytes.len()
    );
}
