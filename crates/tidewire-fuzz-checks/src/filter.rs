//! The filter language (section 15): parsing and evaluation compared with a
//! second evaluator, written here from the crate documentation and the
//! specification, that interprets the filter JSON directly, without compiling
//! it, sorting `$in` operands or skipping work.

use std::cmp::Ordering;
use std::time::{Duration, Instant};

use arbitrary::Unstructured;
use serde_json::{Map, Number, Value};
use tidewire_filter::{Filter, Pipeline, BOUNDS, MAX_DEPTH};

use crate::gen;

/// Parsing a filter and evaluating it against one record must each finish
/// within this, for any filter a client can send: nesting is limited to
/// `MAX_DEPTH` and patterns match without exponential backtracking. The
/// bound is loose so that a busy machine does not fail it; a slow case is
/// slower by orders of magnitude.
pub const EVALUATION_BOUND: Duration = Duration::from_secs(2);

/// Fuzz target `filter`: a filter and records shaped from the bytes.
pub fn check_filter(bytes: &[u8]) {
    let mut u = Unstructured::new(bytes);
    let Ok((filter, records)) = shaped_filter(&mut u) else {
        return;
    };
    check_filter_value(&filter, &records);
}

/// Fuzz target `filter_json`: the bytes are a filter or pipeline as JSON text.
pub fn check_filter_json(bytes: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return;
    };
    let records = [
        serde_json::json!({"a": 1, "b": "Ada", "tags": ["x", "y"], "n": null}),
        serde_json::json!({"a": {"b": [1.0, {"c": true}]}, "name": "É école"}),
        serde_json::json!({}),
    ];
    if value.is_array() {
        check_pipeline_value(&value, &records);
    } else {
        check_filter_value(&value, &records);
    }
}

const PATHS: &[&str] = &[
    "a", "b", "c", "name", "age", "tags", "a.b", "a.0", "tags.0", "tags.1", "a.b.c", "0", "a.00",
    "", "a..b", ".a", "a.", "$a", "é",
];

const OPERATORS: &[&str] = &[
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$not", "$like",
    "$ilike", "$text", "$and", "$foo",
];

fn shaped_filter(u: &mut Unstructured) -> arbitrary::Result<(Value, Vec<Value>)> {
    let filter = if u.ratio(1, 32)? {
        // Chains around the nesting limit.
        let levels = u.int_in_range(MAX_DEPTH - 1..=MAX_DEPTH + 1)?;
        let mut filter = node(u, 0)?;
        for _ in 0..levels {
            let key = *u.choose(&["$not", "$and", "$or"])?;
            filter = if key == "$not" {
                serde_json::json!({ key: filter })
            } else {
                serde_json::json!({ key: [filter] })
            };
        }
        filter
    } else {
        node(u, 3)?
    };
    let records = (0..u.int_in_range(1..=4)?)
        .map(|_| Ok(Value::Object(gen::object(u, gen::MAX_VALUE_DEPTH)?)))
        .collect::<arbitrary::Result<_>>()?;
    Ok((filter, records))
}

fn node(u: &mut Unstructured, depth: u32) -> arbitrary::Result<Value> {
    if u.ratio(1, 32)? {
        return gen::value(u, 1);
    }
    let mut map = Map::new();
    for _ in 0..u.int_in_range(0..=3)? {
        let choice = if depth == 0 {
            3
        } else {
            u.int_in_range(0..=9)?
        };
        let (key, arg) = match choice {
            0 => {
                let key = u.choose(&["$and", "$or"])?.to_string();
                let items = (0..u.int_in_range(0..=3)?)
                    .map(|_| node(u, depth - 1))
                    .collect::<arbitrary::Result<_>>()?;
                (key, Value::Array(items))
            }
            1 => ("$not".to_string(), node(u, depth - 1)?),
            2 => ("$text".to_string(), text_operand(u)?),
            _ => (u.choose(PATHS)?.to_string(), field_value(u, depth)?),
        };
        map.insert(key, arg);
    }
    Ok(Value::Object(map))
}

fn text_operand(u: &mut Unstructured) -> arbitrary::Result<Value> {
    Ok(if u.ratio(1, 8)? {
        gen::value(u, 0)?
    } else {
        Value::String(gen::string(u)?)
    })
}

