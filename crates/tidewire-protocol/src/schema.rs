//! Generation of the JSON Schemas (draft 2020-12) in `spec/schema/` from the
//! message types. The files are checked in; a test regenerates them and fails
//! on any difference, so the schemas cannot drift from the types.
//!
//! Every file is self-contained (its `$defs` hold every type it refers to) so
//! that code generators and validators need no reference resolution across files.

use std::path::{Path, PathBuf};

use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::messages::{ClientMessage, ServerMessage};

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// One message type of a direction's enum, as the schema generator needs it.
pub(crate) struct VariantSchema {
    tag: &'static str,
    add_to: fn(&mut SchemaGenerator) -> Schema,
}

impl VariantSchema {
    pub(crate) fn of<T: JsonSchema>(tag: &'static str) -> VariantSchema {
        VariantSchema {
            tag,
            add_to: |generator| generator.subschema_for::<T>(),
        }
    }
}

/// A generated file, with its path relative to `spec/schema/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaFile {
    pub path: String,
    pub contents: String,
}

struct Direction {
    /// Subdirectory for the per-message files, and prefix of the union file.
    name: &'static str,
    /// The key in `schema-set.json`, from the point of view of a client under test.
    manifest_key: &'static str,
    title: &'static str,
    description: &'static str,
    variants: Vec<VariantSchema>,
}

/// The directory the checked-in schemas live in.
pub fn default_schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/schema")
}

