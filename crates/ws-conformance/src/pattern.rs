//! The pattern language used by `expect`, `expect_all`, `expect_silence` and
//! `ignore` steps, and `${name}` interpolation of captured values.
//!
//! A pattern is plain JSON. Objects match partially; a key that starts with
//! `$` is a matcher directive, `$$` at the start of a key stands for a literal
//! `$`, and `{"$literal": value}` compares `value` by plain equality.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Values captured by `$capture`, keyed by variable name.
pub type Captures = BTreeMap<String, Value>;

const DIRECTIVES: &[&str] = &[
    "$type",
    "$any",
    "$regex",
    "$gte",
    "$gt",
    "$lte",
    "$lt",
    "$contains",
    "$length",
    "$absent",
    "$capture",
    "$exact",
    "$literal",
];

const TYPE_NAMES: &[&str] = &[
    "string", "number", "integer", "boolean", "null", "object", "array",
];

fn is_directive(key: &str) -> bool {
    key.starts_with('$') && !key.starts_with("$$")
}

/// The field name an object pattern key refers to (`$$x` means `$x`).
fn field_name(key: &str) -> &str {
    if key.starts_with("$$") {
        &key[1..]
    } else {
        key
    }
}

/// Checks a pattern for unknown directives, mistyped directive arguments and
/// invalid regexes, so that a broken fixture is refused before any case runs.
/// Errors are `(json pointer relative to the pattern, message)`.
pub fn validate(pattern: &Value) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    validate_at(pattern, "", true, &mut errors);
    errors.sort();
    errors
}

fn validate_at(p: &Value, at: &str, top: bool, errors: &mut Vec<(String, String)>) {
    match p {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                validate_at(item, &format!("{at}/{i}"), false, errors);
            }
        }
        Value::Object(map) => {
            let mut own = Vec::new();
            let mut err = |key: &str, msg: String| {
                own.push((format!("{at}/{}", escape_token(key)), msg));
            };
            if map.contains_key("$literal") {
                for key in map.keys() {
                    if key != "$literal" && key != "$capture" {
                        err(
                            key,
                            "`$literal` may only be combined with `$capture`".into(),
                        );
                    }
                }
            }
            if top && map.contains_key("$absent") {
                err(
                    "$absent",
                    "`$absent` only makes sense as the value of a field".into(),
                );
            }
            for (key, value) in map {
                if !is_directive(key) {
                    validate_at(value, &format!("{at}/{}", escape_token(key)), false, errors);
                    continue;
                }
                match key.as_str() {
                    "$type" => {
                        let names: Vec<&Value> = match value {
                            Value::Array(v) => v.iter().collect(),
                            other => vec![other],
                        };
                        for name in names {
                            if !name.as_str().is_some_and(|n| TYPE_NAMES.contains(&n)) {
                                err(key, format!("`$type` must be one of {TYPE_NAMES:?} (or a list of them), got {name}"));
                            }
                        }
                    }
                    "$any" | "$absent" | "$exact" => {
                        if !value.is_boolean() {
                            err(key, format!("`{key}` takes true or false"));
                        }
                    }
                    "$regex" => match value.as_str() {
                        Some(re) if !re.contains("${") => {
                            if let Err(e) = regex::Regex::new(re) {
                                err(key, format!("invalid regex: {e}"));
                            }
                        }
                        Some(_) => {}
                        None => err(key, "`$regex` takes a string".into()),
                    },
                    "$gte" | "$gt" | "$lte" | "$lt" => {
                        if !value.is_number() {
                            err(key, format!("`{key}` takes a number"));
                        }
                    }
                    "$contains" => match value {
                        Value::Array(items) => {
                            for (i, item) in items.iter().enumerate() {
                                validate_at(item, &format!("{at}/$contains/{i}"), false, errors);
                            }
                        }
                        _ => err(key, "`$contains` takes an array of patterns".into()),
                    },
                    "$length" => {
                        if !value.is_u64() {
                            err(key, "`$length` takes a whole number".into());
                        }
                    }
                    "$capture" => {
                        if !value
                            .as_str()
                            .is_some_and(|n| !n.is_empty() && !n.contains(['{', '}', '$']))
                        {
                            err(key, "`$capture` takes a variable name".into());
                        }
                    }
                    "$literal" => {}
                    _ => err(
                        key,
                        format!(
                            "unknown matcher `{key}` (known: {}); write `$${}` to match a literal field named `{key}`",
                            DIRECTIVES.join(", "),
                            &key[1..]
                        ),
                    ),
                }
            }
            errors.extend(own);
        }
        _ => {}
    }
}

