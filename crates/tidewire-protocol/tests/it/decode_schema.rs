//! The decoder and the schemas give the same answer (TW-DECODE-1, TW-DECODE-5).
//!
//! Messages are generated from the checked-in client schemas of `spec/schema/`,
//! not from the Rust types, so that a member the types read differently from
//! what the schema allows is found: every optional member may be absent,
//! present or `null` (TW-CORE-7), integers are written in every JSON spelling
//! (`10`, `10.0`, `1E1`, `-0`), and members no schema defines are added. Then
//! one node of a message is broken, and the decoder must refuse the result with
//! `invalid_message` exactly when the schema does.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::strategy::Union;
use serde_json::{json, Map, Value};
use tidewire_protocol::schema::default_schema_dir;
use tidewire_protocol::{decode_client_message, ErrorCode, MAX_INTEGER};

/// Nesting allowed to the decoder; generated messages stay far below it.
const DEPTH: usize = 32;

/// A number whose JSON spelling is chosen by the generator: a string holding
/// this prefix and the spelling, replaced by the bare spelling once serialized.
const SPELLED: &str = "\u{0}number:";

struct ClientSchema {
    tag: String,
    schema: Value,
    validator: jsonschema::Validator,
}

fn client_schemas() -> &'static [ClientSchema] {
    static SCHEMAS: OnceLock<Vec<ClientSchema>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let dir = default_schema_dir().join("client");
        let mut by_tag = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).expect("spec/schema/client exists") {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let Some(tag) = name.strip_suffix(".schema.json") else {
                continue;
            };
            let schema: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let validator = jsonschema::draft202012::new(&schema).expect("a valid schema");
            by_tag.insert(tag.to_string(), (schema, validator));
        }
        by_tag
            .into_iter()
            .map(|(tag, (schema, validator))| ClientSchema {
                tag,
                schema,
                validator,
            })
            .collect()
    })
}

fn resolve<'s>(schema: &'s Value, root: &'s Value) -> &'s Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/$defs/")
                .unwrap_or_else(|| panic!("only local references are generated: {reference}"));
            resolve(&root["$defs"][name], root)
        }
        None => schema,
    }
}

fn any_json(non_null: bool) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    if non_null {
        value.boxed()
    } else {
        prop_oneof![Just(Value::Null), value].boxed()
    }
}

/// `value` written as `10`, `10.0`, `1E1`-style or, for 0, `-0`.
fn spellings(value: u64) -> BoxedStrategy<Value> {
    let mut forms = vec![Value::from(value), json!(format!("{SPELLED}{value}.0"))];
    forms.push(json!(format!("{SPELLED}{value}E0")));
    if value == 0 {
        forms.push(json!(format!("{SPELLED}-0")));
        forms.push(json!(format!("{SPELLED}-0.0")));
        forms.push(json!(format!("{SPELLED}0e7")));
    } else if value % 10 == 0 {
        forms.push(json!(format!("{SPELLED}{}E1", value / 10)));
    } else if value < (1 << 40) {
        forms.push(json!(format!("{SPELLED}{}0e-1", value)));
    }
    proptest::sample::select(forms).boxed()
}

fn integer(schema: &Value) -> BoxedStrategy<Value> {
    let min = schema["minimum"].as_u64().unwrap_or(0);
    let max = schema["maximum"].as_u64().unwrap_or(MAX_INTEGER);
    let edges = vec![min, max, min.saturating_add(1).min(max)];
    prop_oneof![
        proptest::sample::select(edges),
        min..=min.saturating_add(1000).min(max),
        min..=max,
    ]
    .prop_flat_map(spellings)
    .boxed()
}

/// Numbers within the schema's bounds, and within a range where every value
/// the generator writes reads back as itself.
fn number(schema: &Value) -> BoxedStrategy<Value> {
    let min = schema["minimum"].as_f64().unwrap_or(-1e6).max(-1e6);
    let max = schema["maximum"].as_f64().unwrap_or(1e6).min(1e6);
    prop_oneof![proptest::sample::select(vec![min, 0.0, max]), min..=max]
        .prop_map(Value::from)
        .boxed()
}

