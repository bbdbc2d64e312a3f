//! Every error kind, with its exact location and rendering.

use serde_json::{json, Value};
use tidewire_filter::{Filter, FilterError, FilterErrorKind, Pipeline, MAX_DEPTH};

fn filter_err(filter: Value) -> FilterError {
    match Filter::parse(&filter) {
        Ok(parsed) => panic!("{filter} parsed unexpectedly: {parsed:?}"),
        Err(e) => e,
    }
}

fn pipeline_err(pipeline: Value) -> FilterError {
    match Pipeline::parse(&pipeline) {
        Ok(parsed) => panic!("{pipeline} parsed unexpectedly: {parsed:?}"),
        Err(e) => e,
    }
}

fn check(err: FilterError, path: &str, kind: FilterErrorKind, display: &str) {
    assert_eq!(err.path, path, "path of {err}");
    assert_eq!(err.kind, kind, "kind of {err}");
    assert_eq!(err.to_string(), display);
}

fn operand(operator: &str, expected: &'static str) -> FilterErrorKind {
    FilterErrorKind::InvalidOperand {
        operator: operator.to_owned(),
        expected,
    }
}

#[test]
fn unknown_operator() {
    check(
        filter_err(json!({"$and": [{"a": 1}, {"age": {"$foo": 1}}]})),
        "$and.1.age",
        FilterErrorKind::UnknownOperator("$foo".into()),
        "invalid filter at `$and.1.age`: unknown operator `$foo`",
    );
    check(
        filter_err(json!({"$where": "1"})),
        "",
        FilterErrorKind::UnknownOperator("$where".into()),
        "invalid filter: unknown operator `$where`",
    );
    // Logical operators are not field operators, and vice versa.
    check(
        filter_err(json!({"a": {"$and": [{"b": 1}]}})),
        "a",
        FilterErrorKind::UnknownOperator("$and".into()),
        "invalid filter at `a`: unknown operator `$and`",
    );
    check(
        filter_err(json!({"$or": [{"$gt": 1}]})),
        "$or.0",
        FilterErrorKind::UnknownOperator("$gt".into()),
        "invalid filter at `$or.0`: unknown operator `$gt`",
    );
    check(
        filter_err(json!({"a": {"$not": {"$regex": "x"}}})),
        "a.$not",
        FilterErrorKind::UnknownOperator("$regex".into()),
        "invalid filter at `a.$not`: unknown operator `$regex`",
    );
}

#[test]
fn expected_array() {
    check(
        filter_err(json!({"$or": {"a": 1}})),
        "$or",
        FilterErrorKind::ExpectedArray,
        "invalid filter at `$or`: expected an array",
    );
    check(
        filter_err(json!({"x": {"$gt": 0}, "status": {"$in": "active"}})),
        "status.$in",
        FilterErrorKind::ExpectedArray,
        "invalid filter at `status.$in`: expected an array",
    );
    check(
        filter_err(json!({"status": {"$nin": null}})),
        "status.$nin",
        FilterErrorKind::ExpectedArray,
        "invalid filter at `status.$nin`: expected an array",
    );
    check(
        pipeline_err(json!({"$match": {}})),
        "",
        FilterErrorKind::ExpectedArray,
        "invalid filter: expected an array",
    );
}

#[test]
fn expected_object() {
    check(
        filter_err(json!([{"a": 1}])),
        "",
        FilterErrorKind::ExpectedObject,
        "invalid filter: expected an object",
    );
    check(
        filter_err(json!({"$and": [{"a": 1}, "b"]})),
        "$and.1",
        FilterErrorKind::ExpectedObject,
        "invalid filter at `$and.1`: expected an object",
    );
    check(
        filter_err(json!({"$not": true})),
        "$not",
        FilterErrorKind::ExpectedObject,
        "invalid filter at `$not`: expected an object",
    );
    check(
        pipeline_err(json!([{"$match": {}}, "$match"])),
        "1",
        FilterErrorKind::ExpectedObject,
        "invalid filter at `1`: expected an object",
    );
    check(
        pipeline_err(json!([{"$match": 5}])),
        "0.$match",
        FilterErrorKind::ExpectedObject,
        "invalid filter at `0.$match`: expected an object",
    );
}