/// Every schema file, plus `schema-set.json`: the map from `type` to file that
/// the conformance runner reads.
pub fn generate() -> Vec<SchemaFile> {
    let directions = [
        Direction {
            name: "client",
            manifest_key: "outbound",
            title: "ClientMessage",
            description: "A message a Tidewire v1 client sends. Every one is a request with a client-chosen `id`, answered by exactly one terminal reply with the same `id`.",
            variants: ClientMessage::variants(),
        },
        Direction {
            name: "server",
            manifest_key: "inbound",
            title: "ServerMessage",
            description: "A message a Tidewire v1 server sends: a reply carrying the request's `id`, or a push carrying none.",
            variants: ServerMessage::variants(),
        },
    ];
    let mut files = Vec::new();
    let mut manifest = Map::new();
    manifest.insert("discriminator".into(), json!("type"));
    for direction in directions {
        let (union, messages) = direction_schemas(&direction);
        let union_path = format!("{}-message.schema.json", direction.name);
        let mut by_tag = Map::new();
        for (tag, schema) in messages {
            let path = format!("{}/{tag}.schema.json", direction.name);
            by_tag.insert(tag.to_string(), json!(path));
            files.push(SchemaFile {
                path,
                contents: pretty(&schema),
            });
        }
        manifest.insert(
            direction.manifest_key.into(),
            json!({ "union": union_path, "by_tag": by_tag }),
        );
        files.push(SchemaFile {
            path: union_path,
            contents: pretty(&union),
        });
    }
    // A server lists the profiles it claims in `welcome.profiles` (spec
    // section 23.1); the runner skips the cases of the others as not claimed.
    manifest.insert(
        "claims".into(),
        json!({ "match": { "type": "welcome" }, "pointer": "/profiles" }),
    );
    files.push(SchemaFile {
        path: "schema-set.json".into(),
        contents: pretty(&Value::Object(manifest)),
    });
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

/// Writes every generated file under `dir`, removing stale per-message files.
pub fn write_all(dir: &Path) -> std::io::Result<Vec<SchemaFile>> {
    let files = generate();
    for sub in ["client", "server"] {
        let sub_dir = dir.join(sub);
        if sub_dir.exists() {
            std::fs::remove_dir_all(&sub_dir)?;
        }
        std::fs::create_dir_all(&sub_dir)?;
    }
    for file in &files {
        std::fs::write(dir.join(&file.path), &file.contents)?;
    }
    Ok(files)
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("schemas serialize");
    text.push('\n');
    text
}

/// The definitions of a direction's message types (each with its `type`
/// discriminator) and of every type they refer to.
pub(crate) struct Definitions {
    /// `$ref`s (`#/$defs/Name`) to the message types, with their tags, in declaration order.
    pub(crate) refs: Vec<(&'static str, Value)>,
    /// Every definition by name; references between them are `#/$defs/Name`.
    pub(crate) defs: Map<String, Value>,
}

impl Definitions {
    /// The `type` tag and definition name of each message type, in declaration order.
    pub(crate) fn messages(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.refs
            .iter()
            .map(|(tag, reference)| (*tag, def_name(reference)))
    }
}

/// Generates the definitions of the given message types.
pub(crate) fn definitions(variants: &[VariantSchema]) -> Definitions {
    let mut generator = SchemaSettings::draft2020_12()
        .with_transform(RecursiveTransform(explicit_any_value))
        .with_transform(RecursiveTransform(absent_not_null))
        .with_transform(RecursiveTransform(integer_range))
        .with_transform(RecursiveTransform(plain_number))
        .into_generator();
    let refs: Vec<(&'static str, Value)> = variants
        .iter()
        .map(|variant| (variant.tag, (variant.add_to)(&mut generator).to_value()))
        .collect();
    let mut defs = generator.take_definitions(true);
    for (tag, reference) in &refs {
        let name = def_name(reference);
        let def = defs
            .get_mut(name)
            .unwrap_or_else(|| panic!("message type {name} has no definition"));
        add_tag(def, tag);
    }
    Definitions { refs, defs }
}

/// Keywords that describe a value without constraining it.
const ANNOTATIONS: [&str; 8] = [
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
];

/// States "any JSON value" explicitly where a schema carries annotations only.
///
/// schemars writes a documented `serde_json::Value` field (e.g. `ping.payload`) as
/// `{"description": ...}`: valid JSON Schema for any value, but code generators read an
/// untyped schema with keywords as an object (json-schema-to-typescript types it
/// `{[k: string]: unknown}`, rejecting `"payload": 42`). `anyOf: [true]` accepts exactly
/// the same values and reads as "unknown" / `Any` in generated code.
fn explicit_any_value(schema: &mut Schema) {
    if let Some(object) = schema.as_object_mut() {
        if !object.is_empty() && object.keys().all(|key| ANNOTATIONS.contains(&key.as_str())) {
            object.insert("anyOf".into(), json!([true]));
        }
    }
}

/// States the range of an unsigned integer as `maximum` instead of schemars' `format`.
///
/// schemars writes `u32` and `u64` as `{"type": "integer", "format": "uint32", "minimum": 0}`.
/// `uint32` and `uint64` are not formats of JSON Schema: validators ignore them and code
/// generators warn about them (datamodel-code-generator: "format of 'uint32' not
/// understood"). `maximum` says the same thing in a keyword every tool knows.
///
/// A `maximum` the type states itself stays: the integer members of client messages are
/// bounded by `MAX_INTEGER` (2^53 - 1), not `u64::MAX`, because a validator that reads
/// numbers as doubles cannot tell 2^64 from `u64::MAX`, and the schema and the server must
/// give the same answer for every number (TW-DECODE-2).
fn integer_range(schema: &mut Schema) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let maximum = match object.get("format").and_then(Value::as_str) {
        Some("uint32") => u64::from(u32::MAX),
        Some("uint64") => u64::MAX,
        _ => return,
    };
    object.remove("format");
    object.entry("maximum").or_insert(json!(maximum));
}

/// Drops schemars' `format` of floating-point numbers (`double`, `float`).
///
/// Like `uint32`, they are not formats of JSON Schema, and strict validators refuse the
/// schema (Ajv: "unknown format \"double\""); a JSON number has one precision on the wire.
fn plain_number(schema: &mut Schema) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if matches!(
        object.get("format").and_then(Value::as_str),
        Some("double" | "float")
    ) {
        object.remove("format");
    }
}

/// Forbids `null` in the optional properties of an object schema.
///
/// Every optional field is `skip_serializing_if = "Option::is_none"`: on the wire it is
/// absent, never `null` (spec section 1.4). schemars nevertheless adds `null` to every
/// `Option<T>`, and code generators turn that into `principal?: string | null` and
/// `Optional[...]` values that no peer sends. A server still reads `null` as absent.
///
/// Runs after `explicit_any_value`, so an optional "any value" (`ping.payload`) is already
/// `anyOf: [true]` or plain `true` here.
fn absent_not_null(schema: &mut Schema) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let required: Vec<Value> = match object.get("required") {
        Some(Value::Array(names)) => names.clone(),
        _ => Vec::new(),
    };
    let Some(Value::Object(properties)) = object.get_mut("properties") else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        if !required.iter().any(|r| r.as_str() == Some(name.as_str())) {
            forbid_null(property);
        }
    }
}

