//! Table tests: filter, document, expected result.
//!
//! The first groups are the filter examples of the source documents, translated
//! into this language; the rest pin down the semantics the spec states.

use serde_json::{json, Value};
use tidewire_filter::{Filter, Pipeline};

fn run(rows: &[(Value, Value, bool)]) {
    for (i, (filter, doc, expected)) in rows.iter().enumerate() {
        let parsed = Filter::parse(filter)
            .unwrap_or_else(|e| panic!("row {i}: {filter} failed to parse: {e}"));
        assert_eq!(
            parsed.matches(doc),
            *expected,
            "row {i}: filter {filter} on {doc}"
        );
    }
}

fn change_event(op: &str, full_document: Value) -> Value {
    json!({
        "operationType": op,
        "database": "mydb",
        "collection": "users",
        "documentKey": {"_id": "user1"},
        "fullDocument": full_document,
    })
}

/// LauraDB change streams (seed 000).
#[test]
fn change_stream_filters() {
    let adult = change_event(
        "update",
        json!({"_id": "user1", "age": 30, "country": "USA"}),
    );
    let minor = change_event(
        "update",
        json!({"_id": "user1", "age": 17, "country": "USA"}),
    );
    let insert = change_event(
        "insert",
        json!({"_id": "user1", "age": 18, "type": "pageview"}),
    );
    let delete = json!({"operationType": "delete", "documentKey": {"_id": "user2"}});
    run(&[
        (json!({"operationType": "insert"}), insert.clone(), true),
        (json!({"operationType": "insert"}), adult.clone(), false),
        (
            json!({"operationType": {"$in": ["insert", "update"]}}),
            insert.clone(),
            true,
        ),
        (
            json!({"operationType": {"$in": ["insert", "update"]}}),
            adult.clone(),
            true,
        ),
        (
            json!({"operationType": {"$in": ["insert", "update"]}}),
            delete.clone(),
            false,
        ),
        (json!({"documentKey._id": "user1"}), adult.clone(), true),
        (json!({"documentKey._id": "user1"}), delete.clone(), false),
        (
            json!({"fullDocument.age": {"$gte": 18}}),
            adult.clone(),
            true,
        ),
        (
            json!({"fullDocument.age": {"$gte": 18}}),
            insert.clone(),
            true,
        ),
        (
            json!({"fullDocument.age": {"$gte": 18}}),
            minor.clone(),
            false,
        ),
        // A delete event has no fullDocument: range operators never match missing.
        (
            json!({"fullDocument.age": {"$gte": 18}}),
            delete.clone(),
            false,
        ),
        (
            json!({"$and": [{"operationType": "update"}, {"fullDocument.age": {"$gte": 18}}]}),
            adult.clone(),
            true,
        ),
        (
            json!({"$and": [{"operationType": "update"}, {"fullDocument.age": {"$gte": 18}}]}),
            minor.clone(),
            false,
        ),
        (
            json!({"$and": [{"operationType": "update"}, {"fullDocument.age": {"$gte": 18}}]}),
            insert.clone(),
            false,
        ),
        // "Use filters early": implicit AND of two keys.
        (
            json!({"operationType": "insert", "fullDocument.age": {"$gte": 18}}),
            insert.clone(),
            true,
        ),
        (
            json!({"operationType": "insert", "fullDocument.age": {"$gte": 18}}),
            adult.clone(),
            false,
        ),
        // Dashboard example.
        (
            json!({"operationType": "insert", "fullDocument.type": "pageview"}),
            insert.clone(),
            true,
        ),
        (
            json!({"operationType": "insert", "fullDocument.type": "pageview"}),
            change_event("insert", json!({"type": "click"})),
            false,
        ),
    ]);
}

