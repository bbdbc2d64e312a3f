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

/// Every matcher a pattern object may hold.
pub const DIRECTIVES: &[&str] = &[
    "$type",
    "$any",
    "$regex",
    "$gte",
    "$gt",
    "$lte",
    "$lt",
    "$eq",
    "$ne",
    "$contains",
    "$one_of",
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

/// Checks a pattern given as JSON: `(JSON pointer relative to the
/// pattern, message)` for each problem; see [`Pattern::problems`].
pub fn validate(pattern: &Value) -> Vec<(String, String)> {
    Pattern::new(pattern.clone()).problems().to_vec()
}

/// A pattern parsed once, when its suite is loaded: matchers checked,
/// regexes compiled, expressions parsed. Parts written with `${name}` are
/// holes, kept as written and parsed when a case fills them in
/// ([`Pattern::resolve`]); everything else is matched in its typed form.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: Value,
    parsed: Result<Node, Vec<(String, String)>>,
}

#[derive(Debug, Clone)]
enum Node {
    /// A string, number, boolean or null, compared by value.
    Scalar(Value),
    /// Matched element by element.
    Array(Vec<Node>),
    Object(Box<ObjectNode>),
    /// JSON with `${...}` in it, filled in and parsed when the case runs.
    Hole(Value),
}

/// An object pattern: its fields and matchers.
#[derive(Debug, Clone)]
struct ObjectNode {
    /// As written (with holes), to rebuild the JSON of the pattern.
    source: Map<String, Value>,
    /// (key as written, field name, pattern of the value).
    fields: Vec<(String, String, Node)>,
    literal: Option<Value>,
    types: Vec<String>,
    any: bool,
    absent: bool,
    regex: Option<regex::Regex>,
    /// (operator, bound) of `$gte`, `$gt`, `$lte`, `$lt`, `$eq`.
    bounds: Vec<(&'static str, f64)>,
    ne: Option<Value>,
    length: Option<u64>,
    contains: Option<Vec<Node>>,
    /// Alternatives: the value matches at least one (the first that does
    /// gives the captures).
    one_of: Option<Vec<Node>>,
    capture: Option<String>,
    exact: bool,
}

/// A pattern that cannot be used once its holes are filled in.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Interpolation(#[from] InterpolationError),
    #[error("the pattern, filled in, is invalid: {}", problems(.0))]
    Invalid(Vec<(String, String)>),
}

fn problems(list: &[(String, String)]) -> String {
    let all: Vec<String> = list
        .iter()
        .map(|(pointer, message)| {
            format!(
                "at {}: {message}",
                if pointer.is_empty() {
                    "(root)"
                } else {
                    pointer
                }
            )
        })
        .collect();
    all.join("; ")
}

impl Pattern {
    /// Parses a pattern as written in a suite file; its problems, if any,
    /// are [`Pattern::problems`].
    pub fn new(source: Value) -> Pattern {
        Pattern::parse(source, false)
    }

    /// A pattern with nothing left to fill in (`${` is literal text).
    pub fn filled(source: Value) -> Result<Pattern, ResolveError> {
        let pattern = Pattern::parse(source, true);
        match pattern.parsed {
            Ok(_) => Ok(pattern),
            Err(problems) => Err(ResolveError::Invalid(problems)),
        }
    }

    fn parse(source: Value, filled: bool) -> Pattern {
        let mut problems = Vec::new();
        let node = parse(&source, "", true, filled, &mut problems);
        problems.sort();
        Pattern {
            parsed: if problems.is_empty() {
                Ok(node)
            } else {
                Err(problems)
            },
            source,
        }
    }

    /// Unknown matchers, mistyped arguments, invalid regexes: `(JSON
    /// pointer relative to the pattern, message)`, empty when it is valid.
    pub fn problems(&self) -> &[(String, String)] {
        match &self.parsed {
            Ok(_) => &[],
            Err(problems) => problems,
        }
    }

