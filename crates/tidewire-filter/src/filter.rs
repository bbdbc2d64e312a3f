//! Parsing filters into their compiled form, and evaluating them.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::{FilterError, FilterErrorKind};
use crate::path::FieldPath;
use crate::pattern::{LikePattern, TextTerms};
use crate::value::{compare_values, values_equal};

/// Maximum nesting of `$and`, `$or` and `$not` (top-level or field-level).
///
/// Parsing and evaluation recurse once per level, so the limit bounds stack
/// use for filters received from untrusted clients.
pub const MAX_DEPTH: usize = 32;

/// Bounds on the size of a filter, which bound the work of evaluating it
/// against one document: at most `conditions` conditions, each linear in the
/// size of the document (a pattern of at most `pattern_chars` characters is
/// matched in time linear in the string, by an automaton).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Field conditions and operators in the whole filter (or pipeline stage).
    pub conditions: usize,
    /// Elements of one `$and` or `$or`.
    pub branches: usize,
    /// Elements of one `$in` or `$nin`.
    pub in_values: usize,
    /// Characters of one `$like` or `$ilike` pattern.
    pub pattern_chars: usize,
}

/// The bounds every filter is parsed with.
pub const BOUNDS: Bounds = Bounds {
    conditions: 1000,
    branches: 100,
    in_values: 1000,
    pattern_chars: 256,
};

fn too_large(loc: Option<&Loc<'_>>, what: &'static str, limit: usize) -> FilterError {
    error(loc, FilterErrorKind::TooLarge { what, limit })
}

/// A location inside the filter JSON, kept as a borrowed chain so that the
/// happy path never allocates; it is rendered only when an error is built.
#[derive(Clone, Copy)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

#[derive(Clone, Copy)]
struct Loc<'a> {
    parent: Option<&'a Loc<'a>>,
    segment: Segment<'a>,
}

fn child<'a>(parent: Option<&'a Loc<'a>>, segment: Segment<'a>) -> Loc<'a> {
    Loc { parent, segment }
}

fn error(loc: Option<&Loc<'_>>, kind: FilterErrorKind) -> FilterError {
    let mut segments = Vec::new();
    let mut cur = loc;
    while let Some(l) = cur {
        segments.push(match l.segment {
            Segment::Key(k) => k.to_owned(),
            Segment::Index(i) => i.to_string(),
        });
        cur = l.parent;
    }
    segments.reverse();
    FilterError {
        path: segments.join("."),
        kind,
    }
}

fn invalid_operand(loc: Option<&Loc<'_>>, operator: &str, expected: &'static str) -> FilterError {
    error(
        loc,
        FilterErrorKind::InvalidOperand {
            operator: operator.to_owned(),
            expected,
        },
    )
}

#[derive(Clone, Copy, Debug)]
enum RangeOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl RangeOp {
    fn accepts(self, ord: Ordering) -> bool {
        match self {
            RangeOp::Gt => ord == Ordering::Greater,
            RangeOp::Gte => ord != Ordering::Less,
            RangeOp::Lt => ord == Ordering::Less,
            RangeOp::Lte => ord != Ordering::Greater,
        }
    }
}

/// A condition on the value at one field path (`None` = missing).
#[derive(Clone, Debug)]
enum Cond {
    All(Box<[Cond]>),
    Not(Box<Cond>),
    Eq(Value),
    /// Operands sorted by `compare_values` and deduplicated, for binary search.
    In(Box<[Value]>),
    Range(RangeOp, Value),
    Exists(bool),
    Like(LikePattern),
    Text(TextTerms),
}

fn same_class(a: &Value, b: &Value) -> bool {
    matches!(
        (a, b),
        (Value::Bool(_), Value::Bool(_))
            | (Value::Number(_), Value::Number(_))
            | (Value::String(_), Value::String(_))
    )
}

impl Cond {
    fn size(&self) -> usize {
        match self {
            Cond::All(conds) => conds.iter().map(Cond::size).sum(),
            Cond::Not(c) => 1 + c.size(),
            _ => 1,
        }
    }