#[test]
fn empty_array() {
    check(
        filter_err(json!({"$and": []})),
        "$and",
        FilterErrorKind::EmptyArray,
        "invalid filter at `$and`: expected a non-empty array",
    );
    check(
        filter_err(json!({"$not": {"$or": []}})),
        "$not.$or",
        FilterErrorKind::EmptyArray,
        "invalid filter at `$not.$or`: expected a non-empty array",
    );
    // Empty `$in`/`$nin` lists are valid.
    assert!(Filter::parse(&json!({"a": {"$in": [], "$nin": []}})).is_ok());
}

#[test]
fn invalid_operand() {
    let cases = [
        (json!({"a": {"$exists": 1}}), "a.$exists", operand("$exists", "a boolean"),
         "invalid filter at `a.$exists`: invalid operand for `$exists`: expected a boolean"),
        (json!({"a": {"$gt": null}}), "a.$gt", operand("$gt", "a number, string or boolean"),
         "invalid filter at `a.$gt`: invalid operand for `$gt`: expected a number, string or boolean"),
        (json!({"a": {"$gte": [1]}}), "a.$gte", operand("$gte", "a number, string or boolean"),
         "invalid filter at `a.$gte`: invalid operand for `$gte`: expected a number, string or boolean"),
        (json!({"a": {"$lt": {"n": 1}}}), "a.$lt", operand("$lt", "a number, string or boolean"),
         "invalid filter at `a.$lt`: invalid operand for `$lt`: expected a number, string or boolean"),
        (json!({"a": {"$lte": {}}}), "a.$lte", operand("$lte", "a number, string or boolean"),
         "invalid filter at `a.$lte`: invalid operand for `$lte`: expected a number, string or boolean"),
        (json!({"name": {"$like": 5}}), "name.$like", operand("$like", "a string"),
         "invalid filter at `name.$like`: invalid operand for `$like`: expected a string"),
        (json!({"name": {"$ilike": "abc\\"}}), "name.$ilike",
         operand("$ilike", "a pattern that does not end with an escaping `\\`"),
         "invalid filter at `name.$ilike`: invalid operand for `$ilike`: expected a pattern that does not end with an escaping `\\`"),
        (json!({"body": {"$text": ["a"]}}), "body.$text", operand("$text", "a string"),
         "invalid filter at `body.$text`: invalid operand for `$text`: expected a string"),
        (json!({"$text": " ,; "}), "$text", operand("$text", "a string with at least one word"),
         "invalid filter at `$text`: invalid operand for `$text`: expected a string with at least one word"),
        (json!({"$or": [{"$text": 3}]}), "$or.0.$text", operand("$text", "a string"),
         "invalid filter at `$or.0.$text`: invalid operand for `$text`: expected a string"),
    ];
    for (filter, path, kind, display) in cases {
        check(filter_err(filter), path, kind, display);
    }
}

#[test]
fn mixed_operator_object() {
    check(
        filter_err(json!({"age": {"$gt": 1, "lt": 5}})),
        "age",
        FilterErrorKind::MixedOperatorObject,
        "invalid filter at `age`: object mixes operators with field names",
    );
    check(
        filter_err(json!({"age": {"$not": {"x": 1, "$eq": 2}}})),
        "age.$not",
        FilterErrorKind::MixedOperatorObject,
        "invalid filter at `age.$not`: object mixes operators with field names",
    );
}

#[test]
fn invalid_path() {
    check(
        filter_err(json!({"$and": [{"a..b": 1}]})),
        "$and.0",
        FilterErrorKind::InvalidPath("a..b".into()),
        "invalid filter at `$and.0`: invalid field path `a..b`: empty segment",
    );
    check(
        filter_err(json!({"": 1})),
        "",
        FilterErrorKind::InvalidPath(String::new()),
        "invalid filter: invalid field path ``: empty segment",
    );
}

