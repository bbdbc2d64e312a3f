//! Which filter paths can resolve in a change event (spec section 8.4).
//!
//! The answer is read from the change event's own JSON Schema, so a member
//! added to [`ChangeEvent`] is a filter path as soon as it is on the wire,
//! with no second list to keep in step.

use std::sync::OnceLock;

use serde_json::Value;

use crate::types::ChangeEvent;

/// Where a path leaves the change event: the index of its first segment that
/// can never resolve, and the member the client probably meant there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnresolvablePath {
    pub segment: usize,
    pub suggestion: Option<String>,
}

fn event_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_json::to_value(schemars::schema_for!(ChangeEvent))
            .expect("a generated schema is JSON")
    })
}

/// `Ok` when some change event can have a value at `path` (a dotted path of
/// section 15.1), else where and why not. `added` names members a server adds
/// to every object of its events beyond the schema (section 22 lets it), which
/// its events therefore have.
pub fn check_event_path(path: &str, added: &[&str]) -> Result<(), UnresolvablePath> {
    let root = event_schema();
    let segments: Vec<&str> = path.split('.').collect();
    match walk(root, root, &segments, 0, added) {
        Walk::Resolves => Ok(()),
        Walk::StopsAt(segment, suggestion) => Err(UnresolvablePath {
            segment,
            suggestion,
        }),
    }
}

enum Walk {
    Resolves,
    StopsAt(usize, Option<String>),
}

fn walk(root: &Value, schema: &Value, segments: &[&str], at: usize, added: &[&str]) -> Walk {
    let Some(segment) = segments.get(at) else {
        return Walk::Resolves;
    };
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let target = reference
            .strip_prefix("#/$defs/")
            .and_then(|name| root.get("$defs")?.get(name));
        return match target {
            Some(target) => walk(root, target, segments, at, added),
            // An unresolved reference says nothing: accept rather than refuse.
            None => Walk::Resolves,
        };
    }
    if let Some(branches) = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
    {
        let mut first_stop = None;
        for branch in branches {
            match walk(root, branch, segments, at, added) {
                Walk::Resolves => return Walk::Resolves,
                stop => {
                    first_stop.get_or_insert(stop);
                }
            }
        }
        return first_stop.unwrap_or(Walk::Resolves);
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        // No type: any value, so any path below it.
        _ => return Walk::Resolves,
    };
    if types.contains(&"object") {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            // A map of the client's data (`full_document`): every member may exist.
            return Walk::Resolves;
        };
        if let Some(member) = properties.get(*segment) {
            return walk(root, member, segments, at + 1, added);
        }
        if added.contains(segment) {
            return Walk::Resolves;
        }
        let snake = snake_case(segment);
        let suggestion = properties.contains_key(&snake).then_some(snake);
        return Walk::StopsAt(at, suggestion);
    }
    if types.contains(&"array") {
        if !is_index(segment) {
            return Walk::StopsAt(at, None);
        }
        return match schema.get("items") {
            Some(items) => walk(root, items, segments, at + 1, added),
            None => Walk::Resolves,
        };
    }
    // A string, number, boolean or null has nothing below it.
    Walk::StopsAt(at, None)
}

/// A canonical decimal array index, as section 15.1 reads one.
fn is_index(segment: &str) -> bool {
    !segment.is_empty()
        && segment.bytes().all(|b| b.is_ascii_digit())
        && (segment == "0" || !segment.starts_with('0'))
}

/// `fullDocument` -> `full_document`.
fn snake_case(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len() + 4);
    for c in segment.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_the_event_resolve() {
        for path in [
            "operation_type",
            "ns",
            "ns.database",
            "ns.collection",
            "document_key._id",
            "full_document",
            "full_document.a.b.c",
            "full_document.tags.0",
            "update_description.updated_fields.x.y",
            "update_description.removed_fields",
            "update_description.removed_fields.0",
            "committed_at",
            "resume_token",
        ] {
            assert_eq!(check_event_path(path, &[]), Ok(()), "{path}");
        }
    }

    #[test]
    fn members_a_server_adds_resolve_on_that_server_only() {
        for path in ["x_extra", "ns.x_extra", "update_description.x_extra.deeper"] {
            assert_eq!(check_event_path(path, &["x_extra"]), Ok(()), "{path}");
            assert!(check_event_path(path, &[]).is_err(), "{path}");
        }
    }

    #[test]
    fn paths_outside_the_event_stop_where_they_leave_it() {
        let cases: [(&str, usize, Option<&str>); 9] = [
            ("fullDocument.x", 0, Some("full_document")),
            ("operationType", 0, Some("operation_type")),
            ("documentKey._id", 0, Some("document_key")),
            ("status", 0, None),
            ("ns.db", 1, None),
            ("document_key.id", 1, None),
            ("document_key._id.x", 2, None),
            ("committed_at.year", 1, None),
            ("update_description.removed_fields.first", 2, None),
        ];
        for (path, segment, suggestion) in cases {
            assert_eq!(
                check_event_path(path, &[]),
                Err(UnresolvablePath {
                    segment,
                    suggestion: suggestion.map(str::to_string)
                }),
                "{path}"
            );
        }
    }
}