#[test]
fn change_stream_pipelines() {
    let usa_insert = change_event("insert", json!({"country": "USA"}));
    let fr_insert = change_event("insert", json!({"country": "FR"}));
    let usa_update = change_event("update", json!({"country": "USA"}));

    let in_stage = Pipeline::parse(&json!([
        {"$match": {"operationType": {"$in": ["insert", "update"]}}}
    ]))
    .unwrap();
    assert!(in_stage.matches(&usa_insert));
    assert!(in_stage.matches(&usa_update));
    assert!(!in_stage.matches(&json!({"operationType": "delete"})));

    let two_stages = Pipeline::parse(&json!([
        {"$match": {"operationType": "insert"}},
        {"$match": {"fullDocument.country": "USA"}}
    ]))
    .unwrap();
    assert!(two_stages.matches(&usa_insert));
    assert!(!two_stages.matches(&fr_insert));
    assert!(!two_stages.matches(&usa_update));

    // The seed's request format shows `"pipeline": []`.
    let empty = Pipeline::parse(&json!([])).unwrap();
    assert!(empty.matches(&fr_insert));
    assert!(Pipeline::default().matches(&fr_insert));
}

/// Analytics stream (seed 001): dotted paths and any-of lists. The seed's
/// bare-array shorthand (`"user_id": ["a", "b"]`) is written `$in` here; a bare
/// array means array equality.
#[test]
fn analytics_filters() {
    let event = json!({
        "event_type": "user_action",
        "user_id": "user123",
        "user": {"id": "123", "plan": "pro"},
        "properties": {"page": "/checkout", "items": [{"sku": "A1"}, {"sku": "B2"}]},
    });
    let login = json!({"event_type": "login", "user_id": "user999", "user": {"id": "999"}});
    run(&[
        (
            json!({"event_type": "user_action", "user_id": {"$in": ["user123", "user456"]}}),
            event.clone(),
            true,
        ),
        (
            json!({"event_type": "user_action", "user_id": {"$in": ["user123", "user456"]}}),
            login.clone(),
            false,
        ),
        (json!({"user.id": "123"}), event.clone(), true),
        (json!({"user.id": "123"}), login.clone(), false),
        // Identifiers are strings; the number 123 is a different value.
        (json!({"user.id": 123}), event.clone(), false),
        (
            json!({"event_type": {"$in": ["login", "purchase"]}}),
            login.clone(),
            true,
        ),
        (
            json!({"event_type": {"$in": ["login", "purchase"]}}),
            event.clone(),
            false,
        ),
        (
            json!({"event_type": ["login", "purchase"]}),
            login.clone(),
            false,
        ),
        (json!({"properties.items.1.sku": "B2"}), event.clone(), true),
        (json!({"properties.items.sku": "B2"}), event.clone(), false),
        (
            json!({"properties.items.sku": {"$exists": false}}),
            event.clone(),
            true,
        ),
        (json!({"user.plan": {"$exists": true}}), event.clone(), true),
        (
            json!({"user.plan": {"$exists": true}}),
            login.clone(),
            false,
        ),
    ]);
}