fn field_value(u: &mut Unstructured, depth: u32) -> arbitrary::Result<Value> {
    if u.ratio(1, 3)? {
        return gen::value(u, 2);
    }
    let mut map = Map::new();
    for _ in 0..u.int_in_range(1..=2)? {
        let op = *u.choose(OPERATORS)?;
        let arg = match op {
            "$in" | "$nin" if u.ratio(7, 8)? => Value::Array(
                (0..u.int_in_range(0..=4)?)
                    .map(|_| gen::value(u, 1))
                    .collect::<arbitrary::Result<_>>()?,
            ),
            "$exists" if u.ratio(7, 8)? => Value::Bool(u.arbitrary()?),
            "$not" if depth > 0 => field_value(u, depth - 1)?,
            "$like" | "$ilike" | "$text" if u.ratio(7, 8)? => Value::String(pattern(u)?),
            _ => gen::value(u, 1)?,
        };
        map.insert(op.to_string(), arg);
    }
    if u.ratio(1, 16)? {
        map.insert(u.choose(PATHS)?.to_string(), gen::value(u, 0)?);
    }
    Ok(Value::Object(map))
}

fn pattern(u: &mut Unstructured) -> arbitrary::Result<String> {
    let mut pattern = String::new();
    for _ in 0..u.int_in_range(0..=6)? {
        match u.int_in_range(0..=4)? {
            0 => pattern.push('%'),
            1 => pattern.push('_'),
            2 => pattern.push('\\'),
            _ => pattern.push_str(&gen::string(u)?),
        }
    }
    Ok(pattern)
}

fn timed<T>(what: &str, work: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = work();
    let took = start.elapsed();
    assert!(took <= EVALUATION_BOUND, "{what} took {took:?}");
    out
}

/// Parses `filter` with the crate and with the reference; both must agree on
/// whether it is valid, where the first problem is, and on every record.
pub fn check_filter_value(filter: &Value, records: &[Value]) {
    let parsed = timed("parsing", || Filter::parse(filter));
    let expected = reference::check_node(filter, &mut Vec::new(), 0);
    match (&parsed, &expected) {
        (Ok(_), Ok(())) => {}
        (Err(err), Err(path)) => {
            assert_eq!(&err.path, path, "filter {filter}: error {err}");
            return;
        }
        (Ok(_), Err(path)) => {
            panic!("filter {filter} parsed; the reference refuses it at {path:?}")
        }
        // The reference knows the language, not its size bounds (section 15.9):
        // beyond them the two are compared on the refusal alone.
        (Err(_), Ok(())) if over_bounds(filter) => return,
        (Err(err), Ok(())) => panic!("filter {filter} refused ({err}); the reference accepts it"),
    }
    let compiled = parsed.expect("checked above");
    let stage = serde_json::json!([{ "$match": filter }]);
    let pipeline = Pipeline::parse(&stage).expect("a valid filter makes a valid stage");
    for record in records {
        let got = timed("evaluation", || compiled.matches(record));
        let want = reference::node(filter, record);
        assert_eq!(got, want, "filter {filter} on record {record}");
        assert_eq!(
            pipeline.matches(record),
            got,
            "one-stage pipeline {stage} on {record}"
        );
    }
}

/// Whether `filter` has more members than `BOUNDS.conditions` (every condition
/// is a member, so fewer members are within that bound), a longer `$and`, `$or`,
/// `$in` or `$nin` array, or a longer `$like`/`$ilike` pattern than the bounds.
fn over_bounds(filter: &Value) -> bool {
    fn walk(value: &Value, members: &mut usize) -> bool {
        match value {
            Value::Array(items) => items.iter().any(|item| walk(item, members)),
            Value::Object(map) => map.iter().any(|(key, item)| {
                *members += 1;
                let over = match (key.as_str(), item) {
                    ("$and" | "$or", Value::Array(items)) => items.len() > BOUNDS.branches,
                    ("$in" | "$nin", Value::Array(items)) => items.len() > BOUNDS.in_values,
                    ("$like" | "$ilike", Value::String(p)) => {
                        p.chars().count() > BOUNDS.pattern_chars
                    }
                    _ => false,
                };
                over || walk(item, members)
            }),
            _ => false,
        }
    }
    let mut members = 0;
    walk(filter, &mut members) || members > BOUNDS.conditions
}

