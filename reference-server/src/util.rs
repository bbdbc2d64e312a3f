//! Small helpers shared by several modules.

use std::time::SystemTime;

use serde_json::{Map, Value};
use tidewire_protocol::{ErrorBody, ErrorCode, Object, Recovery, Timestamp};

/// The current instant as the protocol's RFC 3339 UTC timestamp, millisecond precision.
pub(crate) fn now_timestamp() -> Timestamp {
    timestamp(SystemTime::now())
}

pub(crate) fn timestamp(at: SystemTime) -> Timestamp {
    Timestamp(humantime::format_rfc3339_millis(at).to_string())
}

/// Builds an error body with optional details.
pub(crate) fn error(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
    ErrorBody {
        code: code.into(),
        message: message.into(),
        details: None,
        retry: Some(code.recovery()),
    }
}

pub(crate) fn error_with(
    code: ErrorCode,
    message: impl Into<String>,
    key: &str,
    value: impl Into<Value>,
) -> ErrorBody {
    let mut details = Object::new();
    details.insert(key.to_string(), value.into());
    ErrorBody {
        code: code.into(),
        message: message.into(),
        details: Some(details),
        retry: Some(code.recovery()),
    }
}

/// `body` with its `retry` class (TW-XERR-1): the registry's for a registry code;
/// for an application's code without one, `terminal`, since nothing says that
/// repeating the request could succeed.
pub(crate) fn with_retry(mut body: ErrorBody) -> ErrorBody {
    if body.retry.is_none() {
        body.retry = Some(
            body.code
                .registry()
                .map_or(Recovery::Terminal, ErrorCode::recovery),
        );
    }
    body
}

pub(crate) fn invalid_at(path: impl Into<String>, message: impl Into<String>) -> ErrorBody {
    error_with(ErrorCode::InvalidMessage, message, "path", path.into())
}

/// JSON-encodes a string, quotes included, for splicing into pre-serialized frames.
pub(crate) fn json_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// Looks up a dotted path the way the filter crate does, so projections and
/// filters agree on what a path names.
pub(crate) fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    tidewire_filter::lookup(doc, path)
}

/// Why [`set_path`] refused a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SetPathError {
    #[error(transparent)]
    InvalidPath(#[from] tidewire_filter::FilterErrorKind),
    #[error("cannot set `{path}`: `{prefix}` is not an object")]
    NotAnObject { path: String, prefix: String },
}

/// Inserts `value` at a dotted path in `target`, creating intermediate objects.
/// Fails (without changing anything) when an intermediate value exists but is
/// not an object, or a segment is empty.
pub(crate) fn set_path(
    target: &mut Map<String, Value>,
    path: &str,
    value: Value,
) -> Result<(), SetPathError> {
    tidewire_filter::check_path(path)?;
    let segments: Vec<&str> = path.split('.').collect();
    // Check first so that a failure leaves the object untouched.
    {
        let mut current: &Map<String, Value> = target;
        for (index, segment) in segments[..segments.len() - 1].iter().enumerate() {
            match current.get(*segment) {
                None => break,
                Some(Value::Object(inner)) => current = inner,
                Some(_) => {
                    return Err(SetPathError::NotAnObject {
                        path: path.to_string(),
                        prefix: segments[..=index].join("."),
                    });
                }
            }
        }
    }
    let mut current = target;
    for segment in &segments[..segments.len() - 1] {
        let entry = current
            .entry(segment.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        current = match entry {
            Value::Object(inner) => inner,
            _ => unreachable!("intermediate values were checked to be objects"),
        };
    }
    current.insert(segments[segments.len() - 1].to_string(), value);
    Ok(())
}

/// Removes the value at a dotted path; returns whether it existed.
pub(crate) fn unset_path(target: &mut Map<String, Value>, path: &str) -> bool {
    let mut segments = path.split('.').peekable();
    let mut current = target;
    while let Some(segment) = segments.next() {
        if segments.peek().is_none() {
            return current.shift_remove(segment).is_some();
        }
        match current.get_mut(segment) {
            Some(Value::Object(inner)) => current = inner,
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn set_path_creates_intermediates_and_refuses_scalars() {
        let mut o = obj(json!({"a": 1}));
        set_path(&mut o, "b.c.d", json!(2)).unwrap();
        assert_eq!(
            Value::Object(o.clone()),
            json!({"a": 1, "b": {"c": {"d": 2}}})
        );
        let err = set_path(&mut o, "a.x", json!(3)).unwrap_err();
        assert_eq!(err.to_string(), "cannot set `a.x`: `a` is not an object");
        assert_eq!(o["a"], json!(1));
        assert!(matches!(
            set_path(&mut o, "a..b", json!(1)),
            Err(SetPathError::InvalidPath(_))
        ));
    }

    #[test]
    fn unset_path_reports_existence() {
        let mut o = obj(json!({"a": {"b": 1, "c": 2}}));
        assert!(unset_path(&mut o, "a.b"));
        assert!(!unset_path(&mut o, "a.b"));
        assert!(!unset_path(&mut o, "x.y"));
        assert_eq!(Value::Object(o), json!({"a": {"c": 2}}));
    }

    #[test]
    fn timestamps_are_rfc3339_utc_millis() {
        let ts = timestamp(SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_500));
        assert_eq!(ts.0, "1970-01-01T00:00:01.500Z");
    }
}