/// CRUD subscriptions (seed 003): `{"column", "operator", "value"}` triples
/// become `{column: {"$op": value}}`.
#[test]
fn crud_operator_filters() {
    let row = json!({"id": 123, "name": "John Doe", "email": "john@example.com", "status": "active", "user_id": 7});
    let other = json!({"id": 124, "name": "jane roe", "email": "jane@example.org", "status": "inactive", "user_id": 8});
    run(&[
        (json!({"status": "active"}), row.clone(), true),
        (json!({"status": "active"}), other.clone(), false),
        (json!({"status": {"$eq": "active"}}), row.clone(), true),
        (json!({"status": {"$ne": "active"}}), row.clone(), false),
        (json!({"status": {"$ne": "active"}}), other.clone(), true),
        (json!({"id": {"$gt": 123}}), row.clone(), false),
        (json!({"id": {"$gt": 123}}), other.clone(), true),
        (json!({"id": {"$gte": 123}}), row.clone(), true),
        (json!({"id": {"$lt": 124}}), row.clone(), true),
        (json!({"id": {"$lt": 124}}), other.clone(), false),
        (json!({"id": {"$lte": 124}}), other.clone(), true),
        (
            json!({"id": {"$gt": 122.5, "$lt": 123.5}}),
            row.clone(),
            true,
        ),
        (json!({"name": {"$like": "John%"}}), row.clone(), true),
        (json!({"name": {"$like": "john%"}}), row.clone(), false),
        (json!({"name": {"$ilike": "JOHN%"}}), row.clone(), true),
        (json!({"name": {"$ilike": "J%E"}}), other.clone(), true),
        (
            json!({"email": {"$like": "%@example.___"}}),
            row.clone(),
            true,
        ),
        (
            json!({"email": {"$like": "%@example.___"}}),
            other.clone(),
            true,
        ),
        (
            json!({"email": {"$like": "%@example.__"}}),
            row.clone(),
            false,
        ),
        (json!({"id": {"$in": [123, 125]}}), row.clone(), true),
        (json!({"id": {"$in": [123, 125]}}), other.clone(), false),
        // Hook example: restrict to the user's own records.
        (
            json!({"status": "active", "user_id": {"$eq": 7}}),
            row.clone(),
            true,
        ),
        (
            json!({"status": "active", "user_id": {"$eq": 7}}),
            other.clone(),
            false,
        ),
    ]);
}

#[test]
fn missing_and_null_semantics() {
    let with_null = json!({"f": null, "n": 1});
    let without = json!({"n": 1});
    run(&[
        (json!({"f": null}), with_null.clone(), true),
        (json!({"f": null}), without.clone(), true),
        (json!({"f": {"$eq": null}}), without.clone(), true),
        (json!({"f": {"$in": [null, 1]}}), without.clone(), true),
        (json!({"f": {"$nin": [null]}}), without.clone(), false),
        (json!({"f": {"$ne": null}}), without.clone(), false),
        (json!({"f": {"$ne": null}}), json!({"f": 0}), true),
        (json!({"f": {"$eq": 1}}), without.clone(), false),
        (json!({"f": 1}), without.clone(), false),
        (json!({"f": {"$ne": 1}}), without.clone(), true),
        (json!({"f": {"$nin": [1, 2]}}), without.clone(), true),
        (json!({"f": {"$in": []}}), with_null.clone(), false),
        (json!({"f": {"$nin": []}}), without.clone(), true),
        (json!({"f": {"$exists": false}}), without.clone(), true),
        (json!({"f": {"$exists": false}}), with_null.clone(), false),
        (json!({"f": {"$exists": true}}), with_null.clone(), true),
        (json!({"f": {"$gte": 0}}), without.clone(), false),
        (json!({"f": {"$lt": 0}}), without.clone(), false),
        (json!({"f": {"$like": "%"}}), without.clone(), false),
        (json!({"f": {"$not": {"$gt": 5}}}), without.clone(), true),
        (json!({"f": {"$not": 1}}), without.clone(), true),
        (json!({"$not": {"f": {"$gt": 5}}}), without.clone(), true),
    ]);
}

