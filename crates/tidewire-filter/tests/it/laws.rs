//! Algebraic laws of the filter language, checked over generated documents and
//! filters. Field names and scalar values come from small sets so that filters
//! actually hit the fields present in documents and equalities actually occur.

use std::cmp::Ordering;

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use tidewire_filter::{compare, lookup, Filter, Pipeline};

const KEYS: &[&str] = &["a", "b", "x", "0", "1"];
const PATHS: &[&str] = &[
    "a", "b", "x", "a.b", "a.0", "x.a", "b.1", "a.x.b", "0", "a.b.0",
];
const STRINGS: &[&str] = &[
    "",
    "a",
    "A",
    "b",
    "ab",
    "abc",
    "ABC",
    "a_c",
    "a%c",
    "Quick fox",
    "fox",
    "é",
    "É",
    "\\",
];
const PATTERNS: &[&str] = &[
    "%", "a%", "%b", "a_c", "_", "abc", "%o%", "A%", "a\\%c", "é", "%fox", "", "\\\\",
];
const TERMS: &[&str] = &["fox", "quick FOX", "a", "abc", "é", "b a"];

fn pick(set: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(set).prop_map(str::to_owned)
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-3i64..=3).prop_map(Value::from),
        prop::sample::select(vec![-1.5f64, -0.0, 0.0, 0.5, 1.0, 2.0, 2.5, 1e300])
            .prop_map(Value::from),
        prop::sample::select(vec![
            json!(u64::MAX),
            json!(u64::MAX - 1),
            json!(i64::MIN),
            json!(9_007_199_254_740_993_u64),
            json!(9_007_199_254_740_992.0_f64),
            json!(18_446_744_073_709_551_616.0_f64),
        ]),
    ]
}

/// Values accepted by range operators.
fn range_operand() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        number(),
        pick(STRINGS).prop_map(Value::from),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![1 => Just(Value::Null), 6 => range_operand()]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((pick(KEYS), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn document() -> impl Strategy<Value = Value> {
    prop::collection::vec((pick(KEYS), json_value()), 0..5)
        .prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

/// A field-level operator object, possibly with nested `$not`.
fn operator_object() -> impl Strategy<Value = Value> {
    let op = prop_oneof![
        json_value().prop_map(|v| ("$eq".to_owned(), v)),
        json_value().prop_map(|v| ("$ne".to_owned(), v)),
        (
            prop::sample::select(vec!["$gt", "$gte", "$lt", "$lte"]),
            range_operand()
        )
            .prop_map(|(o, v)| (o.to_owned(), v)),
        (
            prop::sample::select(vec!["$in", "$nin"]),
            prop::collection::vec(json_value(), 0..4)
        )
            .prop_map(|(o, v)| (o.to_owned(), Value::Array(v))),
        any::<bool>().prop_map(|b| ("$exists".to_owned(), Value::Bool(b))),
        (
            prop::sample::select(vec!["$like", "$ilike"]),
            pick(PATTERNS)
        )
            .prop_map(|(o, p)| (o.to_owned(), Value::String(p))),
        pick(TERMS).prop_map(|t| ("$text".to_owned(), Value::String(t))),
    ];
    prop::collection::vec(op, 1..3)
        .prop_map(|ops| Value::Object(ops.into_iter().collect()))
        .prop_recursive(2, 8, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|o| json!({ "$not": o })),
                json_value().prop_map(|v| json!({ "$not": v })),
                (inner.clone(), inner).prop_map(|(a, b)| {
                    let mut m = a.as_object().cloned().unwrap_or_default();
                    m.extend(b.as_object().cloned().unwrap_or_default());
                    Value::Object(m)
                }),
            ]
        })
}

fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![json_value(), operator_object()]
}

fn filter() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        6 => (pick(PATHS), field_value()).prop_map(|(p, v)| json!({ p: v })),
        1 => pick(TERMS).prop_map(|t| json!({ "$text": t })),
        1 => Just(json!({})),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(|fs| json!({ "$and": fs })),
            prop::collection::vec(inner.clone(), 1..4).prop_map(|fs| json!({ "$or": fs })),
            inner.clone().prop_map(|f| json!({ "$not": f })),
            prop::collection::vec(inner, 2..4).prop_map(|fs| {
                let mut m = Map::new();
                for f in fs {
                    m.extend(f.as_object().cloned().unwrap_or_default());
                }
                Value::Object(m)
            }),
        ]
    })
}