    fn eval(&self, field: Option<&Value>) -> bool {
        match self {
            Cond::All(conds) => conds.iter().all(|c| c.eval(field)),
            Cond::Not(c) => !c.eval(field),
            Cond::Eq(v) => match field {
                Some(x) => values_equal(x, v),
                None => v.is_null(),
            },
            Cond::In(values) => match field {
                Some(x) => values.binary_search_by(|v| compare_values(v, x)).is_ok(),
                // Null sorts first, so this asks "does the list contain null".
                None => values.first().is_some_and(Value::is_null),
            },
            Cond::Range(op, operand) => match field {
                Some(x) if same_class(x, operand) => op.accepts(compare_values(x, operand)),
                _ => false,
            },
            Cond::Exists(present) => field.is_some() == *present,
            Cond::Like(p) => matches!(field, Some(Value::String(s)) if p.matches(s)),
            Cond::Text(t) => matches!(field, Some(Value::String(s)) if t.matches_str(s)),
        }
    }
}

#[derive(Clone, Debug)]
enum Node {
    /// Conjunction; empty means "match everything".
    All(Box<[Node]>),
    Any(Box<[Node]>),
    Not(Box<Node>),
    Text(TextTerms),
    Field(FieldPath, Cond),
}

impl Node {
    fn size(&self) -> usize {
        match self {
            Node::All(nodes) | Node::Any(nodes) => 1 + nodes.iter().map(Node::size).sum::<usize>(),
            Node::Not(n) => 1 + n.size(),
            Node::Text(_) => 1,
            Node::Field(_, cond) => cond.size(),
        }
    }

    fn eval(&self, doc: &Value) -> bool {
        match self {
            Node::All(nodes) => nodes.iter().all(|n| n.eval(doc)),
            Node::Any(nodes) => nodes.iter().any(|n| n.eval(doc)),
            Node::Not(n) => !n.eval(doc),
            Node::Text(t) => t.matches_document(doc),
            Node::Field(path, cond) => cond.eval(path.resolve(doc)),
        }
    }
}

fn too_deep(loc: Option<&Loc<'_>>, depth: usize) -> Result<(), FilterError> {
    if depth > MAX_DEPTH {
        Err(error(loc, FilterErrorKind::TooDeep(MAX_DEPTH)))
    } else {
        Ok(())
    }
}

fn parse_node(value: &Value, loc: Option<&Loc<'_>>, depth: usize) -> Result<Node, FilterError> {
    too_deep(loc, depth)?;
    let Value::Object(map) = value else {
        return Err(error(loc, FilterErrorKind::ExpectedObject));
    };
    let mut nodes = Vec::with_capacity(map.len());
    for (key, arg) in map {
        let here = child(loc, Segment::Key(key));
        let node = match key.as_str() {
            "$and" | "$or" => {
                let Value::Array(items) = arg else {
                    return Err(error(Some(&here), FilterErrorKind::ExpectedArray));
                };
                if items.is_empty() {
                    return Err(error(Some(&here), FilterErrorKind::EmptyArray));
                }
                if items.len() > BOUNDS.branches {
                    let what = if key == "$and" {
                        "`$and` branches"
                    } else {
                        "`$or` branches"
                    };
                    return Err(too_large(Some(&here), what, BOUNDS.branches));
                }
                let children = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        parse_node(
                            item,
                            Some(&child(Some(&here), Segment::Index(i))),
                            depth + 1,
                        )
                    })
                    .collect::<Result<Box<[Node]>, _>>()?;
                if key == "$and" {
                    Node::All(children)
                } else {
                    Node::Any(children)
                }
            }
            "$not" => Node::Not(Box::new(parse_node(arg, Some(&here), depth + 1)?)),
            "$text" => Node::Text(parse_text(arg, Some(&here), key)?),
            k if k.starts_with('$') => {
                return Err(error(loc, FilterErrorKind::UnknownOperator(key.clone())));
            }
            k => {
                let path = FieldPath::parse(k).map_err(|kind| error(loc, kind))?;
                Node::Field(path, parse_field_value(arg, Some(&here), depth)?)
            }
        };
        nodes.push(node);
    }
    Ok(if nodes.len() == 1 {
        nodes.pop().expect("length checked")
    } else {
        Node::All(nodes.into())
    })
}