#[test]
fn equality_semantics() {
    run(&[
        (json!({"n": 1}), json!({"n": 1.0}), true),
        (json!({"n": 1.5}), json!({"n": 1}), false),
        (
            json!({"n": 9_007_199_254_740_993_u64}),
            json!({"n": 9_007_199_254_740_992_u64}),
            false,
        ),
        (
            json!({"n": 9_007_199_254_740_993_u64}),
            json!({"n": 9_007_199_254_740_993_u64}),
            true,
        ),
        (
            json!({"n": 9_007_199_254_740_993_u64}),
            json!({"n": 9_007_199_254_740_992.0}),
            false,
        ),
        (json!({"n": u64::MAX}), json!({"n": u64::MAX}), true),
        (json!({"n": -0.0}), json!({"n": 0}), true),
        (
            json!({"o": {"a": 1, "b": [1, 2]}}),
            json!({"o": {"b": [1.0, 2], "a": 1}}),
            true,
        ),
        (
            json!({"o": {"a": 1}}),
            json!({"o": {"a": 1, "b": 2}}),
            false,
        ),
        (json!({"o": {}}), json!({"o": {}}), true),
        (json!({"o": {}}), json!({"o": {"a": 1}}), false),
        (
            json!({"o": {"$eq": {"$gt": 1}}}),
            json!({"o": {"$gt": 1}}),
            true,
        ),
        (json!({"a": [1, 2]}), json!({"a": [1, 2]}), true),
        (json!({"a": [1, 2]}), json!({"a": [2, 1]}), false),
        (json!({"a": 1}), json!({"a": [1]}), false),
        (json!({"a": "1"}), json!({"a": 1}), false),
        (json!({"a": true}), json!({"a": 1}), false),
        (
            json!({"a": {"$in": [[1], {"k": "v"}]}}),
            json!({"a": {"k": "v"}}),
            true,
        ),
        (json!({"a": {"$in": [1.0, 2]}}), json!({"a": 1}), true),
        (json!({"0": "x"}), json!({"0": "x"}), true),
    ]);
}

#[test]
fn range_semantics() {
    run(&[
        (json!({"s": {"$gt": "apple"}}), json!({"s": "banana"}), true),
        (
            json!({"s": {"$gt": "apple"}}),
            json!({"s": "Banana"}),
            false,
        ),
        (json!({"s": {"$lt": "é"}}), json!({"s": "z"}), true),
        (json!({"b": {"$gt": false}}), json!({"b": true}), true),
        (json!({"b": {"$lt": false}}), json!({"b": true}), false),
        (json!({"b": {"$gte": false}}), json!({"b": false}), true),
        // Across type classes nothing matches, in either direction.
        (json!({"x": {"$gt": 1}}), json!({"x": "2"}), false),
        (json!({"x": {"$lt": 1}}), json!({"x": "0"}), false),
        (json!({"x": {"$gt": 0}}), json!({"x": true}), false),
        (json!({"x": {"$gt": 0}}), json!({"x": null}), false),
        (json!({"x": {"$lt": 0}}), json!({"x": [-1]}), false),
        (json!({"x": {"$gt": "a"}}), json!({"x": {"a": 1}}), false),
        (json!({"x": {"$gt": 1, "$lt": 3}}), json!({"x": 2}), true),
        (json!({"x": {"$gt": 1, "$lt": 3}}), json!({"x": 3}), false),
        (
            json!({"x": {"$gte": 18_446_744_073_709_551_615_u64}}),
            json!({"x": 1.8446744073709552e19}),
            true,
        ),
        (
            json!({"x": {"$gt": 18_446_744_073_709_551_615_u64}}),
            json!({"x": 1.8446744073709552e19}),
            true,
        ),
        (
            json!({"x": {"$lt": -9_223_372_036_854_775_808_i64}}),
            json!({"x": -1e19}),
            true,
        ),
    ]);
}

#[test]
fn paths_do_not_traverse_arrays() {
    let doc = json!({"items": [{"name": "a"}, {"name": "b"}], "m": {"0": "obj-key"}, "s": "str"});
    run(&[
        (json!({"items.0.name": "a"}), doc.clone(), true),
        (json!({"items.1.name": "a"}), doc.clone(), false),
        (
            json!({"items.2.name": {"$exists": false}}),
            doc.clone(),
            true,
        ),
        (json!({"items.name": "a"}), doc.clone(), false),
        (
            json!({"items.01.name": {"$exists": true}}),
            doc.clone(),
            false,
        ),
        (json!({"m.0": "obj-key"}), doc.clone(), true),
        (json!({"s.length": {"$exists": true}}), doc.clone(), false),
        (json!({"s.0": {"$exists": true}}), doc.clone(), false),
    ]);
}