fn eval(filter: &Value, doc: &Value) -> bool {
    Filter::parse(filter)
        .unwrap_or_else(|e| panic!("generated filter {filter} was rejected: {e}"))
        .matches(doc)
}

/// Arbitrary JSON biased towards the language's own keywords, for robustness.
fn hostile_json() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "$and", "$or", "$not", "$text", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin",
        "$exists", "$like", "$ilike", "$match", "$foo", "a", "a.b", "", "a..b", "0",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,6}".prop_map(Value::from),
        pick(PATTERNS).prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 48, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..5).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

fn like_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn not_inverts(f in filter(), doc in document()) {
        prop_assert_eq!(eval(&json!({"$not": f}), &doc), !eval(&f, &doc));
    }

    #[test]
    fn singleton_and_or_are_identity(f in filter(), doc in document()) {
        let base = eval(&f, &doc);
        prop_assert_eq!(eval(&json!({"$and": [f]}), &doc), base);
        prop_assert_eq!(eval(&json!({"$or": [f]}), &doc), base);
    }

    #[test]
    fn and_or_are_conjunction_disjunction(f in filter(), g in filter(), doc in document()) {
        let (a, b) = (eval(&f, &doc), eval(&g, &doc));
        prop_assert_eq!(eval(&json!({"$and": [f, g]}), &doc), a && b);
        prop_assert_eq!(eval(&json!({"$or": [f, g]}), &doc), a || b);
    }

    #[test]
    fn de_morgan(f in filter(), g in filter(), doc in document()) {
        prop_assert_eq!(
            eval(&json!({"$not": {"$and": [f, g]}}), &doc),
            eval(&json!({"$or": [{"$not": f}, {"$not": g}]}), &doc)
        );
        prop_assert_eq!(
            eval(&json!({"$not": {"$or": [f, g]}}), &doc),
            eval(&json!({"$and": [{"$not": f}, {"$not": g}]}), &doc)
        );
    }

    #[test]
    fn field_not_inverts(p in pick(PATHS), ops in operator_object(), doc in document()) {
        prop_assert_eq!(
            eval(&json!({ p.clone(): {"$not": ops} }), &doc),
            !eval(&json!({ p: ops }), &doc)
        );
    }

    #[test]
    fn singleton_in_is_eq(p in pick(PATHS), v in json_value(), doc in document()) {
        prop_assert_eq!(
            eval(&json!({ p.clone(): {"$in": [v]} }), &doc),
            eval(&json!({ p.clone(): {"$eq": v} }), &doc)
        );
        prop_assert_eq!(
            eval(&json!({ p.clone(): {"$nin": [v]} }), &doc),
            eval(&json!({ p: {"$ne": v} }), &doc)
        );
    }

    #[test]
    fn in_is_disjunction_of_eq(
        p in pick(PATHS),
        vs in prop::collection::vec(json_value(), 1..6),
        doc in document(),
    ) {
        let any: Vec<Value> = vs.iter().map(|v| json!({ p.clone(): {"$eq": v} })).collect();
        prop_assert_eq!(
            eval(&json!({ p: {"$in": vs} }), &doc),
            eval(&json!({"$or": any}), &doc)
        );
    }

    #[test]
    fn bare_value_is_eq(p in pick(PATHS), v in json_value(), doc in document()) {
        prop_assert_eq!(eval(&json!({ p.clone(): v }), &doc), eval(&json!({ p: {"$eq": v} }), &doc));
    }

    #[test]
    fn inclusive_range_is_strict_or_eq(
        p in pick(PATHS),
        v in range_operand(),
        doc in document(),
        w in range_operand(),
    ) {
        // Random documents rarely hold a value equal to `v`; the flat document
        // `{"x": w}` draws from the same small domain, so equality is common.
        for (p, doc) in [(p, doc), ("x".to_owned(), json!({ "x": w }))] {
            prop_assert_eq!(
                eval(&json!({ p.clone(): {"$gte": v} }), &doc),
                eval(&json!({"$or": [{ p.clone(): {"$gt": v} }, { p.clone(): {"$eq": v} }]}), &doc)
            );
            prop_assert_eq!(
                eval(&json!({ p.clone(): {"$lte": v} }), &doc),
                eval(&json!({"$or": [{ p.clone(): {"$lt": v} }, { p: {"$eq": v} }]}), &doc)
            );
        }
    }

    #[test]
    fn ranges_agree_with_compare(a in range_operand(), b in range_operand()) {
        let doc = json!({ "x": a });
        let ord = compare(Some(&a), Some(&b));
        let same_class = std::mem::discriminant(&a) == std::mem::discriminant(&b);
        prop_assert_eq!(eval(&json!({"x": {"$gt": b}}), &doc), same_class && ord == Ordering::Greater);
        prop_assert_eq!(eval(&json!({"x": {"$lt": b}}), &doc), same_class && ord == Ordering::Less);
        prop_assert_eq!(eval(&json!({"x": {"$gte": b}}), &doc), same_class && ord != Ordering::Less);
        prop_assert_eq!(eval(&json!({"x": {"$lte": b}}), &doc), same_class && ord != Ordering::Greater);
        prop_assert_eq!(eval(&json!({"x": {"$eq": b}}), &doc), ord == Ordering::Equal);
    }

    #[test]
    fn compare_is_consistent_with_eq(a in json_value(), b in json_value()) {
        let equal = compare(Some(&a), Some(&b)) == Ordering::Equal;
        prop_assert_eq!(eval(&json!({"x": {"$eq": b}}), &json!({ "x": a })), equal);
    }

    #[test]
    fn compare_is_a_total_order(
        a in prop::option::of(json_value()),
        b in prop::option::of(json_value()),
        c in prop::option::of(json_value()),
    ) {
        let (a, b, c) = (a.as_ref(), b.as_ref(), c.as_ref());
        prop_assert_eq!(compare(a, a), Ordering::Equal);
        prop_assert_eq!(compare(a, b), compare(b, a).reverse());
        let (ab, bc, ac) = (compare(a, b), compare(b, c), compare(a, c));
        if ab != Ordering::Greater && bc != Ordering::Greater {
            prop_assert_ne!(ac, Ordering::Greater);
        }
        if ab == Ordering::Equal {
            prop_assert_eq!(ac, bc);
        }
    }

    #[test]
    fn sorting_is_transitive_on_scalars(mut vs in prop::collection::vec(prop::option::of(scalar()), 0..12)) {
        // Scalars collide often, so this exercises transitivity where the
        // triple-based law above rarely finds related values.
        vs.sort_by(|x, y| compare(x.as_ref(), y.as_ref()));
        for i in 0..vs.len() {
            for j in i..vs.len() {
                prop_assert_ne!(compare(vs[i].as_ref(), vs[j].as_ref()), Ordering::Greater);
            }
        }
    }

    #[test]
    fn pipeline_is_conjunction(f in filter(), g in filter(), doc in document()) {
        let pipeline = Pipeline::parse(&json!([{"$match": f}, {"$match": g}])).unwrap();
        prop_assert_eq!(pipeline.matches(&doc), eval(&json!({"$and": [f, g]}), &doc));
    }

    #[test]
    fn like_without_wildcards_is_eq(
        s in "[a-cA-Cé ]{0,4}",
        p in pick(PATHS),
        doc in document(),
    ) {
        prop_assert_eq!(
            eval(&json!({ p.clone(): {"$like": s} }), &doc),
            eval(&json!({ p: {"$eq": s} }), &doc)
        );
    }

    #[test]
    fn escaped_like_is_eq(s in "[ab%_\\\\é]{0,5}", t in "[ab%_\\\\é]{0,5}") {
        let doc = json!({ "x": t });
        prop_assert_eq!(
            eval(&json!({"x": {"$like": like_escape(&s)}}), &doc),
            s == t
        );
    }

    #[test]
    fn exists_agrees_with_lookup(p in pick(PATHS), doc in document()) {
        let found = lookup(&doc, &p);
        prop_assert_eq!(eval(&json!({ p.clone(): {"$exists": true} }), &doc), found.is_some());
        if let Some(v) = found {
            let matched = eval(&json!({ p: {"$eq": v} }), &doc);
            prop_assert!(matched, "the value found by lookup must equal itself");
        }
    }

    #[test]
    fn parse_never_panics(v in hostile_json(), doc in document()) {
        if let Ok(f) = Filter::parse(&v) {
            f.matches(&doc);
        }
        if let Ok(p) = Pipeline::parse(&json!([{"$match": v}])) {
            p.matches(&doc);
        }
        let _ = Pipeline::parse(&v);
    }
}