/// How a field's value is read: a non-empty object whose keys all start with
/// `$` is an operator object; any other value (including `{}`) is compared
/// for equality.
fn parse_field_value(
    value: &Value,
    loc: Option<&Loc<'_>>,
    depth: usize,
) -> Result<Cond, FilterError> {
    too_deep(loc, depth)?;
    match value {
        Value::Object(map) if !map.is_empty() => {
            let operators = map.keys().filter(|k| k.starts_with('$')).count();
            if operators == map.len() {
                parse_operators(map, loc, depth)
            } else if operators == 0 {
                Ok(Cond::Eq(value.clone()))
            } else {
                Err(error(loc, FilterErrorKind::MixedOperatorObject))
            }
        }
        _ => Ok(Cond::Eq(value.clone())),
    }
}

fn parse_text(arg: &Value, loc: Option<&Loc<'_>>, op: &str) -> Result<TextTerms, FilterError> {
    let Value::String(s) = arg else {
        return Err(invalid_operand(loc, op, "a string"));
    };
    TextTerms::parse(s).ok_or_else(|| invalid_operand(loc, op, "a string with at least one word"))
}

fn parse_operators(
    map: &Map<String, Value>,
    loc: Option<&Loc<'_>>,
    depth: usize,
) -> Result<Cond, FilterError> {
    let mut conds = Vec::with_capacity(map.len());
    for (op, arg) in map {
        let here = child(loc, Segment::Key(op));
        let here = Some(&here);
        let cond = match op.as_str() {
            "$eq" => Cond::Eq(arg.clone()),
            "$ne" => Cond::Not(Box::new(Cond::Eq(arg.clone()))),
            "$gt" | "$gte" | "$lt" | "$lte" => {
                if !matches!(arg, Value::Bool(_) | Value::Number(_) | Value::String(_)) {
                    return Err(invalid_operand(here, op, "a number, string or boolean"));
                }
                let range = match op.as_str() {
                    "$gt" => RangeOp::Gt,
                    "$gte" => RangeOp::Gte,
                    "$lt" => RangeOp::Lt,
                    _ => RangeOp::Lte,
                };
                Cond::Range(range, arg.clone())
            }
            "$in" | "$nin" => {
                let Value::Array(items) = arg else {
                    return Err(error(here, FilterErrorKind::ExpectedArray));
                };
                if items.len() > BOUNDS.in_values {
                    return Err(too_large(here, "`$in`/`$nin` values", BOUNDS.in_values));
                }
                let mut values = items.clone();
                values.sort_by(compare_values);
                values.dedup_by(|a, b| compare_values(a, b) == Ordering::Equal);
                let cond = Cond::In(values.into());
                if op == "$in" {
                    cond
                } else {
                    Cond::Not(Box::new(cond))
                }
            }
            "$exists" => match arg {
                Value::Bool(b) => Cond::Exists(*b),
                _ => return Err(invalid_operand(here, op, "a boolean")),
            },
            "$not" => Cond::Not(Box::new(parse_field_value(arg, here, depth + 1)?)),
            "$like" | "$ilike" => {
                let Value::String(s) = arg else {
                    return Err(invalid_operand(here, op, "a string"));
                };
                if s.chars().count() > BOUNDS.pattern_chars {
                    return Err(too_large(here, "pattern characters", BOUNDS.pattern_chars));
                }
                let pattern = LikePattern::parse(s, op == "$ilike")
                    .map_err(|invalid| invalid_operand(here, op, invalid.0))?;
                Cond::Like(pattern)
            }
            "$text" => Cond::Text(parse_text(arg, here, op)?),
            _ => return Err(error(loc, FilterErrorKind::UnknownOperator(op.clone()))),
        };
        conds.push(cond);
    }
    Ok(if conds.len() == 1 {
        conds.pop().expect("length checked")
    } else {
        Cond::All(conds.into())
    })
}

fn parse_bounded(value: &Value, loc: Option<&Loc<'_>>) -> Result<Node, FilterError> {
    let root = parse_node(value, loc, 0)?;
    if root.size() > BOUNDS.conditions {
        return Err(too_large(loc, "conditions", BOUNDS.conditions));
    }
    Ok(root)
}