fn escape_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// One reason a value did not match.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Mismatch {
    /// JSON pointer into the received value.
    pub path: String,
    pub expected: String,
    /// `None` when the field is missing.
    pub actual: Option<Value>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() {
            "(root)"
        } else {
            &self.path
        };
        match &self.actual {
            Some(actual) => write!(
                f,
                "at {path}: expected {}, got {}",
                self.expected,
                describe(actual)
            ),
            None => write!(
                f,
                "at {path}: expected {}, but the field is missing",
                self.expected
            ),
        }
    }
}

fn describe(v: &Value) -> String {
    let text = compact(v, 80);
    match v {
        Value::String(_) => format!("{text} (a string)"),
        Value::Number(_) => format!("{text} (a number)"),
        Value::Bool(_) => format!("{text} (a boolean)"),
        Value::Null => text,
        Value::Array(_) => format!("{text} (an array)"),
        Value::Object(_) => format!("{text} (an object)"),
    }
}

/// Compact JSON truncated to about `max` characters.
pub fn compact(v: &Value, max: usize) -> String {
    truncate(&v.to_string(), max)
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The result of matching a pattern against a value.
#[derive(Debug, Default)]
pub struct Outcome {
    pub mismatches: Vec<Mismatch>,
    pub captures: Captures,
}

impl Outcome {
    pub fn is_match(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Matches an (already interpolated) pattern against a received value.
pub fn matches(pattern: &Value, actual: &Value) -> Outcome {
    let mut out = Outcome::default();
    match_at(pattern, Some(actual), &mut String::new(), &mut out);
    if !out.is_match() {
        out.captures.clear();
    }
    out
}

fn fail(out: &mut Outcome, path: &str, expected: String, actual: Option<&Value>) {
    out.mismatches.push(Mismatch {
        path: path.to_string(),
        expected,
        actual: actual.cloned(),
    });
}

fn match_at(p: &Value, actual: Option<&Value>, path: &mut String, out: &mut Outcome) {
    let Value::Object(map) = p else {
        let Some(a) = actual else {
            return fail(out, path, compact(p, 80), None);
        };
        match (p, a) {
            (Value::Array(ps), Value::Array(items)) => {
                if ps.len() != items.len() {
                    return fail(
                        out,
                        path,
                        format!("an array of {} elements", ps.len()),
                        Some(a),
                    );
                }
                for (i, (pi, ai)) in ps.iter().zip(items).enumerate() {
                    let len = path.len();
                    path.push_str(&format!("/{i}"));
                    match_at(pi, Some(ai), path, out);
                    path.truncate(len);
                }
            }
            _ => {
                if !json_eq(p, a) {
                    fail(out, path, compact(p, 80), Some(a));
                }
            }
        }
        return;
    };

    if map.get("$absent").and_then(Value::as_bool) == Some(true) {
        if actual.is_some() {
            fail(out, path, "the field to be absent".into(), actual);
        }
        return;
    }
    let Some(a) = actual else {
        let expected = if map.get("$any").and_then(Value::as_bool) == Some(true) {
            "any value".to_string()
        } else {
            compact(p, 80)
        };
        return fail(out, path, expected, None);
    };
    let before = out.mismatches.len();

    if let Some(lit) = map.get("$literal") {
        if !json_eq(lit, a) {
            fail(out, path, compact(lit, 80), Some(a));
        }
    }
    if let Some(t) = map.get("$type") {
        let names: Vec<&str> = match t {
            Value::Array(v) => v.iter().filter_map(Value::as_str).collect(),
            other => other.as_str().into_iter().collect(),
        };
        if !names.iter().any(|n| has_type(a, n)) {
            fail(
                out,
                path,
                format!("a value of type {}", names.join(" or ")),
                Some(a),
            );
        }
    }
    if let Some(re) = map.get("$regex").and_then(Value::as_str) {
        match (regex::Regex::new(re), a.as_str()) {
            (Err(e), _) => fail(
                out,
                path,
                format!("a string matching /{re}/ (invalid regex: {e})"),
                Some(a),
            ),
            (Ok(compiled), Some(s)) if compiled.is_match(s) => {}
            _ => fail(out, path, format!("a string matching /{re}/"), Some(a)),
        }
    }
    let bounds: Vec<(&str, f64)> = ["$gte", "$gt", "$lte", "$lt"]
        .iter()
        .filter_map(|k| map.get(*k).and_then(Value::as_f64).map(|b| (*k, b)))
        .collect();
    if !bounds.is_empty() {
        let ok = a.as_f64().is_some_and(|x| {
            bounds.iter().all(|(k, b)| match *k {
                "$gte" => x >= *b,
                "$gt" => x > *b,
                "$lte" => x <= *b,
                _ => x < *b,
            })
        });
        if !ok {
            let words: Vec<String> = bounds
                .iter()
                .map(|(k, b)| {
                    let op = match *k {
                        "$gte" => ">=",
                        "$gt" => ">",
                        "$lte" => "<=",
                        _ => "<",
                    };
                    format!("{op} {b}")
                })
                .collect();
            fail(
                out,
                path,
                format!("a number {}", words.join(" and ")),
                Some(a),
            );
        }
    }
    if let Some(want) = map.get("$length").and_then(Value::as_u64) {
        match a.as_array() {
            Some(items) if items.len() as u64 == want => {}
            Some(items) => fail(
                out,
                path,
                format!("an array of {want} elements (it has {})", items.len()),
                Some(a),
            ),
            None => fail(out, path, format!("an array of {want} elements"), Some(a)),
        }
    }
    if let Some(Value::Array(wanted)) = map.get("$contains") {
        match a.as_array() {
            None => fail(out, path, "an array".into(), Some(a)),
            Some(items) => {
                let compatible: Vec<Vec<bool>> = wanted
                    .iter()
                    .map(|w| {
                        items
                            .iter()
                            .map(|item| matches(w, item).is_match())
                            .collect()
                    })
                    .collect();
                let assignment = assign(&compatible);
                for (wi, slot) in assignment.iter().enumerate() {
                    match slot {
                        Some(ii) => {
                            let m = matches(&wanted[wi], &items[*ii]);
                            out.captures.extend(m.captures);
                        }
                        None => fail(
                            out,
                            path,
                            format!(
                                "an array containing an element matching {}",
                                compact(&wanted[wi], 60)
                            ),
                            Some(a),
                        ),
                    }
                }
            }
        }
    }

    let fields: Vec<(&String, &Value)> = map.iter().filter(|(k, _)| !is_directive(k)).collect();
    let exact = map.get("$exact").and_then(Value::as_bool) == Some(true);
    if !fields.is_empty() || exact {
        match a.as_object() {
            None => fail(out, path, "an object".into(), Some(a)),
            Some(obj) => {
                for (key, pv) in &fields {
                    let name = field_name(key);
                    let len = path.len();
                    path.push('/');
                    path.push_str(&escape_token(name));
                    match_at(pv, obj.get(name), path, out);
                    path.truncate(len);
                }
                if exact {
                    for (key, value) in obj {
                        let listed = fields.iter().any(|(k, pv)| {
                            field_name(k) == key
                                && pv.get("$absent").and_then(Value::as_bool) != Some(true)
                        });
                        if !listed {
                            fail(
                                out,
                                &format!("{path}/{}", escape_token(key)),
                                "no such field (the pattern is `$exact`)".into(),
                                Some(value),
                            );
                        }
                    }
                }
            }
        }
    }

    if out.mismatches.len() == before {
        if let Some(name) = map.get("$capture").and_then(Value::as_str) {
            out.captures.insert(name.to_string(), a.clone());
        }
    }
}

fn has_type(v: &Value, name: &str) -> bool {
    match name {
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        _ => false,
    }
}

/// Equality that treats `1` and `1.0` as the same number.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Maximum bipartite matching: `compatible[w][i]` says whether wanted item
/// `w` may take slot `i`. Returns, for each wanted item, its slot if every
/// wanted item could be given a distinct one; partial otherwise.
pub fn assign(compatible: &[Vec<bool>]) -> Vec<Option<usize>> {
    let slots = compatible.first().map_or(0, Vec::len);
    let mut owner: Vec<Option<usize>> = vec![None; slots];
    for w in 0..compatible.len() {
        let mut seen = vec![false; slots];
        augment(w, compatible, &mut owner, &mut seen);
    }
    let mut result = vec![None; compatible.len()];
    for (slot, w) in owner.iter().enumerate() {
        if let Some(w) = w {
            result[*w] = Some(slot);
        }
    }
    result
}

fn augment(
    w: usize,
    compatible: &[Vec<bool>],
    owner: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for slot in 0..owner.len() {
        if compatible[w][slot] && !seen[slot] {
            seen[slot] = true;
            if owner[slot].is_none_or(|other| augment(other, compatible, owner, seen)) {
                owner[slot] = Some(w);
                return true;
            }
        }
    }
    false
}

/// Replaces `${name}` references in every string (keys and values).
///
/// A string that is exactly `"${name}"` becomes the captured JSON value
/// itself; inside a longer string a captured string is inserted as-is and
/// other values as compact JSON. `$${` is a literal `${`. When `for_pattern`
/// is set, captured objects are wrapped in `$literal` so that their content
/// is compared as data and never read as matcher directives.
pub fn interpolate(
    v: &Value,
    vars: &Captures,
    for_pattern: bool,
) -> Result<Value, InterpolationError> {
    Ok(match v {
        Value::String(s) => interpolate_whole(s, vars, for_pattern)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| interpolate(i, vars, for_pattern))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if k == "$capture" {
                    out.insert(k.clone(), v.clone());
                    continue;
                }
                out.insert(
                    interpolate_str(k, vars)?,
                    interpolate(v, vars, for_pattern)?,
                );
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

fn interpolate_whole(
    s: &str,
    vars: &Captures,
    for_pattern: bool,
) -> Result<Value, InterpolationError> {
    if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        if !name.contains(['{', '}', '$']) {
            let value = lookup(name, vars)?.clone();
            return Ok(if for_pattern && value.is_object() {
                serde_json::json!({ "$literal": value })
            } else {
                value
            });
        }
    }
    Ok(Value::String(interpolate_str(s, vars)?))
}

/// Interpolates into a string, stringifying non-string values.
pub fn interpolate_str(s: &str, vars: &Captures) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after
                .find('}')
                .ok_or_else(|| InterpolationError::Unterminated {
                    text: s.to_string(),
                })?;
            let value = lookup(&after[..end], vars)?;
            match value {
                Value::String(text) => out.push_str(text),
                other => out.push_str(&other.to_string()),
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup<'a>(name: &str, vars: &'a Captures) -> Result<&'a Value, InterpolationError> {
    vars.get(name).ok_or_else(|| InterpolationError::Unknown {
        name: name.to_string(),
        known: vars.keys().cloned().collect(),
    })
}

/// Why `${...}` references cannot be replaced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolationError {
    #[error("unterminated `${{` in {text:?}")]
    Unterminated { text: String },
    #[error(
        "`${{{name}}}` is used but was never captured nor given with --var (known: {})",
        known.join(", ")
    )]
    Unknown { name: String, known: Vec<String> },
}

