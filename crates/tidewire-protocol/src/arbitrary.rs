//! proptest strategies for the message types, enabled by the `arbitrary`
//! feature. Generated values are valid by the schemas, so they serve both the
//! round-trip tests here and sequence generation in the conformance tooling.

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::names::{CollectionName, Name, RequestId};
use crate::types::{Filter, Object, ResumeToken, Timestamp};

/// Field names shared by generated records and filters, so that filters hit fields.
pub const FIELDS: [&str; 5] = ["status", "age", "name", "tags", "score"];

/// A JSON value of bounded size and depth. Numbers are integers so that
/// serialization round-trips exactly.
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1_000_000i64..1_000_000).prop_map(Value::from),
        "[a-zA-Z0-9 _.-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A JSON value other than `null`, for optional fields where `null` and absence are the same.
pub fn json_not_null() -> impl Strategy<Value = Value> {
    json().prop_filter("null reads back as an absent field", |v| !v.is_null())
}

/// A JSON object with keys drawn mostly from [`FIELDS`].
pub fn object() -> impl Strategy<Value = Object> {
    prop::collection::btree_map(key(), json(), 0..5).prop_map(|map| map.into_iter().collect())
}

/// An object of extension members only (`x-` names), which every code's
/// `error.details` may carry whatever members the registry types for it.
pub fn extension_members() -> impl Strategy<Value = Object> {
    prop::collection::btree_map("x-[a-z][a-z0-9_]{0,6}", json(), 0..4)
        .prop_map(|map| map.into_iter().collect())
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(&FIELDS[..]).prop_map(str::to_string),
        1 => "[a-z][a-z0-9_]{0,6}",
    ]
}

/// A filter of the filter language: field equality, ranges, `$in`, and logical combinations.
pub fn filter() -> impl Strategy<Value = Filter> {
    let field = prop::sample::select(&FIELDS[..]).prop_map(str::to_string);
    let scalar = prop_oneof![
        (-100i64..100).prop_map(Value::from),
        "[a-z]{1,6}".prop_map(Value::String),
        any::<bool>().prop_map(Value::Bool),
    ];
    let condition = prop_oneof![
        scalar.clone(),
        (
            prop::sample::select(&["$gt", "$gte", "$lt", "$lte", "$ne"][..]),
            scalar.clone()
        )
            .prop_map(|(op, v)| single(op, v)),
        prop::collection::vec(scalar, 0..3).prop_map(|vs| single("$in", Value::Array(vs))),
        any::<bool>().prop_map(|b| single("$exists", Value::Bool(b))),
    ];
    let leaf = prop::collection::btree_map(field, condition, 0..3)
        .prop_map(|map| Value::Object(map.into_iter().collect()));
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3)
                .prop_map(|fs| single("$and", Value::Array(fs))),
            prop::collection::vec(inner.clone(), 1..3)
                .prop_map(|fs| single("$or", Value::Array(fs))),
            inner.prop_map(|f| single("$not", f)),
        ]
    })
    .prop_map(|value| match value {
        Value::Object(object) => Filter(object),
        _ => unreachable!("filters are objects"),
    })
}

fn single(key: &str, value: Value) -> Value {
    let mut map = Map::new();
    map.insert(key.to_string(), value);
    Value::Object(map)
}

impl Arbitrary for Filter {
    type Parameters = ();
    type Strategy = BoxedStrategy<Filter>;
    fn arbitrary_with((): ()) -> Self::Strategy {
        filter().boxed()
    }
}

impl Arbitrary for Timestamp {
    type Parameters = ();
    type Strategy = BoxedStrategy<Timestamp>;
    fn arbitrary_with((): ()) -> Self::Strategy {
        (
            2020u32..2030,
            1u32..=12,
            1u32..=28,
            0u32..24,
            0u32..60,
            0u32..60,
            0u32..1000,
        )
            .prop_map(|(y, mo, d, h, mi, s, ms)| {
                Timestamp(format!(
                    "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z"
                ))
            })
            .boxed()
    }
}

impl Arbitrary for ResumeToken {
    type Parameters = ();
    type Strategy = BoxedStrategy<ResumeToken>;
    fn arbitrary_with((): ()) -> Self::Strategy {
        "[A-Za-z0-9_-]{1,40}".prop_map(ResumeToken).boxed()
    }
}

macro_rules! arbitrary_name {
    ($name:ident, $regex:literal) => {
        impl Arbitrary for $name {
            type Parameters = ();
            type Strategy = BoxedStrategy<$name>;
            fn arbitrary_with((): ()) -> Self::Strategy {
                $regex
                    .prop_map(|s: String| $name::new(s).expect("strategy yields valid names"))
                    .boxed()
            }
        }
    };
}

arbitrary_name!(RequestId, "[!-~]{1,16}");
arbitrary_name!(CollectionName, "[a-z][a-z0-9_-]{0,7}");
arbitrary_name!(Name, "[a-z][a-z0-9_.:-]{0,11}");

/// A score or vector component: an integer, so that serialization round-trips exactly.
pub fn score() -> impl Strategy<Value = f64> {
    (-1000i32..1000).prop_map(f64::from)
}

/// A short query vector of integer components.
pub fn vector() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(score(), 1..6)
}

/// A search result with an integer score.
pub fn scored_record() -> impl Strategy<Value = crate::types::ScoredRecord> {
    (object(), score()).prop_map(|(record, score)| crate::types::ScoredRecord { record, score })
}