/// A parsed filter, ready to be evaluated against many documents.
///
/// See the [crate documentation](crate) for the language.
#[derive(Clone, Debug)]
pub struct Filter {
    root: Node,
}

impl Filter {
    /// Parses and compiles a filter object.
    pub fn parse(filter: &Value) -> Result<Filter, FilterError> {
        Ok(Filter {
            root: parse_bounded(filter, None)?,
        })
    }

    /// The filter `{}`, which matches every document.
    pub fn match_all() -> Filter {
        Filter {
            root: Node::All(Box::new([])),
        }
    }

    /// Whether `doc` satisfies the filter.
    pub fn matches(&self, doc: &Value) -> bool {
        self.root.eval(doc)
    }
}

impl Default for Filter {
    fn default() -> Self {
        Filter::match_all()
    }
}

/// A parsed pipeline: `[{"$match": filter}, ...]`.
///
/// A document passes when it matches every stage, so an empty pipeline passes
/// everything. `$match` is the only stage in this version.
#[derive(Clone, Debug, Default)]
pub struct Pipeline {
    stages: Box<[Filter]>,
}

impl Pipeline {
    /// Parses a pipeline array. Error paths start with the stage index,
    /// e.g. `0.$match.status`.
    pub fn parse(pipeline: &Value) -> Result<Pipeline, FilterError> {
        let Value::Array(stages) = pipeline else {
            return Err(error(None, FilterErrorKind::ExpectedArray));
        };
        let stages = stages
            .iter()
            .enumerate()
            .map(|(i, stage)| {
                let here = child(None, Segment::Index(i));
                let Value::Object(map) = stage else {
                    return Err(error(Some(&here), FilterErrorKind::ExpectedObject));
                };
                let mut entries = map.iter();
                let (Some((name, body)), None) = (entries.next(), entries.next()) else {
                    return Err(error(
                        Some(&here),
                        FilterErrorKind::StageKeyCount(map.len()),
                    ));
                };
                if name != "$match" {
                    return Err(error(
                        Some(&here),
                        FilterErrorKind::UnknownStage(name.clone()),
                    ));
                }
                let body_loc = child(Some(&here), Segment::Key(name));
                Ok(Filter {
                    root: parse_bounded(body, Some(&body_loc))?,
                })
            })
            .collect::<Result<Box<[Filter]>, _>>()?;
        Ok(Pipeline { stages })
    }

    /// Whether `doc` passes every stage.
    pub fn matches(&self, doc: &Value) -> bool {
        self.stages.iter().all(|f| f.matches(doc))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refused(filter: Value) -> FilterError {
        Filter::parse(&filter).expect_err("over a bound")
    }

    #[test]
    fn filters_beyond_the_bounds_are_refused_with_their_path() {
        let branches: Vec<_> = (0..=BOUNDS.branches).map(|i| json!({"n": i})).collect();
        let err = refused(json!({"$or": branches}));
        assert_eq!(err.path, "$or");
        assert!(
            matches!(err.kind, FilterErrorKind::TooLarge { limit, .. } if limit == BOUNDS.branches)
        );

        let values: Vec<_> = (0..=BOUNDS.in_values).collect();
        assert_eq!(refused(json!({"a": {"$in": values}})).path, "a.$in");

        let pattern = "%".repeat(BOUNDS.pattern_chars + 1);
        assert_eq!(refused(json!({"a": {"$like": pattern}})).path, "a.$like");

        let fields: Map<String, Value> = (0..=BOUNDS.conditions)
            .map(|i| (format!("f{i}"), json!(i)))
            .collect();
        let err = refused(Value::Object(fields));
        assert!(matches!(
            err.kind,
            FilterErrorKind::TooLarge {
                what: "conditions",
                ..
            }
        ));
    }

    #[test]
    fn filters_at_the_bounds_are_accepted() {
        let branches: Vec<_> = (0..BOUNDS.branches).map(|i| json!({"n": i})).collect();
        let values: Vec<_> = (0..BOUNDS.in_values).collect();
        let pattern = "%".repeat(BOUNDS.pattern_chars);
        let filter = json!({"$or": branches, "a": {"$in": values}, "b": {"$like": pattern}});
        assert!(Filter::parse(&filter).is_ok());
    }
}