    /// The pattern as JSON (as written, or as filled in).
    pub fn json(&self) -> Value {
        match &self.parsed {
            Ok(node) => node.json(),
            Err(_) => self.source.clone(),
        }
    }

    /// The pattern with its holes filled in from `vars`.
    pub fn resolve(&self, vars: &Captures) -> Result<Pattern, ResolveError> {
        let node = self
            .parsed
            .as_ref()
            .map_err(|problems| ResolveError::Invalid(problems.clone()))?;
        if !node.has_holes() {
            return Ok(self.clone());
        }
        Ok(Pattern {
            source: self.source.clone(),
            parsed: Ok(node.resolve(vars)?),
        })
    }

    /// Matches a received value. Holes left unfilled never match.
    pub fn matches(&self, actual: &Value) -> Outcome {
        let mut out = Outcome::default();
        match &self.parsed {
            Ok(node) => node.match_at(Some(actual), &mut String::new(), &mut out),
            Err(problems) => fail(
                &mut out,
                "",
                format!("a valid pattern ({})", self::problems(problems)),
                Some(actual),
            ),
        }
        if !out.is_match() {
            out.captures.clear();
        }
        out
    }
}

impl From<Value> for Pattern {
    fn from(source: Value) -> Pattern {
        Pattern::new(source)
    }
}

impl serde::Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.source.serialize(serializer)
    }
}

/// Never fails: a pattern's problems are reported by the loader with their
/// position in the file.
impl<'de> serde::Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Pattern, D::Error> {
        Value::deserialize(deserializer).map(Pattern::new)
    }
}

impl schemars::JsonSchema for Pattern {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        Value::schema_name()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        Value::json_schema(generator)
    }
}

/// Whether `v` holds a `${` anywhere, keys included.
fn has_hole(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("${"),
        Value::Array(items) => items.iter().any(has_hole),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains("${") || has_hole(v)),
        _ => false,
    }
}

/// Whether an object must be filled in as a whole: a key or a matcher's
/// argument holds `${` (fields' values, `$contains` elements and `$one_of`
/// alternatives are patterns of their own, with holes of their own).
fn object_has_hole(map: &Map<String, Value>) -> bool {
    map.iter().any(|(key, value)| {
        key.contains("${")
            || (is_directive(key)
                && !matches!(key.as_str(), "$capture" | "$contains" | "$one_of")
                && has_hole(value))
    })
}

fn parse(p: &Value, at: &str, top: bool, filled: bool, errors: &mut Vec<(String, String)>) -> Node {
    match p {
        Value::String(s) if !filled && s.contains("${") => Node::Hole(p.clone()),
        Value::Array(items) => Node::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| parse(item, &format!("{at}/{i}"), false, filled, errors))
                .collect(),
        ),
        Value::Object(map) => {
            let object = parse_object(map, at, top, filled, errors);
            if !filled && object_has_hole(map) {
                Node::Hole(p.clone())
            } else {
                Node::Object(Box::new(object))
            }
        }
        _ => Node::Scalar(p.clone()),
    }
}

/// A bound: a number or an expression without variables.
fn parse_bound(key: &str, value: &Value, filled: bool) -> Result<Option<f64>, String> {
    match value {
        Value::Number(n) => Ok(n.as_f64()),
        Value::String(text) => {
            let expr = crate::expr::Expr::parse(text).map_err(|e| e.to_string())?;
            if !filled && text.contains("${") {
                return Ok(None);
            }
            expr.eval(&Captures::new())
                .map(Some)
                .map_err(|e| e.to_string())
        }
        _ => Err(format!(
            "`{key}` takes a number or an expression such as \"${{start}} + 500\""
        )),
    }
}

