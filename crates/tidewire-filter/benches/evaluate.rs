//! Cost of evaluating compiled filters against a change event.
//!
//! `baseline/*` are the reference points: `{}` (the floor of a call through the
//! filter machinery) and the same conditions as `filter/typical` written by hand
//! in Rust. Read the other results as multiples of these.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use tidewire_filter::{Filter, Pipeline};

fn change_event() -> Value {
    json!({
        "_id": {"_data": "8263a1f0e2000000012b022c0100296e5a1004"},
        "operationType": "update",
        "clusterTime": 1_700_000_000_u64,
        "database": "mydb",
        "collection": "users",
        "documentKey": {"_id": "user1"},
        "fullDocument": {
            "_id": "user1",
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "age": 36,
            "country": "USA",
            "status": "active",
            "tags": ["vip", "beta", "newsletter"],
            "address": {"city": "London", "zip": "NW1"},
            "orders": [{"sku": "A1", "qty": 2}, {"sku": "B7", "qty": 1}],
        },
        "updateDescription": {
            "updatedFields": {"age": 36, "status": "active"},
            "removedFields": [],
        },
    })
}

fn typical() -> Value {
    json!({
        "operationType": {"$in": ["insert", "update", "replace"]},
        "fullDocument.age": {"$gte": 18},
        "fullDocument.country": "USA",
    })
}

fn hand_written(doc: &Value) -> bool {
    matches!(
        doc.get("operationType").and_then(Value::as_str),
        Some("insert" | "update" | "replace")
    ) && doc
        .get("fullDocument")
        .and_then(|d| d.get("age"))
        .and_then(Value::as_f64)
        .is_some_and(|age| age >= 18.0)
        && doc
            .get("fullDocument")
            .and_then(|d| d.get("country"))
            .and_then(Value::as_str)
            == Some("USA")
}

fn bench(c: &mut Criterion) {
    let doc = change_event();
    assert!(hand_written(&doc));

    let mut baseline = c.benchmark_group("baseline");
    let all = Filter::match_all();
    baseline.bench_function("match_all", |b| b.iter(|| all.matches(black_box(&doc))));
    baseline.bench_function("hand_written", |b| b.iter(|| hand_written(black_box(&doc))));
    baseline.finish();

    let cases = [
        ("typical", typical()),
        (
            "logical",
            json!({"$or": [
                {"operationType": "delete"},
                {"$and": [
                    {"fullDocument.status": {"$ne": "banned"}},
                    {"fullDocument.orders.1.qty": {"$lt": 5}},
                    {"$not": {"fullDocument.address.city": {"$in": ["Paris", "Berlin"]}}},
                ]},
            ]}),
        ),
        (
            "patterns",
            json!({
                "fullDocument.email": {"$ilike": "%@EXAMPLE.com"},
                "fullDocument.name": {"$text": "lovelace"},
            }),
        ),
        ("document_text", json!({"$text": "london ada"})),
    ];
    let mut group = c.benchmark_group("filter");
    for (name, spec) in &cases {
        let filter = Filter::parse(spec).expect("benchmark filter is valid");
        assert!(filter.matches(&doc), "{name} should match the event");
        group.bench_function(*name, |b| b.iter(|| filter.matches(black_box(&doc))));
    }
    let pipeline = Pipeline::parse(&json!([{"$match": typical()}])).unwrap();
    group.bench_function("pipeline_typical", |b| {
        b.iter(|| pipeline.matches(black_box(&doc)))
    });
    group.finish();

    let spec = typical();
    c.bench_function("parse/typical", |b| {
        b.iter(|| Filter::parse(black_box(&spec)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