#[test]
fn pipeline_stage_errors() {
    check(
        pipeline_err(json!([{"$match": {}}, {"$project": {"a": 1}}])),
        "1",
        FilterErrorKind::UnknownStage("$project".into()),
        "invalid filter at `1`: unknown pipeline stage `$project`",
    );
    check(
        pipeline_err(json!([{"$match": {}, "$limit": 1}])),
        "0",
        FilterErrorKind::StageKeyCount(2),
        "invalid filter at `0`: a pipeline stage must have exactly one key, found 2",
    );
    check(
        pipeline_err(json!([{}])),
        "0",
        FilterErrorKind::StageKeyCount(0),
        "invalid filter at `0`: a pipeline stage must have exactly one key, found 0",
    );
    check(
        pipeline_err(json!([{"$match": {"status": {"$in": 1}}}])),
        "0.$match.status.$in",
        FilterErrorKind::ExpectedArray,
        "invalid filter at `0.$match.status.$in`: expected an array",
    );
    check(
        pipeline_err(json!([{"$match": {"ok": 1}}, {"$match": {"status": {"$bad": 1}}}])),
        "1.$match.status",
        FilterErrorKind::UnknownOperator("$bad".into()),
        "invalid filter at `1.$match.status`: unknown operator `$bad`",
    );
}

fn nest(levels: usize, wrap: impl Fn(Value) -> Value, leaf: Value) -> Value {
    (0..levels).fold(leaf, |inner, _| wrap(inner))
}

#[test]
fn too_deep() {
    let leaf = json!({"a": 1});
    // Exactly MAX_DEPTH levels are accepted, for every nesting operator.
    let wrappers: [fn(Value) -> Value; 3] = [
        |f| json!({"$not": f}),
        |f| json!({"$and": [f]}),
        |f| json!({"$or": [{"z": 0}, f]}),
    ];
    for wrap in wrappers {
        assert!(Filter::parse(&nest(MAX_DEPTH, wrap, leaf.clone())).is_ok());
        let err = filter_err(nest(MAX_DEPTH + 1, wrap, leaf.clone()));
        assert_eq!(err.kind, FilterErrorKind::TooDeep(MAX_DEPTH));
    }

    let err = filter_err(nest(MAX_DEPTH + 1, |f| json!({"$not": f}), leaf.clone()));
    let path = vec!["$not"; MAX_DEPTH + 1].join(".");
    assert_eq!(err.path, path);
    assert_eq!(
        err.to_string(),
        format!("invalid filter at `{path}`: nesting exceeds the maximum depth of 32")
    );

    let err = filter_err(nest(MAX_DEPTH + 1, |f| json!({"$and": [f]}), leaf.clone()));
    assert_eq!(err.path, vec!["$and.0"; MAX_DEPTH + 1].join("."));

    // Field-level `$not` counts too.
    let field = nest(MAX_DEPTH + 1, |f| json!({"$not": f}), json!(1));
    let err = filter_err(json!({ "a": field }));
    assert_eq!(err.kind, FilterErrorKind::TooDeep(MAX_DEPTH));
    assert_eq!(
        err.path,
        format!("a.{}", vec!["$not"; MAX_DEPTH + 1].join("."))
    );

    // A hostile filter far beyond the limit fails cleanly instead of overflowing.
    let hostile = nest(500, |f| json!({"$not": f}), leaf);
    assert_eq!(
        filter_err(hostile).kind,
        FilterErrorKind::TooDeep(MAX_DEPTH)
    );
}

#[test]
fn first_error_in_document_order() {
    let err = filter_err(json!({"b": {"$nope": 1}, "a": {"$in": 2}}));
    assert_eq!(err.path, "b");
    assert_eq!(err.kind, FilterErrorKind::UnknownOperator("$nope".into()));
}