/// The same for a pipeline.
pub fn check_pipeline_value(pipeline: &Value, records: &[Value]) {
    let parsed = timed("parsing", || Pipeline::parse(pipeline));
    let expected = reference::check_pipeline(pipeline);
    let compiled = match (parsed, expected) {
        (Ok(compiled), Ok(())) => compiled,
        (Err(err), Err(path)) => {
            assert_eq!(err.path, path, "pipeline {pipeline}: error {err}");
            return;
        }
        (Ok(_), Err(path)) => {
            panic!("pipeline {pipeline} parsed; the reference refuses it at {path:?}")
        }
        (Err(_), Ok(())) if over_bounds(pipeline) => return,
        (Err(err), Ok(())) => {
            panic!("pipeline {pipeline} refused ({err}); the reference accepts it")
        }
    };
    let stages = pipeline.as_array().expect("a valid pipeline is an array");
    for record in records {
        let want = stages
            .iter()
            .all(|stage| reference::node(&stage["$match"], record));
        assert_eq!(
            timed("evaluation", || compiled.matches(record)),
            want,
            "pipeline {pipeline} on {record}"
        );
    }
}

/// The reference evaluator: direct interpretation of the filter JSON.
pub mod reference {
    use super::*;

    type Loc = Vec<String>;

    fn at(loc: &Loc) -> String {
        loc.join(".")
    }

    fn with<T>(loc: &mut Loc, segment: String, f: impl FnOnce(&mut Loc) -> T) -> T {
        loc.push(segment);
        let out = f(loc);
        loc.pop();
        out
    }