#[test]
fn logical_operators() {
    let doc = json!({"a": 1, "b": "x"});
    run(&[
        (json!({}), doc.clone(), true),
        (json!({}), json!(null), true),
        (json!({"$or": [{"a": 2}, {"b": "x"}]}), doc.clone(), true),
        (json!({"$or": [{"a": 2}, {"b": "y"}]}), doc.clone(), false),
        (json!({"$and": [{"a": 1}, {"b": "x"}]}), doc.clone(), true),
        (json!({"$and": [{"a": 1}, {"b": "y"}]}), doc.clone(), false),
        (json!({"$not": {"a": 1}}), doc.clone(), false),
        (json!({"$not": {"a": 2}}), doc.clone(), true),
        (json!({"$not": {}}), doc.clone(), false),
        (json!({"a": 1, "$or": [{"b": "nope"}]}), doc.clone(), false),
        (json!({"a": {"$not": {"$in": [2, 3]}}}), doc.clone(), true),
        (json!({"a": {"$not": {"$gte": 1}}}), doc.clone(), false),
        (
            json!({"a": {"$not": {"$not": {"$eq": 1}}}}),
            doc.clone(),
            true,
        ),
        (json!({"a": {"$not": {}}}), json!({"a": {}}), false),
        (
            json!({"a": {"$not": {"k": 1}}}),
            json!({"a": {"k": 1}}),
            false,
        ),
        (json!({"a": {"$gte": 1, "$ne": 1}}), doc.clone(), false),
        // A non-object document has no named fields, but index segments still apply.
        (json!({"a": {"$exists": false}}), json!([1, 2]), true),
        (json!({"0": 1}), json!([1, 2]), true),
        (json!({"0": 2}), json!([1, 2]), false),
    ]);
}

#[test]
fn like_and_text_operators() {
    let doc = json!({
        "title": "The Quick brown fox",
        "code": "100%_done\\ok",
        "tags": ["Rust", "web-sockets"],
        "meta": {"note": "jumps over the lazy dog"},
        "count": 3,
    });
    run(&[
        (json!({"title": {"$like": "The%fox"}}), doc.clone(), true),
        (json!({"title": {"$like": "The%"}}), doc.clone(), true),
        (json!({"title": {"$like": "the%"}}), doc.clone(), false),
        (json!({"title": {"$ilike": "the%FOX"}}), doc.clone(), true),
        (json!({"title": {"$like": "The Quick"}}), doc.clone(), false),
        (
            json!({"code": {"$like": "100\\%\\_done\\\\ok"}}),
            doc.clone(),
            true,
        ),
        (
            json!({"code": {"$like": "100\\%\\_done\\\\o"}}),
            doc.clone(),
            false,
        ),
        (json!({"count": {"$like": "3"}}), doc.clone(), false),
        (json!({"tags": {"$like": "%Rust%"}}), doc.clone(), false),
        (json!({"title": {"$text": "quick FOX"}}), doc.clone(), true),
        (json!({"title": {"$text": "quick dog"}}), doc.clone(), false),
        (json!({"title": {"$text": "qui"}}), doc.clone(), false),
        (json!({"tags": {"$text": "rust"}}), doc.clone(), false),
        (json!({"tags.1": {"$text": "sockets"}}), doc.clone(), true),
        (json!({"$text": "quick lazy rust"}), doc.clone(), true),
        (
            json!({"$text": "quick lazy rust sockets"}),
            doc.clone(),
            true,
        ),
        (json!({"$text": "quick lazy go"}), doc.clone(), false),
        // Keys are not searched, and numbers are not text.
        (json!({"$text": "meta"}), doc.clone(), false),
        (json!({"$text": "3"}), doc.clone(), false),
        (
            json!({"$or": [{"$text": "nothing"}, {"count": 3}]}),
            doc.clone(),
            true,
        ),
    ]);
}

#[test]
fn match_all_and_default() {
    for doc in [
        json!({}),
        json!(null),
        json!({"a": [1, {"b": 2}]}),
        json!("s"),
    ] {
        assert!(Filter::match_all().matches(&doc));
        assert!(Filter::default().matches(&doc));
        assert!(Filter::parse(&json!({})).unwrap().matches(&doc));
    }
}
