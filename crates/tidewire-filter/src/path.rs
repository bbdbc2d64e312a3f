//! Dotted field paths.

use serde_json::Value;

use crate::FilterErrorKind;

/// One pre-parsed path segment. The array index is decided once at parse time
/// so evaluation never re-parses digits.
#[derive(Clone, Debug)]
struct Segment {
    key: Box<str>,
    index: Option<usize>,
}

/// A dotted path compiled for repeated lookups.
#[derive(Clone, Debug)]
pub(crate) struct FieldPath {
    segments: Box<[Segment]>,
}

/// `Some(n)` for a canonical non-negative decimal (`0`, `7`, `12`, not `07`
/// or `+1`) that fits in `usize`.
fn array_index(segment: &str) -> Option<usize> {
    let bytes = segment.as_bytes();
    let canonical = !bytes.is_empty()
        && bytes.iter().all(u8::is_ascii_digit)
        && (bytes[0] != b'0' || bytes.len() == 1);
    if canonical {
        segment.parse().ok()
    } else {
        None
    }
}

fn step<'a>(value: &'a Value, key: &str, index: Option<usize>) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map.get(key),
        Value::Array(items) => index.and_then(|i| items.get(i)),
        _ => None,
    }
}

/// Checks that `path` is a path: one or more non-empty segments separated by
/// `.`. A path with an empty segment (`""`, `a..b`, `.a`, `a.`) is refused with
/// [`FilterErrorKind::InvalidPath`].
///
/// Filters check their keys with this; servers use it for every other dotted
/// path a request names (update paths, projections, sort keys), so that all of
/// them agree on what a path is.
///
/// ```
/// use tidewire_filter::{check_path, FilterErrorKind};
///
/// assert!(check_path("address.city").is_ok());
/// assert!(check_path("items.0").is_ok());
/// assert_eq!(check_path("a..b"), Err(FilterErrorKind::InvalidPath("a..b".into())));
/// assert!(check_path("").is_err());
/// ```
pub fn check_path(path: &str) -> Result<(), FilterErrorKind> {
    if path.split('.').any(str::is_empty) {
        return Err(FilterErrorKind::InvalidPath(path.to_string()));
    }
    Ok(())
}

impl FieldPath {
    /// Fails when [`check_path`] refuses the path.
    pub(crate) fn parse(path: &str) -> Result<FieldPath, FilterErrorKind> {
        check_path(path)?;
        let segments = path
            .split('.')
            .map(|s| Segment {
                key: s.into(),
                index: array_index(s),
            })
            .collect();
        Ok(FieldPath { segments })
    }

    pub(crate) fn resolve<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        self.segments
            .iter()
            .try_fold(doc, |v, s| step(v, &s.key, s.index))
    }
}

/// Resolves a dotted path inside a document; `None` means the field is missing.
/// The path is not checked: callers refuse invalid paths with [`check_path`]
/// first.
///
/// Each `.`-separated segment selects an object member by name. When the current
/// value is an array, the segment must be a canonical non-negative decimal
/// integer (`0`, `1`, `12`, but not `01`) and selects that element. There is
/// no implicit traversal of arrays: `items.name` on `{"items": [{"name": "a"}]}`
/// is missing, because `name` is not an index. This keeps one path pointing at
/// one value, which sorting and projection need; filters that must look inside
/// arrays name the element (`items.0.name`).
///
/// A segment that looks like an index still selects a member of an object
/// (`{"0": true}` has a field `0`). Scalars and `null` have no fields.
///
/// ```
/// use serde_json::json;
/// use tidewire_filter::lookup;
///
/// let doc = json!({"fullDocument": {"items": [{"sku": "A1"}]}});
/// assert_eq!(lookup(&doc, "fullDocument.items.0.sku"), Some(&json!("A1")));
/// assert_eq!(lookup(&doc, "fullDocument.items.sku"), None);
/// ```
pub fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(doc, |v, s| step(v, s, array_index(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn index_segments_must_be_canonical() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("12"), Some(12));
        assert_eq!(array_index("01"), None);
        assert_eq!(array_index("+1"), None);
        assert_eq!(array_index("-1"), None);
        assert_eq!(array_index(""), None);
        assert_eq!(array_index("99999999999999999999999999"), None);
    }

    #[test]
    fn compiled_and_ad_hoc_lookup_agree() {
        let doc = json!({"a": [{"b": 1}, {"0": "zero"}], "0": {"c": null}});
        for p in [
            "a", "a.0", "a.0.b", "a.1.0", "a.01", "a.b", "0.c", "0.c.d", "x",
        ] {
            let compiled = FieldPath::parse(p).expect("valid path");
            assert_eq!(check_path(p), Ok(()), "{p}");
            assert_eq!(compiled.resolve(&doc), lookup(&doc, p), "{p}");
        }
        assert_eq!(lookup(&doc, "a.1.0"), Some(&json!("zero")));
        assert_eq!(lookup(&doc, "0.c"), Some(&json!(null)));
        assert_eq!(lookup(&doc, "a.b"), None);
    }

    #[test]
    fn empty_segments_are_rejected() {
        for p in ["", ".", ".a", "a.", "a..b", "a.b..", "..."] {
            assert!(FieldPath::parse(p).is_err(), "{p}");
            assert_eq!(
                check_path(p),
                Err(FilterErrorKind::InvalidPath(p.to_string())),
                "{p}"
            );
        }
    }
}