    /// `Err(path)` of the first problem in document order. Problems with a
    /// key point at the object holding it; problems with a value, at the value.
    pub fn check_node(filter: &Value, loc: &mut Loc, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(at(loc));
        }
        let Value::Object(map) = filter else {
            return Err(at(loc));
        };
        for (key, arg) in map {
            let here_failed = with(loc, key.clone(), |loc| match key.as_str() {
                "$and" | "$or" => match arg {
                    Value::Array(items) if !items.is_empty() => {
                        for (i, item) in items.iter().enumerate() {
                            with(loc, i.to_string(), |loc| check_node(item, loc, depth + 1))?;
                        }
                        Ok(())
                    }
                    _ => Err(at(loc)),
                },
                "$not" => check_node(arg, loc, depth + 1),
                "$text" => match arg {
                    Value::String(s) if !words(s).is_empty() => Ok(()),
                    _ => Err(at(loc)),
                },
                _ if key.starts_with('$') || key.split('.').any(str::is_empty) => Ok(()),
                _ => check_field_value(arg, loc, depth),
            });
            if key.starts_with('$') && !matches!(key.as_str(), "$and" | "$or" | "$not" | "$text")
                || !key.starts_with('$') && key.split('.').any(str::is_empty)
            {
                return Err(at(loc));
            }
            here_failed?;
        }
        Ok(())
    }

    fn is_operator_object(value: &Value) -> Option<&Map<String, Value>> {
        match value {
            Value::Object(map) if !map.is_empty() && map.keys().all(|k| k.starts_with('$')) => {
                Some(map)
            }
            _ => None,
        }
    }

    fn check_field_value(value: &Value, loc: &mut Loc, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(at(loc));
        }
        if let Value::Object(map) = value {
            let operators = map.keys().filter(|k| k.starts_with('$')).count();
            if operators > 0 && operators < map.len() {
                return Err(at(loc));
            }
        }
        let Some(map) = is_operator_object(value) else {
            return Ok(());
        };
        for (op, arg) in map {
            let known = matches!(
                op.as_str(),
                "$eq"
                    | "$ne"
                    | "$gt"
                    | "$gte"
                    | "$lt"
                    | "$lte"
                    | "$in"
                    | "$nin"
                    | "$exists"
                    | "$not"
                    | "$like"
                    | "$ilike"
                    | "$text"
            );
            if !known {
                return Err(at(loc));
            }
            with(loc, op.clone(), |loc| match (op.as_str(), arg) {
                (
                    "$gt" | "$gte" | "$lt" | "$lte",
                    Value::Bool(_) | Value::Number(_) | Value::String(_),
                ) => Ok(()),
                ("$gt" | "$gte" | "$lt" | "$lte", _) => Err(at(loc)),
                ("$in" | "$nin", Value::Array(_)) | ("$exists", Value::Bool(_)) => Ok(()),
                ("$in" | "$nin" | "$exists", _) => Err(at(loc)),
                ("$not", _) => check_field_value(arg, loc, depth + 1),
                ("$like" | "$ilike", Value::String(s)) if like_tokens(s).is_some() => Ok(()),
                ("$text", Value::String(s)) if !words(s).is_empty() => Ok(()),
                ("$like" | "$ilike" | "$text", _) => Err(at(loc)),
                _ => Ok(()),
            })?;
        }
        Ok(())
    }

    pub fn check_pipeline(pipeline: &Value) -> Result<(), String> {
        let Value::Array(stages) = pipeline else {
            return Err(String::new());
        };
        for (i, stage) in stages.iter().enumerate() {
            let Value::Object(map) = stage else {
                return Err(i.to_string());
            };
            if map.len() != 1 || !map.contains_key("$match") {
                return Err(i.to_string());
            }
            check_node(&map["$match"], &mut vec![i.to_string(), "$match".into()], 0)?;
        }
        Ok(())
    }

    /// Whether `record` matches the (valid) filter.
    pub fn node(filter: &Value, record: &Value) -> bool {
        let Value::Object(map) = filter else {
            unreachable!("checked filters are objects")
        };
        map.iter().all(|(key, arg)| match key.as_str() {
            "$and" => arg
                .as_array()
                .expect("checked")
                .iter()
                .all(|f| node(f, record)),
            "$or" => arg
                .as_array()
                .expect("checked")
                .iter()
                .any(|f| node(f, record)),
            "$not" => !node(arg, record),
            "$text" => words(arg.as_str().expect("checked"))
                .iter()
                .all(|term| any_string(record, term)),
            path => field(arg, lookup(record, path)),
        })
    }

    fn any_string(value: &Value, term: &str) -> bool {
        match value {
            Value::String(s) => words(s).iter().any(|w| w == term),
            Value::Array(items) => items.iter().any(|v| any_string(v, term)),
            Value::Object(map) => map.values().any(|v| any_string(v, term)),
            _ => false,
        }
    }

    /// The lower-cased words (maximal alphanumeric runs) of `s`.
    fn words(s: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut word = String::new();
        for c in s.chars() {
            if c.is_alphanumeric() {
                word.extend(c.to_lowercase());
            } else if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
        }
        if !word.is_empty() {
            out.push(word);
        }
        out
    }

    fn lookup<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
        let mut current = record;
        for segment in path.split('.') {
            current = match current {
                Value::Object(map) => map.get(segment)?,
                Value::Array(items) => {
                    let canonical = segment.bytes().all(|b| b.is_ascii_digit())
                        && !segment.is_empty()
                        && (segment == "0" || !segment.starts_with('0'));
                    if !canonical {
                        return None;
                    }
                    items.get(segment.parse::<usize>().ok()?)?
                }
                _ => return None,
            };
        }
        Some(current)
    }

    fn field(condition: &Value, value: Option<&Value>) -> bool {
        let Some(operators) = is_operator_object(condition) else {
            return equals(value, condition);
        };
        operators.iter().all(|(op, arg)| match op.as_str() {
            "$eq" => equals(value, arg),
            "$ne" => !equals(value, arg),
            "$in" => arg
                .as_array()
                .expect("checked")
                .iter()
                .any(|a| equals(value, a)),
            "$nin" => !arg
                .as_array()
                .expect("checked")
                .iter()
                .any(|a| equals(value, a)),
            "$exists" => value.is_some() == arg.as_bool().expect("checked"),
            "$not" => !field(arg, value),
            "$gt" => range(value, arg, |o| o == Ordering::Greater),
            "$gte" => range(value, arg, |o| o != Ordering::Less),
            "$lt" => range(value, arg, |o| o == Ordering::Less),
            "$lte" => range(value, arg, |o| o != Ordering::Greater),
            "$like" | "$ilike" => match value {
                Some(Value::String(s)) => like(arg.as_str().expect("checked"), s, op == "$ilike"),
                _ => false,
            },
            "$text" => match value {
                Some(Value::String(s)) => {
                    let have = words(s);
                    words(arg.as_str().expect("checked"))
                        .iter()
                        .all(|t| have.contains(t))
                }
                _ => false,
            },
            other => unreachable!("checked operator {other}"),
        })
    }

    /// Equality with `null` also matches a missing field.
    fn equals(value: Option<&Value>, operand: &Value) -> bool {
        match value {
            None => operand.is_null(),
            Some(value) => json_equal(value, operand),
        }
    }

    fn range(value: Option<&Value>, operand: &Value, accept: impl Fn(Ordering) -> bool) -> bool {
        let ordering = match (value, operand) {
            (Some(Value::Number(a)), Value::Number(b)) => number_cmp(a, b),
            (Some(Value::String(a)), Value::String(b)) => a.chars().cmp(b.chars()),
            (Some(Value::Bool(a)), Value::Bool(b)) => a.cmp(b),
            _ => return false,
        };
        accept(ordering)
    }

    fn json_equal(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(a), Value::Number(b)) => number_cmp(a, b) == Ordering::Equal,
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| json_equal(x, y))
            }
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, x)| b.get(k).is_some_and(|y| json_equal(x, y)))
            }
            _ => a == b,
        }
    }

    fn integer(n: &Number) -> Option<i128> {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    }

    /// Exact: `i` against `f`, without rounding `i` to a float.
    fn integer_float_cmp(i: i128, f: f64) -> Ordering {
        let limit = 2f64.powi(127);
        if f >= limit {
            return Ordering::Less;
        }
        if f < -limit {
            return Ordering::Greater;
        }
        let floor = f.floor();
        match i.cmp(&(floor as i128)) {
            Ordering::Equal if f > floor => Ordering::Less,
            other => other,
        }
    }

    fn number_cmp(a: &Number, b: &Number) -> Ordering {
        let float = |n: &Number| n.as_f64().expect("JSON numbers are finite");
        match (integer(a), integer(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(x), None) => integer_float_cmp(x, float(b)),
            (None, Some(y)) => integer_float_cmp(y, float(a)).reverse(),
            (None, None) => float(a)
                .partial_cmp(&float(b))
                .expect("JSON numbers are not NaN"),
        }
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Token {
        Char(char),
        One,
        Run,
    }

    fn like_tokens(pattern: &str) -> Option<Vec<Token>> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '%' => Token::Run,
                '_' => Token::One,
                '\\' => Token::Char(chars.next()?),
                c => Token::Char(c),
            });
        }
        Some(tokens)
    }

    /// The whole subject against the whole pattern, by dynamic programming
    /// over (pattern position, subject position).
    fn like(pattern: &str, subject: &str, fold: bool) -> bool {
        let mut tokens = like_tokens(pattern).expect("checked");
        let mut subject: Vec<char> = subject.chars().collect();
        if fold {
            tokens = tokens
                .into_iter()
                .flat_map(|t| match t {
                    Token::Char(c) => c.to_lowercase().map(Token::Char).collect::<Vec<_>>(),
                    other => vec![other],
                })
                .collect();
            subject = subject.into_iter().flat_map(char::to_lowercase).collect();
        }
        // reachable[j]: the tokens so far can match exactly subject[..j].
        let mut reachable = vec![false; subject.len() + 1];
        reachable[0] = true;
        for token in tokens {
            let mut next = vec![false; subject.len() + 1];
            for j in 0..=subject.len() {
                match token {
                    Token::Run => next[j] = reachable[..=j].iter().any(|r| *r),
                    Token::One => next[j] = j > 0 && reachable[j - 1],
                    Token::Char(c) => next[j] = j > 0 && reachable[j - 1] && subject[j - 1] == c,
                }
            }
            reachable = next;
        }
        reachable[subject.len()]
    }
}