/// Rebuilds the received value in the shape of the pattern: parts that match
/// are replaced by the pattern's own text, so that a line diff of pattern vs
/// projection shows only what differs and hides fields the pattern ignores.
pub fn project(pattern: &Value, actual: &Value) -> Value {
    if matches(pattern, actual).is_match() {
        return pattern.clone();
    }
    let (Value::Object(pmap), Value::Object(amap)) = (pattern, actual) else {
        if let (Value::Array(ps), Value::Array(items)) = (pattern, actual) {
            if ps.len() == items.len() {
                return Value::Array(ps.iter().zip(items).map(|(p, a)| project(p, a)).collect());
            }
        }
        return actual.clone();
    };
    let has_value_directive = pmap
        .keys()
        .any(|k| is_directive(k) && k != "$exact" && k != "$capture");
    if has_value_directive {
        return actual.clone();
    }
    let exact = pmap.get("$exact").and_then(Value::as_bool) == Some(true);
    let mut out = Map::new();
    for (key, pv) in pmap {
        if is_directive(key) {
            out.insert(key.clone(), pv.clone());
            continue;
        }
        let name = field_name(key);
        let absent = pv.get("$absent").and_then(Value::as_bool) == Some(true);
        match amap.get(name) {
            Some(av) if absent => {
                out.insert(key.clone(), av.clone());
            }
            Some(av) => {
                out.insert(key.clone(), project(pv, av));
            }
            None if absent => {
                out.insert(key.clone(), pv.clone());
            }
            None => {}
        }
    }
    if exact {
        for (key, av) in amap {
            if !pmap
                .keys()
                .any(|k| !is_directive(k) && field_name(k) == key)
            {
                out.insert(key.clone(), av.clone());
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(p: Value, a: Value) -> Captures {
        let out = matches(&p, &a);
        assert!(out.is_match(), "{p} vs {a}: {:?}", out.mismatches);
        out.captures
    }

    fn bad(p: Value, a: Value) -> Vec<String> {
        let out = matches(&p, &a);
        assert!(!out.is_match(), "{p} unexpectedly matched {a}");
        assert!(out.captures.is_empty());
        out.mismatches.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn objects_match_partially_unless_exact() {
        ok(json!({"a": 1}), json!({"a": 1, "b": 2}));
        ok(json!({"a": 1, "$exact": true}), json!({"a": 1.0}));
        assert_eq!(
            bad(json!({"a": 1, "$exact": true}), json!({"a": 1, "b": 2})),
            ["at /b: expected no such field (the pattern is `$exact`), got 2 (a number)"]
        );
        assert_eq!(
            bad(json!({"a": {"b": "x"}}), json!({"a": {"b": "y"}})),
            [r#"at /a/b: expected "x", got "y" (a string)"#]
        );
        assert_eq!(
            bad(json!({"a": 1}), json!({})),
            ["at /a: expected 1, but the field is missing"]
        );
    }

    #[test]
    fn arrays_match_element_wise() {
        ok(json!([1, {"$any": true}]), json!([1, null]));
        assert_eq!(
            bad(json!([1, 2]), json!([1])),
            ["at (root): expected an array of 2 elements, got [1] (an array)"]
        );
    }

    #[test]
    fn type_any_regex_and_ranges() {
        ok(json!({"$type": "string"}), json!("x"));
        ok(json!({"$type": ["integer", "null"]}), json!(null));
        bad(json!({"$type": "integer"}), json!(1.5));
        ok(json!({"v": {"$any": true}}), json!({"v": [1]}));
        bad(json!({"v": {"$any": true}}), json!({}));
        ok(json!({"$regex": "^ab+$"}), json!("abbb"));
        bad(json!({"$regex": "^ab+$"}), json!("ba"));
        bad(json!({"$regex": "1"}), json!(1));
        ok(json!({"$gte": 1, "$lt": 5}), json!(1));
        ok(json!({"$gt": 1, "$lte": 5}), json!(5));
        assert_eq!(
            bad(json!({"$gte": 1, "$lt": 5}), json!(5)),
            ["at (root): expected a number >= 1 and < 5, got 5 (a number)"]
        );
        bad(json!({"$gte": 1}), json!("2"));
    }

    #[test]
    fn contains_needs_distinct_elements() {
        ok(
            json!({"$contains": [1, {"$type": "string"}]}),
            json!(["a", 0, 1]),
        );
        bad(json!({"$contains": [1, 1]}), json!([1, 2]));
        ok(
            json!({"$contains": [{"$type": "number"}, 1]}),
            json!([1, 2]),
        );
        bad(json!({"$contains": [1]}), json!({"a": 1}));
        ok(json!({"$length": 2, "$contains": [2]}), json!([1, 2]));
        bad(json!({"$length": 1, "$contains": [2]}), json!([1, 2]));
        bad(json!({"$length": 0}), json!({}));
    }

    #[test]
    fn absent_and_literal() {
        ok(json!({"error": {"$absent": true}}), json!({"result": 1}));
        assert_eq!(
            bad(json!({"error": {"$absent": true}}), json!({"error": 1})),
            ["at /error: expected the field to be absent, got 1 (a number)"]
        );
        ok(json!({"$literal": {"$type": "x"}}), json!({"$type": "x"}));
        bad(
            json!({"$literal": {"$type": "x"}}),
            json!({"$type": "x", "more": 1}),
        );
        ok(json!({"$$ref": "#/a"}), json!({"$ref": "#/a"}));
    }

    #[test]
    fn captures_only_on_success() {
        let caps = ok(
            json!({"id": {"$capture": "id", "$type": "integer"}, "sub": {"$capture": "sub"}}),
            json!({"id": 7, "sub": {"k": "v"}}),
        );
        assert_eq!(caps["id"], json!(7));
        assert_eq!(caps["sub"], json!({"k": "v"}));
        bad(
            json!({"id": {"$capture": "id"}, "ok": true}),
            json!({"id": 7, "ok": false}),
        );
        let caps = ok(
            json!({"$capture": "whole", "a": 1}),
            json!({"a": 1, "b": 2}),
        );
        assert_eq!(caps["whole"], json!({"a": 1, "b": 2}));
    }

    #[test]
    fn interpolation() {
        let vars: Captures = [
            ("n".to_string(), json!(7)),
            ("s".to_string(), json!("abc")),
            ("o".to_string(), json!({"$type": "string"})),
        ]
        .into();
        let v =
            json!({"a": "${n}", "b": "id-${n}-${s}", "c": "$${n}", "d": ["${s}"], "${s}": "$5"});
        assert_eq!(
            interpolate(&v, &vars, false).unwrap(),
            json!({"a": 7, "b": "id-7-abc", "c": "${n}", "d": ["abc"], "abc": "$5"})
        );
        assert_eq!(
            interpolate(&json!({"x": "${o}"}), &vars, true).unwrap(),
            json!({"x": {"$literal": {"$type": "string"}}})
        );
        let err = interpolate(&json!("${missing}"), &vars, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`${missing}` is used but was never captured nor given with --var (known: n, o, s)"
        );
        assert_eq!(
            interpolate_str("${n", &vars),
            Err(InterpolationError::Unterminated { text: "${n".into() })
        );
    }

    #[test]
    fn validation_rejects_unknown_directives() {
        let errors = validate(&json!({"a": {"$regx": "x"}, "b": {"$regex": "("}, "$absent": true}));
        let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["/$absent", "/a/$regx", "/b/$regex"]);
        assert!(errors[1].1.contains("write `$$regx`"));
        assert!(validate(&json!({"$type": "text"}))[0]
            .1
            .contains("must be one of"));
        assert!(validate(&json!({"$literal": 1, "$type": "number"})).len() == 1);
        assert!(validate(&json!({"$$weird": {"$any": true}})).is_empty());
    }

    #[test]
    fn projection_hides_matching_and_ignored_parts() {
        let p = json!({"id": {"$type": "integer"}, "result": 4});
        let a = json!({"jsonrpc": "2.0", "id": 1, "result": 3});
        assert_eq!(
            project(&p, &a),
            json!({"id": {"$type": "integer"}, "result": 3})
        );
        let p = json!({"a": 1, "$exact": true});
        assert_eq!(
            project(&p, &json!({"a": 1, "b": 2})),
            json!({"a": 1, "$exact": true, "b": 2})
        );
    }

    #[test]
    fn assignment_backtracks() {
        let c = vec![vec![true, true], vec![true, false]];
        assert_eq!(assign(&c), vec![Some(1), Some(0)]);
        let c = vec![vec![true, false], vec![true, false]];
        assert_eq!(assign(&c).iter().filter(|s| s.is_some()).count(), 1);
    }
}