fn string(schema: &Value) -> BoxedStrategy<Value> {
    if let Some(pattern) = schema["pattern"].as_str() {
        let bare = pattern.trim_start_matches('^').trim_end_matches('$');
        return proptest::string::string_regex(bare)
            .unwrap_or_else(|err| panic!("pattern {pattern}: {err}"))
            .prop_map(Value::from)
            .boxed();
    }
    let min = schema["minLength"].as_u64().unwrap_or(0) as usize;
    let max = schema["maxLength"]
        .as_u64()
        .map_or(min + 12, |m| m as usize);
    proptest::string::string_regex(&format!("\\PC{{{min},{}}}", max.min(min + 12)))
        .unwrap()
        .prop_map(Value::from)
        .boxed()
}

/// How an optional member appears.
#[derive(Debug, Clone, Copy)]
enum Optional {
    Absent,
    Present,
    Null,
}

/// Messages valid by `schema`; with `nulls`, an optional member may be `null`.
fn generate(schema: &Value, root: &Value, nulls: bool) -> BoxedStrategy<Value> {
    let schema = resolve(schema, root);
    if *schema == Value::Bool(true) || *schema == json!({}) {
        return any_json(false);
    }
    if let Some(constant) = schema.get("const") {
        return Just(constant.clone()).boxed();
    }
    if let Some(Value::Array(values)) = schema.get("enum") {
        return proptest::sample::select(values.clone()).boxed();
    }
    for keyword in ["oneOf", "anyOf"] {
        if let Some(Value::Array(alternatives)) = schema.get(keyword) {
            if alternatives.iter().all(|a| *a == Value::Bool(true)) {
                return any_json(schema.get("not").is_some());
            }
            let alternatives: Vec<_> = alternatives
                .iter()
                .map(|a| generate(a, root, nulls))
                .collect();
            return Union::new(alternatives).boxed();
        }
    }
    match schema["type"].as_str() {
        Some("object") => object(schema, root, nulls),
        Some("array") => {
            let items = generate(&schema["items"], root, nulls);
            let min = schema["minItems"].as_u64().unwrap_or(0) as usize;
            prop::collection::vec(items, min..min + 3)
                .prop_map(Value::from)
                .boxed()
        }
        Some("string") => string(schema),
        Some("integer") => integer(schema),
        Some("number") => number(schema),
        Some("boolean") => any::<bool>().prop_map(Value::from).boxed(),
        other => panic!("the generator reads no schema of type {other:?}: {schema}"),
    }
}

