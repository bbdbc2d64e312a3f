//! Turning one text frame into a [`ClientMessage`], or into the exact error
//! the specification names for it. Servers share this so that the order of
//! checks (and so the error a malformed frame gets) is the same everywhere.

use serde_json::{Map, Value};

use crate::error::ErrorCode;
use crate::messages::ClientMessage;
use crate::names::RequestId;
use crate::types::{ErrorBody, Object};
use crate::ErrorMessage;

/// Why a frame is not a valid client message, with the request id when one could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub id: Option<RequestId>,
    pub code: ErrorCode,
    pub message: String,
    /// The location of the bad field, as a dotted path, when known.
    pub path: Option<String>,
}

impl DecodeError {
    fn invalid(id: Option<RequestId>, message: impl Into<String>) -> DecodeError {
        DecodeError {
            id,
            code: ErrorCode::InvalidMessage,
            message: message.into(),
            path: None,
        }
    }

    /// The `error` message a server sends for this failure.
    pub fn to_error_message(&self) -> ErrorMessage {
        let details = self.path.as_ref().map(|path| {
            let mut details = Object::new();
            details.insert("path".into(), Value::String(path.clone()));
            details
        });
        ErrorMessage {
            id: self.id.clone(),
            error: ErrorBody {
                code: self.code.into(),
                message: self.message.clone(),
                details,
                retry: Some(self.code.recovery()),
            },
            server_time: None,
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for DecodeError {}

/// The deepest nesting of arrays and objects in `text`, counted without
/// parsing so that a hostile frame cannot exhaust the parser's stack first.
pub fn nesting_depth(text: &str) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The deepest nesting the JSON parser accepts (serde_json stops at its recursion
/// limit of 128 levels, counting the outermost): a server may announce no larger
/// `max_nesting_depth`, or a frame within its announced limit would be refused as
/// not JSON.
pub const MAX_PARSER_NESTING_DEPTH: usize = 127;

/// Decodes one text frame. The checks run in the order the specification
/// gives: nesting, JSON syntax, object shape, `type`, `id`, then fields.
pub fn decode_client_message(text: &str, max_depth: usize) -> Result<ClientMessage, DecodeError> {
    let depth = nesting_depth(text);
    if depth > max_depth {
        return Err(DecodeError::invalid(
            None,
            format!("message nests {depth} levels deep; the limit is {max_depth}"),
        ));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|err| DecodeError::invalid(None, format!("frame is not valid JSON: {err}")))?;
    let Value::Object(mut object) = value else {
        return Err(DecodeError::invalid(
            None,
            "a message must be a JSON object",
        ));
    };
    let id = object
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| RequestId::new(id).ok());
    let tag = match object.remove("type") {
        Some(Value::String(tag)) => tag,
        Some(_) => {
            return Err(DecodeError {
                path: Some("type".into()),
                ..DecodeError::invalid(id, "`type` must be a string")
            })
        }
        None => {
            return Err(DecodeError {
                path: Some("type".into()),
                ..DecodeError::invalid(id, "a message must have a `type`")
            })
        }
    };
    if !ClientMessage::TAGS.contains(&tag.as_str()) {
        let shown: String = tag.chars().take(64).collect();
        return Err(DecodeError {
            id,
            code: ErrorCode::UnknownType,
            message: format!("unknown message type {shown:?}"),
            path: Some("type".into()),
        });
    }
    if id.is_none() {
        let message = match object.get("id") {
            None => "a request must have an `id`",
            Some(Value::String(_)) => "`id` must be 1 to 128 printable ASCII characters",
            Some(_) => "`id` must be a string",
        };
        return Err(DecodeError {
            path: Some("id".into()),
            ..DecodeError::invalid(None, message)
        });
    }
    decode_fields(&tag, object, id)
}

fn decode_fields(
    tag: &str,
    object: Map<String, Value>,
    id: Option<RequestId>,
) -> Result<ClientMessage, DecodeError> {
    match ClientMessage::from_tagged_value(tag, Value::Object(object)) {
        Some(Ok(message)) => Ok(message),
        Some(Err(err)) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let path = (path != ".").then_some(path);
            let message = match &path {
                Some(path) => format!("invalid `{tag}` message at `{path}`: {inner}"),
                None => format!("invalid `{tag}` message: {inner}"),
            };
            Err(DecodeError {
                path,
                ..DecodeError::invalid(id, message)
            })
        }
        None => unreachable!("tags were checked against ClientMessage::TAGS"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPTH: usize = 32;

    fn decode(text: &str) -> Result<ClientMessage, DecodeError> {
        decode_client_message(text, DEPTH)
    }

    fn ping_nested(depth: usize) -> String {
        // The message object is the first level.
        let inner = depth - 1;
        format!(
            r#"{{"type":"ping","id":"1","payload":{}{}}}"#,
            "[".repeat(inner),
            "]".repeat(inner)
        )
    }

    #[test]
    fn the_parser_takes_every_depth_a_server_may_announce() {
        let deepest = ping_nested(MAX_PARSER_NESTING_DEPTH);
        assert_eq!(nesting_depth(&deepest), MAX_PARSER_NESTING_DEPTH);
        decode_client_message(&deepest, MAX_PARSER_NESTING_DEPTH).unwrap();
        // One level more is beyond the parser, which is why no server may announce it.
        let beyond = ping_nested(MAX_PARSER_NESTING_DEPTH + 1);
        let err = decode_client_message(&beyond, MAX_PARSER_NESTING_DEPTH + 1).unwrap_err();
        assert!(err.message.contains("not valid JSON"), "{}", err.message);
    }

    #[test]
    fn decodes_a_ping() {
        let message = decode(r#"{"type":"ping","id":"1","payload":{"n":1}}"#).unwrap();
        assert_eq!(message.tag(), "ping");
        assert_eq!(message.id().as_str(), "1");
    }

    #[test]
    fn each_malformation_gets_its_code_and_keeps_the_id_where_readable() {
        let cases: &[(&str, ErrorCode, Option<&str>)] = &[
            ("not json", ErrorCode::InvalidMessage, None),
            ("[1,2]", ErrorCode::InvalidMessage, None),
            (r#"{"id":"a"}"#, ErrorCode::InvalidMessage, Some("a")),
            (
                r#"{"type":7,"id":"a"}"#,
                ErrorCode::InvalidMessage,
                Some("a"),
            ),
            (
                r#"{"type":"nope","id":"a"}"#,
                ErrorCode::UnknownType,
                Some("a"),
            ),
            (r#"{"type":"ping"}"#, ErrorCode::InvalidMessage, None),
            (r#"{"type":"ping","id":5}"#, ErrorCode::InvalidMessage, None),
            (
                r#"{"type":"ping","id":""}"#,
                ErrorCode::InvalidMessage,
                None,
            ),
            (
                r#"{"type":"read","id":"r","database":"d","collection":"c","limit":"ten"}"#,
                ErrorCode::InvalidMessage,
                Some("r"),
            ),
            (
                r#"{"type":"create","id":"c","database":"a.b","collection":"c","record":{}}"#,
                ErrorCode::InvalidMessage,
                Some("c"),
            ),
        ];
        for (text, code, id) in cases {
            let err = decode(text).expect_err(text);
            assert_eq!(err.code, *code, "{text}: {err}");
            assert_eq!(err.id.as_ref().map(|id| id.as_str()), *id, "{text}");
        }
    }

    #[test]
    fn field_errors_name_the_path() {
        let err =
            decode(r#"{"type":"read","id":"r","database":"d","collection":"c","limit":"ten"}"#)
                .unwrap_err();
        assert_eq!(err.path.as_deref(), Some("limit"));
        assert!(err.message.contains("`limit`"), "{}", err.message);
        let err = decode(
            r#"{"type":"edit","id":"e","room":"r","document":"d","version":1,"ops":[{"op":"insert","position":-1,"text":"x"}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.path.as_deref(), Some("ops[0]"), "{}", err.message);
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!(
            r#"{{"type":"ping","id":"1","payload":{}{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let err = decode(&deep).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidMessage);
        assert!(err.message.contains("nests"), "{}", err.message);
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        assert_eq!(nesting_depth(r#"{"a":"[[[[{{{{\"]]"}"#), 1);
        assert_eq!(nesting_depth(r#"[[{"a":[1]}]]"#), 4);
    }
}