fn parse_object(
    map: &Map<String, Value>,
    at: &str,
    top: bool,
    filled: bool,
    errors: &mut Vec<(String, String)>,
) -> ObjectNode {
    let mut node = ObjectNode {
        source: map.clone(),
        fields: Vec::new(),
        literal: None,
        types: Vec::new(),
        any: false,
        absent: false,
        regex: None,
        bounds: Vec::new(),
        ne: None,
        length: None,
        contains: None,
        one_of: None,
        capture: None,
        exact: false,
    };
    let mut own = Vec::new();
    let mut err = |key: &str, msg: String| own.push((format!("{at}/{}", escape_token(key)), msg));
    if map.contains_key("$literal") {
        for key in map.keys().filter(|k| *k != "$literal" && *k != "$capture") {
            err(
                key,
                "`$literal` may only be combined with `$capture`".into(),
            );
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
            let child = parse(
                value,
                &format!("{at}/{}", escape_token(key)),
                false,
                filled,
                errors,
            );
            node.fields
                .push((key.clone(), field_name(key).to_string(), child));
            continue;
        }
        match key.as_str() {
            "$type" => {
                let names: Vec<&Value> = match value {
                    Value::Array(v) => v.iter().collect(),
                    other => vec![other],
                };
                for name in names {
                    match name.as_str().filter(|n| TYPE_NAMES.contains(n)) {
                        Some(n) => node.types.push(n.to_string()),
                        None => err(key, format!("`$type` must be one of {TYPE_NAMES:?} (or a list of them), got {name}")),
                    }
                }
            }
            "$any" | "$absent" | "$exact" => match value.as_bool() {
                Some(flag) => match key.as_str() {
                    "$any" => node.any = flag,
                    "$absent" => node.absent = flag,
                    _ => node.exact = flag,
                },
                None => err(key, format!("`{key}` takes true or false")),
            },
            "$regex" => match value.as_str() {
                Some(re) if filled || !re.contains("${") => match compiled_regex(re) {
                    Ok(compiled) => node.regex = Some(compiled),
                    Err(e) => err(key, format!("invalid regex: {e}")),
                },
                Some(_) => {}
                None => err(key, "`$regex` takes a string".into()),
            },
            "$gte" | "$gt" | "$lte" | "$lt" | "$eq" => match parse_bound(key, value, filled) {
                Ok(Some(bound)) => node.bounds.push((operator(key), bound)),
                Ok(None) => {}
                Err(message) => err(key, message),
            },
            "$ne" => node.ne = Some(value.clone()),
            "$contains" => match value {
                Value::Array(items) => {
                    node.contains = Some(
                        items
                            .iter()
                            .enumerate()
                            .map(|(i, item)| parse(item, &format!("{at}/$contains/{i}"), false, filled, errors))
                            .collect(),
                    );
                }
                _ => err(key, "`$contains` takes an array of patterns".into()),
            },
            "$one_of" => match value {
                Value::Array(items) if !items.is_empty() => {
                    node.one_of = Some(
                        items
                            .iter()
                            .enumerate()
                            .map(|(i, item)| parse(item, &format!("{at}/$one_of/{i}"), top, filled, errors))
                            .collect(),
                    );
                }
                _ => err(key, "`$one_of` takes a non-empty array of patterns".into()),
            },
            "$length" => match value {
                Value::String(_) => match parse_bound(key, value, filled) {
                    Ok(Some(n)) if n >= 0.0 && n.fract() == 0.0 => node.length = Some(n as u64),
                    Ok(Some(n)) => err(key, format!("`$length` is {n}, not a whole number")),
                    Ok(None) => {}
                    Err(message) => err(key, message),
                },
                _ => match value.as_u64() {
                    Some(n) => node.length = Some(n),
                    None => err(key, "`$length` takes a whole number or an expression".into()),
                },
            },
            "$capture" => match value.as_str().filter(|n| !n.is_empty() && !n.contains(['{', '}', '$'])) {
                Some(name) => node.capture = Some(name.to_string()),
                None => err(key, "`$capture` takes a variable name".into()),
            },
            "$literal" => node.literal = Some(value.clone()),
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
    let order = [">=", ">", "<=", "<", "="];
    node.bounds
        .sort_by_key(|(op, _)| order.iter().position(|o| o == op));
    errors.extend(own);
    node
}

fn operator(key: &str) -> &'static str {
    match key {
        "$gte" => ">=",
        "$gt" => ">",
        "$lte" => "<=",
        "$lt" => "<",
        _ => "=",
    }
}

impl Node {
    fn has_holes(&self) -> bool {
        match self {
            Node::Scalar(_) => false,
            Node::Hole(_) => true,
            Node::Array(items) => items.iter().any(Node::has_holes),
            Node::Object(o) => {
                o.fields.iter().any(|(_, _, n)| n.has_holes())
                    || o.contains.iter().flatten().any(Node::has_holes)
                    || o.one_of.iter().flatten().any(Node::has_holes)
            }
        }
    }

    fn resolve(&self, vars: &Captures) -> Result<Node, ResolveError> {
        Ok(match self {
            Node::Scalar(_) => self.clone(),
            Node::Hole(source) => {
                let filled = interpolate(source, vars, true)?;
                Pattern::filled(filled)?
                    .parsed
                    .expect("checked by Pattern::filled")
            }
            Node::Array(items) => Node::Array(
                items
                    .iter()
                    .map(|n| n.resolve(vars))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Object(o) => {
                let mut o = o.clone();
                for (_, _, node) in &mut o.fields {
                    *node = node.resolve(vars)?;
                }
                for items in [&mut o.contains, &mut o.one_of].into_iter().flatten() {
                    for node in items {
                        *node = node.resolve(vars)?;
                    }
                }
                Node::Object(o)
            }
        })
    }

    fn json(&self) -> Value {
        match self {
            Node::Scalar(v) | Node::Hole(v) => v.clone(),
            Node::Array(items) => Value::Array(items.iter().map(Node::json).collect()),
            Node::Object(o) => Value::Object(o.json()),
        }
    }

    fn absent(&self) -> bool {
        matches!(self, Node::Object(o) if o.absent)
    }
}

impl ObjectNode {
    fn json(&self) -> Map<String, Value> {
        self.source
            .iter()
            .map(|(key, value)| {
                let value = match key.as_str() {
                    "$contains" | "$one_of" => {
                        let items = if key == "$contains" {
                            &self.contains
                        } else {
                            &self.one_of
                        };
                        match items {
                            Some(items) => Value::Array(items.iter().map(Node::json).collect()),
                            None => value.clone(),
                        }
                    }
                    _ => match self.fields.iter().find(|(k, _, _)| k == key) {
                        Some((_, _, node)) => node.json(),
                        None => value.clone(),
                    },
                };
                (key.clone(), value)
            })
            .collect()
    }

    /// Whether a matcher constrains the value itself (beyond `$exact`
    /// and `$capture`): such an object is not projected field by field.
    fn constrains_value(&self) -> bool {
        self.source
            .keys()
            .any(|k| is_directive(k) && k != "$exact" && k != "$capture")
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

/// Matches a pattern given as JSON with nothing left to fill in; an
/// invalid one matches nothing. For callers that hold JSON (the schema
/// set's claims); steps hold [`Pattern`]s parsed when their suite loads.
pub fn matches(pattern: &Value, actual: &Value) -> Outcome {
    Pattern::parse(pattern.clone(), true).matches(actual)
}

fn fail(out: &mut Outcome, path: &str, expected: String, actual: Option<&Value>) {
    out.mismatches.push(Mismatch {
        path: path.to_string(),
        expected,
        actual: actual.cloned(),
    });
}

impl Node {
    fn match_at(&self, actual: Option<&Value>, path: &mut String, out: &mut Outcome) {
        let Node::Object(o) = self else {
            let Some(a) = actual else {
                return fail(out, path, compact(&self.json(), 80), None);
            };
            match (self, a) {
                (Node::Array(ps), Value::Array(items)) => {
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
                        pi.match_at(Some(ai), path, out);
                        path.truncate(len);
                    }
                }
                (Node::Scalar(p), _) if json_eq(p, a) => {}
                (Node::Hole(p), _) => fail(
                    out,
                    path,
                    format!("{} (never filled in)", compact(p, 80)),
                    Some(a),
                ),
                _ => fail(out, path, compact(&self.json(), 80), Some(a)),
            }
            return;
        };
        o.match_at(actual, path, out);
    }
}

impl ObjectNode {
    fn match_at(&self, actual: Option<&Value>, path: &mut String, out: &mut Outcome) {
        if self.absent {
            if actual.is_some() {
                fail(out, path, "the field to be absent".into(), actual);
            }
            return;
        }
        let Some(a) = actual else {
            let expected = if self.any {
                "any value".to_string()
            } else {
                compact(&Value::Object(self.json()), 80)
            };
            return fail(out, path, expected, None);
        };
        let before = out.mismatches.len();
        self.match_value(a, path, out);
        self.match_fields(a, path, out);
        if out.mismatches.len() == before {
            if let Some(name) = &self.capture {
                out.captures.insert(name.clone(), a.clone());
            }
        }
    }

    /// The matchers on the value itself.
    fn match_value(&self, a: &Value, path: &str, out: &mut Outcome) {
        if let Some(lit) = &self.literal {
            if !json_eq(lit, a) {
                fail(out, path, compact(lit, 80), Some(a));
            }
        }
        if !self.types.is_empty() && !self.types.iter().any(|n| has_type(a, n)) {
            fail(
                out,
                path,
                format!("a value of type {}", self.types.join(" or ")),
                Some(a),
            );
        }
        if let Some(re) = &self.regex {
            if !a.as_str().is_some_and(|s| re.is_match(s)) {
                fail(out, path, format!("a string matching /{re}/"), Some(a));
            }
        }
        if !self.bounds.is_empty() {
            let holds = a.as_f64().is_some_and(|x| {
                self.bounds.iter().all(|(op, b)| match *op {
                    ">=" => x >= *b,
                    ">" => x > *b,
                    "<=" => x <= *b,
                    "<" => x < *b,
                    _ => x == *b,
                })
            });
            if !holds {
                let words: Vec<String> = self
                    .bounds
                    .iter()
                    .map(|(op, b)| format!("{op} {b}"))
                    .collect();
                fail(
                    out,
                    path,
                    format!("a number {}", words.join(" and ")),
                    Some(a),
                );
            }
        }
        if let Some(other) = &self.ne {
            if json_eq(other, a) {
                fail(
                    out,
                    path,
                    format!("a value other than {}", compact(other, 80)),
                    Some(a),
                );
            }
        }
        if let Some(want) = self.length {
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
        if let Some(wanted) = &self.contains {
            match_contains(wanted, a, path, out);
        }
        if let Some(alternatives) = &self.one_of {
            match_one_of(alternatives, a, path, out);
        }
    }

    fn match_fields(&self, a: &Value, path: &mut String, out: &mut Outcome) {
        if self.fields.is_empty() && !self.exact {
            return;
        }
        let Some(obj) = a.as_object() else {
            return fail(out, path, "an object".into(), Some(a));
        };
        for (_, name, node) in &self.fields {
            let len = path.len();
            path.push('/');
            path.push_str(&escape_token(name));
            node.match_at(obj.get(name), path, out);
            path.truncate(len);
        }
        if self.exact {
            for (key, value) in obj {
                let listed = self
                    .fields
                    .iter()
                    .any(|(_, name, node)| name == key && !node.absent());
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

fn match_contains(wanted: &[Node], a: &Value, path: &str, out: &mut Outcome) {
    let Some(items) = a.as_array() else {
        return fail(out, path, "an array".into(), Some(a));
    };
    let single = |w: &Node, item: &Value| {
        let mut o = Outcome::default();
        w.match_at(Some(item), &mut String::new(), &mut o);
        o
    };
    let compatible: Vec<Vec<bool>> = wanted
        .iter()
        .map(|w| {
            items
                .iter()
                .map(|item| single(w, item).is_match())
                .collect()
        })
        .collect();
    for (wi, slot) in assign(&compatible).iter().enumerate() {
        match slot {
            Some(ii) => out
                .captures
                .extend(single(&wanted[wi], &items[*ii]).captures),
            None => fail(
                out,
                path,
                format!(
                    "an array containing an element matching {}",
                    compact(&wanted[wi].json(), 60)
                ),
                Some(a),
            ),
        }
    }
}

fn match_one_of(alternatives: &[Node], a: &Value, path: &str, out: &mut Outcome) {
    let mut reasons = Vec::new();
    for alternative in alternatives {
        let mut o = Outcome::default();
        alternative.match_at(Some(a), &mut path.to_string(), &mut o);
        if o.is_match() {
            out.captures.extend(o.captures);
            return;
        }
        reasons.push(compact(&alternative.json(), 60));
    }
    fail(
        out,
        path,
        format!("a value matching one of {}", reasons.join(" | ")),
        Some(a),
    );
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
            return Ok(if for_pattern {
                captured_as_pattern(value)
            } else {
                value
            });
        }
    }
    Ok(Value::String(interpolate_str(s, vars)?))
}

/// A captured value put into a pattern: its objects match literally (a member
/// name starting with `$` is data there, not a directive), its arrays element by
/// element.
fn captured_as_pattern(value: Value) -> Value {
    match value {
        Value::Object(_) => serde_json::json!({ "$literal": value }),
        Value::Array(items) => Value::Array(items.into_iter().map(captured_as_pattern).collect()),
        other => other,
    }
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
/// `pattern` is filled in (as reports hold it).
pub fn project(pattern: &Value, actual: &Value) -> Value {
    match Pattern::parse(pattern.clone(), true).parsed {
        Ok(node) => node.project(actual),
        Err(_) => actual.clone(),
    }
}

impl Node {
    fn project(&self, actual: &Value) -> Value {
        let mut probe = Outcome::default();
        self.match_at(Some(actual), &mut String::new(), &mut probe);
        if probe.is_match() {
            return self.json();
        }
        match (self, actual) {
            (Node::Array(ps), Value::Array(items)) if ps.len() == items.len() => {
                Value::Array(ps.iter().zip(items).map(|(p, a)| p.project(a)).collect())
            }
            (Node::Object(o), Value::Object(amap)) if !o.constrains_value() => {
                Value::Object(o.project(amap))
            }
            _ => actual.clone(),
        }
    }
}

impl ObjectNode {
    fn project(&self, amap: &Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::new();
        for (key, pv) in &self.source {
            let Some((_, name, node)) = self.fields.iter().find(|(k, _, _)| k == key) else {
                out.insert(key.clone(), pv.clone());
                continue;
            };
            match amap.get(name) {
                Some(av) if node.absent() => {
                    out.insert(key.clone(), av.clone());
                }
                Some(av) => {
                    out.insert(key.clone(), node.project(av));
                }
                None if node.absent() => {
                    out.insert(key.clone(), node.json());
                }
                None => {}
            }
        }
        if self.exact {
            for (key, av) in amap {
                if !self.fields.iter().any(|(_, name, _)| name == key) {
                    out.insert(key.clone(), av.clone());
                }
            }
        }
        out
    }
}

/// Compiles each distinct `$regex` once per process: suites repeat the same few
/// (a timestamp form appears hundreds of times), compiling dominated loading,
/// and a compiled `Regex` is shared by cloning.
fn compiled_regex(source: &str) -> Result<regex::Regex, regex::Error> {
    static COMPILED: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, regex::Regex>>,
    > = std::sync::OnceLock::new();
    let cache = COMPILED.get_or_init(Default::default);
    if let Some(found) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(source) {
        return Ok(found.clone());
    }
    let compiled = regex::Regex::new(source)?;
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(source.to_string(), compiled.clone());
    Ok(compiled)
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
    fn one_of_matches_any_alternative_and_captures_from_it() {
        let p = json!({"$one_of": [
            {"type": "subscribed", "subscription": {"$capture": "s"}},
            {"type": "error", "error": {"code": "history_lost"}}
        ]});
        let captured = ok(
            p.clone(),
            json!({"type": "subscribed", "subscription": "x"}),
        );
        assert_eq!(captured.get("s"), Some(&json!("x")));
        assert!(ok(
            p.clone(),
            json!({"type": "error", "error": {"code": "history_lost"}})
        )
        .is_empty());
        let reasons = bad(p, json!({"type": "error", "error": {"code": "conflict"}}));
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("one of"), "{reasons:?}");
        ok(
            json!({"id": 1, "$one_of": [{"n": 1}, {"n": 2}]}),
            json!({"id": 1, "n": 2}),
        );
        bad(
            json!({"id": 2, "$one_of": [{"n": 1}, {"n": 2}]}),
            json!({"id": 1, "n": 2}),
        );
        assert!(!Pattern::new(json!({"$one_of": []})).problems().is_empty());
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

    fn filled(p: Value, vars: &Captures) -> Pattern {
        let pattern = Pattern::new(p);
        assert!(pattern.problems().is_empty(), "{:?}", pattern.problems());
        pattern.resolve(vars).unwrap()
    }

    #[test]
    fn holes_are_filled_in_and_parsed_when_the_case_runs() {
        let vars: Captures = [
            ("list".to_string(), json!([{"$type": "integer"}, 2])),
            ("obj".to_string(), json!({"$type": "string"})),
            ("key".to_string(), json!("name")),
            ("word".to_string(), json!("ab+")),
            ("start".to_string(), json!(10)),
        ]
        .into();
        // A captured value is data: an array filled in matches element by
        // element, and the objects in it and an object filled in match literally.
        let p = filled(json!({"a": "${list}", "b": "${obj}"}), &vars);
        assert!(p
            .matches(&json!({"a": [{"$type": "integer"}, 2], "b": {"$type": "string"}}))
            .is_match());
        assert!(!p
            .matches(&json!({"a": [7, 2], "b": {"$type": "string"}}))
            .is_match());
        assert!(!p
            .matches(&json!({"a": [{"$type": "integer"}, 2], "b": "text"}))
            .is_match());
        assert_eq!(
            p.json(),
            json!({"a": [{"$literal": {"$type": "integer"}}, 2], "b": {"$literal": {"$type": "string"}}})
        );
        // Keys, regexes and bounds are filled in too.
        let p = filled(
            json!({"f-${key}": {"$regex": "^${word}$"}, "n": {"$gt": "${start} + 1"}}),
            &vars,
        );
        assert!(p.matches(&json!({"f-name": "abbb", "n": 12})).is_match());
        assert_eq!(
            p.matches(&json!({"f-name": "abbb", "n": 11})).mismatches[0].to_string(),
            "at /n: expected a number > 11, got 11 (a number)"
        );
        // `$${` is a literal `${` once filled in.
        let p = filled(json!({"t": "$${start}"}), &vars);
        assert!(p.matches(&json!({"t": "${start}"})).is_match());
        // A value that makes the filled-in pattern invalid is an error.
        let bad: Captures = [("word".to_string(), json!("("))].into();
        let err = Pattern::new(json!({"$regex": "${word}"}))
            .resolve(&bad)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the pattern, filled in, is invalid: at /$regex: invalid regex"),
            "{err}"
        );
    }

    #[test]
    fn a_pattern_without_holes_is_the_same_once_resolved() {
        let p = Pattern::new(json!({"id": {"$regex": "^a"}, "n": [1, {"$gte": 2}]}));
        let resolved = p.resolve(&Captures::new()).unwrap();
        assert_eq!(resolved.json(), p.json());
        assert!(resolved
            .matches(&json!({"id": "ab", "n": [1, 3]}))
            .is_match());
        assert_eq!(
            Pattern::new(json!({"a": {"$regx": 1}})).problems()[0].0,
            "/a/$regx"
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