fn object(schema: &Value, root: &Value, nulls: bool) -> BoxedStrategy<Value> {
    let Some(Value::Object(properties)) = schema.get("properties") else {
        if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
            // A map whose names and values the schema types: member metadata.
            let names = schema["propertyNames"]["pattern"]
                .as_str()
                .map_or("[a-z_]{1,6}".to_string(), |p| {
                    p.trim_start_matches('^').trim_end_matches('$').to_string()
                });
            let most = schema["maxProperties"].as_u64().map_or(4, |m| m.min(4)) as usize;
            let names = proptest::string::string_regex(&names).expect("a valid name pattern");
            return prop::collection::btree_map(names, generate(values, root, nulls), 0..=most)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
                .boxed();
        }
        // A free-form object: records, filters, `set`.
        return prop::collection::btree_map("[a-z_]{1,6}", any_json(false), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
            .boxed();
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut members: Vec<BoxedStrategy<(String, Option<Value>)>> = Vec::new();
    for (name, property) in properties {
        let value = generate(property, root, nulls);
        let name = name.clone();
        if required.contains(&name.as_str()) {
            members.push(value.prop_map(move |v| (name.clone(), Some(v))).boxed());
            continue;
        }
        let forms = if nulls {
            vec![Optional::Absent, Optional::Present, Optional::Null]
        } else {
            vec![Optional::Absent, Optional::Present]
        };
        members.push(
            (proptest::sample::select(forms), value)
                .prop_map(move |(form, v)| {
                    let member = match form {
                        Optional::Absent => None,
                        Optional::Present => Some(v),
                        Optional::Null => Some(Value::Null),
                    };
                    (name.clone(), member)
                })
                .boxed(),
        );
    }
    // A member no schema defines, as a later revision or an extension sends
    // it (TW-CORE-5, TW-EXT-1).
    let extension = proptest::option::of(("x-[a-z]{1,6}|[a-z]{1,3}_later", any_json(false)));
    (members, extension)
        .prop_map(|(members, extension)| {
            let mut object: Map<String, Value> = members
                .into_iter()
                .filter_map(|(name, value)| value.map(|v| (name, v)))
                .collect();
            if let Some((name, value)) = extension {
                object.entry(name).or_insert(value);
            }
            Value::Object(object)
        })
        .boxed()
}

/// The frame's text, with the spelled numbers written as spelled.
fn frame(message: &Value) -> String {
    let text = message.to_string();
    let marker = serde_json::to_string(SPELLED).unwrap();
    let marker = marker.trim_end_matches('"');
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find(marker) {
        out.push_str(&rest[..start]);
        let after = &rest[start + marker.len()..];
        let end = after.find('"').expect("a spelled number ends its string");
        out.push_str(&after[..end]);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The message with every optional member whose value is `null` removed,
/// which is how TW-CORE-7 says the server reads it.
fn without_null_members(value: &Value, schema: &Value, root: &Value) -> Value {
    let schema = resolve(schema, root);
    match value {
        Value::Object(object) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let Some(properties) = properties else {
                return value.clone();
            };
            let mut kept = Map::new();
            for (name, member) in object {
                match properties.get(name) {
                    Some(_) if member.is_null() && !required.contains(&name.as_str()) => {}
                    Some(property) => {
                        kept.insert(name.clone(), without_null_members(member, property, root));
                    }
                    None => {
                        kept.insert(name.clone(), member.clone());
                    }
                }
            }
            Value::Object(kept)
        }
        Value::Array(items) => match schema.get("items") {
            Some(item) => Value::Array(
                items
                    .iter()
                    .map(|i| without_null_members(i, item, root))
                    .collect(),
            ),
            None => value.clone(),
        },
        _ => value.clone(),
    }
}

fn valid_message(nulls: bool) -> BoxedStrategy<(usize, Value)> {
    let strategies: Vec<_> = client_schemas()
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            generate(&entry.schema, &entry.schema, nulls)
                .prop_map(move |message| (index, message))
                .boxed()
        })
        .collect();
    Union::new(strategies).boxed()
}

/// Members whose well-formedness section 9 states on its own: a resume token's
/// answer (`invalid_message` or `history_lost`) is decided with the journal, not
/// by decoding alone, so the decoder is not held to the schema's bounds there.
const RESUME_MEMBERS: [&str; 1] = ["resume_after"];