/// Makes an optional property's schema reject `null`, leaving every other value it accepts.
fn forbid_null(schema: &mut Value) {
    if *schema == Value::Bool(true) {
        *schema = json!({});
    }
    let Value::Object(object) = schema else {
        return;
    };
    // `Option<T>` of a referenced T is `{"anyOf": [T, {"type": "null"}]}`. The one-element
    // `anyOf` stays: json-schema-to-typescript inlines or copies (`Filter1`, `Filter2`) a
    // `$ref` that has sibling keywords such as `description`.
    if let Some(Value::Array(alternatives)) = object.get_mut("anyOf") {
        alternatives.retain(|alternative| *alternative != json!({ "type": "null" }));
    }
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            object.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(values)) = object.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    // An optional `serde_json::Value` accepts `null` as one of its values, with no alternative
    // to remove, so `not` excludes it. The `anyOf: [true]` keeps code generators reading "any
    // value": json-schema-to-typescript types a bare `not` as an object.
    if object
        .keys()
        .all(|key| ANNOTATIONS.contains(&key.as_str()) || key == "anyOf")
        && object.get("anyOf").is_none_or(|any| *any == json!([true]))
    {
        object.insert("anyOf".into(), json!([true]));
        object.insert("not".into(), json!({ "type": "null" }));
    }
}

/// The union schema and one schema per message of a direction.
fn direction_schemas(direction: &Direction) -> (Value, Vec<(&'static str, Value)>) {
    let Definitions { refs, defs } = definitions(&direction.variants);

    let mut union = Map::new();
    union.insert("$schema".into(), json!(DRAFT_2020_12));
    union.insert("title".into(), json!(direction.title));
    union.insert("description".into(), json!(direction.description));
    union.insert(
        "oneOf".into(),
        Value::Array(refs.iter().map(|(_, r)| r.clone()).collect()),
    );
    union.insert("$defs".into(), Value::Object(defs.clone()));

    let messages = refs
        .iter()
        .map(|(tag, reference)| {
            let name = def_name(reference);
            let Value::Object(def) = defs[name].clone() else {
                panic!("definition of {name} is not an object");
            };
            let mut root = Map::new();
            root.insert("$schema".into(), json!(DRAFT_2020_12));
            root.insert("title".into(), json!(name));
            root.extend(def);
            let mut needed = Map::new();
            collect_refs(&Value::Object(root.clone()), &defs, &mut needed);
            if !needed.is_empty() {
                needed.sort_keys();
                root.insert("$defs".into(), Value::Object(needed));
            }
            (*tag, Value::Object(root))
        })
        .collect();
    (Value::Object(union), messages)
}

fn def_name(reference: &Value) -> &str {
    reference["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .unwrap_or_else(|| panic!("message types must be named structs, got {reference}"))
}

/// Puts the `type` discriminator first among the properties and the required fields.
fn add_tag(def: &mut Value, tag: &str) {
    let object = def
        .as_object_mut()
        .expect("message definitions are objects");
    let mut properties = Map::new();
    properties.insert("type".into(), json!({ "type": "string", "const": tag }));
    if let Some(Value::Object(existing)) = object.remove("properties") {
        properties.extend(existing);
    }
    let mut required = vec![json!("type")];
    if let Some(Value::Array(existing)) = object.remove("required") {
        required.extend(existing);
    }
    // Keep a stable key order in the output: type, description, properties, required, rest.
    let rest: Map<String, Value> = std::mem::take(object);
    object.insert("type".into(), json!("object"));
    for (key, value) in rest {
        if key != "type" {
            object.insert(key, value);
        }
    }
    object.insert("properties".into(), Value::Object(properties));
    object.insert("required".into(), Value::Array(required));
}

fn collect_refs(value: &Value, defs: &Map<String, Value>, needed: &mut Map<String, Value>) {
    match value {
        Value::Object(object) => {
            if let Some(name) = object
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/$defs/"))
            {
                if !needed.contains_key(name) {
                    let def = defs
                        .get(name)
                        .unwrap_or_else(|| panic!("dangling $ref to {name}"))
                        .clone();
                    needed.insert(name.to_string(), def.clone());
                    collect_refs(&def, defs, needed);
                }
            }
            for child in object.values() {
                collect_refs(child, defs, needed);
            }
        }
        Value::Array(items) => {
            for child in items {
                collect_refs(child, defs, needed);
            }
        }
        _ => {}
    }
}