/// Every location below the root of `value`, as a list of steps; `type` and
/// the resume members are kept.
fn locations(value: &Value, at: &mut Vec<Step>, into: &mut Vec<Vec<Step>>) {
    match value {
        Value::Object(object) => {
            for (name, member) in object {
                if at.is_empty() && (name == "type" || RESUME_MEMBERS.contains(&name.as_str())) {
                    continue;
                }
                at.push(Step::Member(name.clone()));
                into.push(at.clone());
                locations(member, at, into);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                at.push(Step::Index(index));
                into.push(at.clone());
                locations(item, at, into);
                at.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Member(String),
    Index(usize),
}

/// What is done to the chosen node.
#[derive(Debug, Clone)]
enum Breakage {
    Remove,
    Replace(Value),
}

fn breakage() -> impl Strategy<Value = Breakage> {
    prop_oneof![
        Just(Breakage::Remove),
        proptest::sample::select(vec![
            json!(true),
            json!(1.5),
            json!(-1),
            json!(MAX_INTEGER + 1),
            json!(18_446_744_073_709_551_615u64),
            json!(""),
            json!("two words"),
            json!("x".repeat(600)),
            json!([]),
            json!([1]),
            json!({}),
            json!({"op": "move"}),
        ])
        .prop_map(Breakage::Replace),
    ]
}

fn apply(value: &mut Value, path: &[Step], breakage: &Breakage) {
    let (last, parents) = path.split_last().expect("a location below the root");
    let mut node = value;
    for step in parents {
        node = match step {
            Step::Member(name) => &mut node[name.as_str()],
            Step::Index(index) => &mut node[*index],
        };
    }
    match (last, breakage) {
        (Step::Member(name), Breakage::Remove) => {
            node.as_object_mut().unwrap().remove(name);
        }
        (Step::Index(index), Breakage::Remove) => {
            node.as_array_mut().unwrap().remove(*index);
        }
        (Step::Member(name), Breakage::Replace(new)) => node[name.as_str()] = new.clone(),
        (Step::Index(index), Breakage::Replace(new)) => node[*index] = new.clone(),
    }
}

fn broken_message() -> impl Strategy<Value = (usize, Value, String)> {
    (
        valid_message(false),
        any::<prop::sample::Index>(),
        breakage(),
    )
        .prop_map(|((index, mut message), pick, breakage)| {
            let mut found = Vec::new();
            locations(&message, &mut Vec::new(), &mut found);
            let path = pick.get(&found).clone();
            apply(&mut message, &path, &breakage);
            (index, message, format!("{breakage:?} at {path:?}"))
        })
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_schema_valid_message_decodes((index, message) in valid_message(true)) {
        let entry = &client_schemas()[index];
        let text = frame(&message);
        let parsed: Value = serde_json::from_str(&text).unwrap();
        let as_read = without_null_members(&parsed, &entry.schema, &entry.schema);
        let errors: Vec<String> =
            entry.validator.iter_errors(&as_read).map(|e| e.to_string()).collect();
        prop_assert!(errors.is_empty(), "the generator wrote an invalid {}: {text}: {errors:?}", entry.tag);
        let decoded = decode_client_message(&text, DEPTH);
        prop_assert!(decoded.is_ok(), "{text}: {:?}", decoded.err());
    }

    #[test]
    fn the_decoder_refuses_exactly_what_the_schema_refuses(
        (index, message, broken) in broken_message()
    ) {
        let entry = &client_schemas()[index];
        let text = frame(&message);
        let parsed: Value = serde_json::from_str(&text).unwrap();
        let schema_valid = entry.validator.is_valid(&parsed);
        match decode_client_message(&text, DEPTH) {
            Ok(_) => prop_assert!(schema_valid, "{broken}: decoded a message the schema refuses: {text}"),
            Err(err) => {
                prop_assert!(!schema_valid, "{broken}: refused a schema-valid message: {text}: {err}");
                prop_assert_eq!(err.code, ErrorCode::InvalidMessage, "{}: {}", broken, text);
            }
        }
    }
}

#[test]
fn null_is_absent_for_every_optional_member_of_every_client_message() {
    for entry in client_schemas() {
        let properties = entry.schema["properties"].as_object().unwrap();
        let required: Vec<&str> = entry.schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut message = Map::new();
        for name in &required {
            let sample = match *name {
                "type" => json!(entry.tag),
                "ops" => json!([{"op": "insert", "position": 0, "text": "x"}]),
                "version" => json!(0),
                "active" => json!(true),
                "record" | "data" | "body" => json!({}),
                "vector" => json!([0.5, 1.0]),
                "k" => json!(3),
                "metric" => json!("cosine"),
                _ => json!("a"),
            };
            message.insert((*name).to_string(), sample);
        }
        for name in properties
            .keys()
            .filter(|n| !required.contains(&n.as_str()))
        {
            message.insert(name.clone(), Value::Null);
        }
        let text = Value::Object(message).to_string();
        if let Err(err) = decode_client_message(&text, DEPTH) {
            panic!("{}: {text}: {err}", entry.tag);
        }
    }
}

#[test]
fn the_spellings_are_what_they_say() {
    let message = json!({"n": format!("{SPELLED}1E1"), "m": format!("{SPELLED}-0")});
    assert_eq!(frame(&message), r#"{"n":1E1,"m":-0}"#);
}
