//! `spec/PROTOCOL.md` stays honest: its requirement list is the checked-in
//! `spec/requirements.json`, every JSON example in it is checked against the
//! schemas (or the filter parser), and its error and close-code tables are the
//! registries of `error.rs`.
//!
//! Example blocks carry a role in their info string:
//!
//! | info string | check |
//! |---|---|
//! | ` ```json client` / ` ```json server` | each JSON value is valid by `<dir>-message.schema.json` and by `<dir>/<type>.schema.json`, and deserializes into the Rust type; filters and pipelines in it parse |
//! | ` ```json client invalid` / ` ```json server invalid` | each JSON value fails `<dir>-message.schema.json` |
//! | ` ```json filter` / ` ```json filter invalid` | `tidewire_filter::Filter::parse` accepts / rejects it |
//! | ` ```json other` | JSON syntax only |

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;
use tidewire_protocol::requirements::{self, Level, Requirement, Subject};
use tidewire_protocol::{
    decode_client_message, ClientMessage, CloseCode, ErrorCode, Profile, Recovery, ServerMessage,
};

const REGENERATE: &str = "cargo run -p tidewire-protocol --bin tidewire-schemas";

const ERROR_TABLE_HEADER: &str = "| code | recovery | meaning | details |";
const CLOSE_TABLE_HEADER: &str = "| close code | name | recovery | delay | meaning | reason |";
const REQUEST_TABLE_HEADER: &str = "| request | success reply | profile |";
const PUSH_TABLE_HEADER: &str = "| push | sent | profile |";

fn spec_path(name: &str) -> PathBuf {
    requirements::default_spec_dir().join(name)
}

fn protocol() -> String {
    std::fs::read_to_string(spec_path("PROTOCOL.md")).expect("spec/PROTOCOL.md is readable")
}

fn fail_on(errors: Vec<String>, what: &str) {
    assert!(errors.is_empty(), "{what}:\n  {}", errors.join("\n  "));
}

// ---------------------------------------------------------------------------
// Requirements
// ---------------------------------------------------------------------------

#[test]
fn requirements_json_is_extracted_from_protocol_md() {
    let extracted =
        requirements::extract(&protocol()).unwrap_or_else(|err| panic!("PROTOCOL.md: {err}"));
    let expected = requirements::to_json(&extracted);
    let on_disk = std::fs::read_to_string(spec_path("requirements.json")).unwrap_or_default();
    assert!(
        on_disk == expected,
        "spec/requirements.json is not what spec/PROTOCOL.md yields; regenerate it with `{REGENERATE}`"
    );
    let parsed: Vec<Requirement> = serde_json::from_str(&on_disk).unwrap();
    assert_eq!(parsed, extracted);
}

#[test]
fn every_profile_has_requirements_and_every_requirement_is_well_formed() {
    let found = requirements::extract(&protocol()).unwrap();
    let mut per_profile: BTreeMap<&str, usize> = BTreeMap::new();
    for requirement in &found {
        *per_profile.entry(requirement.profile.as_str()).or_default() += 1;
        assert!(
            requirement.text.ends_with('.'),
            "{} is not one full sentence: {}",
            requirement.id,
            requirement.text
        );
        assert!(
            requirement.text.contains(requirement.level.as_str()),
            "{}: {}",
            requirement.id,
            requirement.text
        );
        if requirement.subject == Subject::Client {
            assert!(
                requirement.text.starts_with("A client "),
                "{}",
                requirement.id
            );
        }
    }
    let missing: Vec<&str> = Profile::ALL
        .iter()
        .map(|p| p.as_str())
        .filter(|p| !per_profile.contains_key(p))
        .collect();
    assert!(
        missing.is_empty(),
        "profiles without requirements: {missing:?}"
    );
    assert!(
        per_profile.contains_key("filter"),
        "the filter language has no requirements"
    );
    let server_musts = found
        .iter()
        .filter(|r| r.subject == Subject::Server && matches!(r.level, Level::Must | Level::MustNot))
        .count();
    assert!(server_musts > 0);
}

// ---------------------------------------------------------------------------
// Examples
// ---------------------------------------------------------------------------

/// A fenced code block whose info string starts with `json`.
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    /// The info string after `json`, trimmed.
    role: String,
    /// 1-based line of the first content line.
    body_line: usize,
    body: String,
}

fn json_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, Option<Block>)> = None;
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            Some((fence, block)) => {
                if trimmed.trim_end() == fence.as_str() {
                    if let Some(block) = block.take() {
                        blocks.push(block);
                    }
                    open = None;
                } else if let Some(block) = block {
                    block.body.push_str(line);
                    block.body.push('\n');
                }
            }
            None => {
                let ticks = trimmed.chars().take_while(|&c| c == '`').count();
                if ticks < 3 {
                    continue;
                }
                let fence = "`".repeat(ticks);
                let info = trimmed[ticks..].trim();
                let mut words = info.splitn(2, char::is_whitespace);
                let block = (words.next() == Some("json")).then(|| Block {
                    line: index + 1,
                    role: words.next().unwrap_or("").trim().to_string(),
                    body_line: index + 2,
                    body: String::new(),
                });
                open = Some((fence, block));
            }
        }
    }
    blocks
}

/// Every JSON value in a block, with the line it starts on.
fn json_values(block: &Block) -> Result<Vec<(usize, Value)>, String> {
    let mut values = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(&block.body).into_iter::<Value>();
    loop {
        let offset = block.body[stream.byte_offset()..]
            .find(|c: char| !c.is_whitespace())
            .map(|skip| stream.byte_offset() + skip);
        match stream.next() {
            None => break,
            Some(Ok(value)) => {
                let offset = offset.unwrap_or(0);
                let line = block.body_line + block.body[..offset].matches('\n').count();
                values.push((line, value));
            }
            Some(Err(err)) => {
                return Err(format!(
                    "line {}: not valid JSON: {err}",
                    block.body_line + err.line().saturating_sub(1)
                ))
            }
        }
    }
    if values.is_empty() {
        return Err(format!("line {}: empty ```json block", block.line));
    }
    Ok(values)
}

struct Schemas {
    union: BTreeMap<&'static str, jsonschema::Validator>,
    by_type: BTreeMap<(String, String), jsonschema::Validator>,
}

impl Schemas {
    fn load() -> Schemas {
        let dir = spec_path("schema");
        let compile = |path: PathBuf| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            let schema: Value = serde_json::from_str(&text).unwrap();
            jsonschema::draft202012::new(&schema)
                .unwrap_or_else(|err| panic!("{} does not compile: {err}", path.display()))
        };
        let mut union = BTreeMap::new();
        let mut by_type = BTreeMap::new();
        for (direction, tags) in [
            ("client", ClientMessage::TAGS),
            ("server", ServerMessage::TAGS),
        ] {
            union.insert(
                direction,
                compile(dir.join(format!("{direction}-message.schema.json"))),
            );
            for tag in tags {
                by_type.insert(
                    (direction.to_string(), tag.to_string()),
                    compile(dir.join(direction).join(format!("{tag}.schema.json"))),
                );
            }
        }
        Schemas { union, by_type }
    }
}

fn schema_errors(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .map(|err| format!("{err} at `{}`", err.instance_path()))
        .collect()
}

/// The outcome of checking every example of a document.
#[derive(Default)]
struct Examples {
    errors: Vec<String>,
    /// `(direction, type)` of every valid message example.
    valid: BTreeSet<(String, String)>,
}

fn check_message(
    schemas: &Schemas,
    direction: &str,
    line: usize,
    value: &Value,
    out: &mut Examples,
) {
    let before = out.errors.len();
    let mut fail = |message: String| out.errors.push(format!("line {line}: {message}"));
    let Some(tag) = value.get("type").and_then(Value::as_str) else {
        fail(format!("a {direction} example needs a string `type`"));
        return;
    };
    for err in schema_errors(&schemas.union[direction], value) {
        fail(format!(
            "`{tag}` fails {direction}-message.schema.json: {err}"
        ));
    }
    match schemas
        .by_type
        .get(&(direction.to_string(), tag.to_string()))
    {
        None => fail(format!("`{tag}` is not a {direction} message type")),
        Some(validator) => {
            for err in schema_errors(validator, value) {
                fail(format!(
                    "`{tag}` fails {direction}/{tag}.schema.json: {err}"
                ));
            }
        }
    }
    if direction == "client" {
        if let Err(err) = decode_client_message(&value.to_string(), 32) {
            fail(format!("`{tag}` does not decode: {err}"));
        }
        for (field, parsed) in [
            (
                "filter",
                value
                    .get("filter")
                    .map(tidewire_filter::Filter::parse)
                    .map(|r| r.map(drop)),
            ),
            (
                "pipeline",
                value
                    .get("pipeline")
                    .map(tidewire_filter::Pipeline::parse)
                    .map(|r| r.map(drop)),
            ),
        ] {
            if let Some(Err(err)) = parsed {
                fail(format!("`{tag}` carries an invalid {field}: {err}"));
            }
        }
    } else if let Err(err) = serde_json::from_value::<ServerMessage>(value.clone()) {
        fail(format!("`{tag}` does not deserialize: {err}"));
    }
    if out.errors.len() == before {
        out.valid.insert((direction.to_string(), tag.to_string()));
    }
}

fn check_examples(markdown: &str, schemas: &Schemas) -> Examples {
    let mut out = Examples::default();
    for block in json_blocks(markdown) {
        let values = match json_values(&block) {
            Ok(values) => values,
            Err(err) => {
                out.errors.push(err);
                continue;
            }
        };
        for (line, value) in values {
            match block.role.as_str() {
                direction @ ("client" | "server") => {
                    check_message(schemas, direction, line, &value, &mut out)
                }
                "client invalid" | "server invalid" => {
                    let direction = block.role.split(' ').next().unwrap();
                    if schemas.union[direction].is_valid(&value) {
                        out.errors.push(format!(
                            "line {line}: marked `{}` but valid by {direction}-message.schema.json",
                            block.role
                        ));
                    }
                }
                "filter" => {
                    if let Err(err) = tidewire_filter::Filter::parse(&value) {
                        out.errors.push(format!("line {line}: filter does not parse: {err}"));
                    }
                }
                "filter invalid" => {
                    if tidewire_filter::Filter::parse(&value).is_ok() {
                        out.errors.push(format!("line {line}: marked `filter invalid` but parses"));
                    }
                }
                "other" => {}
                "" => out.errors.push(format!(
                    "line {}: ```json block without a role (client, server, client invalid, server invalid, filter, filter invalid, other)",
                    block.line
                )),
                role => out.errors.push(format!("line {}: unknown ```json role `{role}`", block.line)),
            }
        }
    }
    out
}

#[test]
fn every_json_example_has_a_role_and_passes_its_check() {
    let examples = check_examples(&protocol(), &Schemas::load());
    fail_on(examples.errors, "examples in spec/PROTOCOL.md");
}

#[test]
fn every_message_type_is_specified_and_has_a_valid_example() {
    let markdown = protocol();
    let examples = check_examples(&markdown, &Schemas::load());
    let mut errors = mention_errors(&markdown);
    for (direction, tags) in [
        ("client", ClientMessage::TAGS),
        ("server", ServerMessage::TAGS),
    ] {
        for tag in tags {
            if !examples
                .valid
                .contains(&(direction.to_string(), tag.to_string()))
            {
                errors.push(format!(
                    "{direction} message `{tag}` has no valid ```json {direction} example"
                ));
            }
        }
    }
    fail_on(errors, "message coverage of spec/PROTOCOL.md");
}

/// Every message type appears as `` `type` `` in a heading or a table row.
fn mention_errors(markdown: &str) -> Vec<String> {
    let structural: Vec<&str> = markdown
        .lines()
        .filter(|line| line.starts_with('#') || line.starts_with('|'))
        .collect();
    ClientMessage::TAGS
        .iter()
        .chain(ServerMessage::TAGS)
        .filter(|tag| {
            let quoted = format!("`{tag}`");
            !structural.iter().any(|line| line.contains(&quoted))
        })
        .map(|tag| format!("message type `{tag}` is in no message heading or table"))
        .collect()
}

// ---------------------------------------------------------------------------
// Registries
// ---------------------------------------------------------------------------

/// The rows of the one table whose header line is `header`: (line, cells).
fn table(markdown: &str, header: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let lines: Vec<&str> = markdown.lines().collect();
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].trim() == header)
        .collect();
    let [start] = starts.as_slice() else {
        return Err(format!(
            "expected one table with header `{header}`, found {}",
            starts.len()
        ));
    };
    let mut rows = Vec::new();
    for (index, line) in lines.iter().enumerate().skip(start + 2) {
        let Some(inner) = line
            .trim()
            .strip_prefix('|')
            .and_then(|l| l.strip_suffix('|'))
        else {
            break;
        };
        let cells = inner
            .split('|')
            .map(|cell| cell.trim().to_string())
            .collect();
        rows.push((index + 1, cells));
    }
    Ok(rows)
}

fn recovery_name(recovery: Recovery) -> String {
    serde_json::to_value(recovery)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

fn unquote(cell: &str) -> &str {
    cell.trim_matches('`')
}

fn error_table_errors(markdown: &str) -> Vec<String> {
    let rows = match table(markdown, ERROR_TABLE_HEADER) {
        Ok(rows) => rows,
        Err(err) => return vec![err],
    };
    let mut errors = Vec::new();
    let listed: Vec<&str> = rows.iter().map(|(_, cells)| unquote(&cells[0])).collect();
    let expected: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    if listed != expected {
        errors.push(format!(
            "the error table lists {listed:?}; ErrorCode::ALL is {expected:?}"
        ));
    }
    for (line, cells) in &rows {
        let Some(code) = ErrorCode::ALL
            .iter()
            .find(|c| c.as_str() == unquote(&cells[0]))
        else {
            continue;
        };
        let recovery = recovery_name(code.recovery());
        if cells.get(1).map(String::as_str) != Some(recovery.as_str()) {
            errors.push(format!(
                "line {line}: `{code}` is {recovery}, the table says {:?}",
                cells.get(1)
            ));
        }
    }
    errors
}

fn close_table_errors(markdown: &str) -> Vec<String> {
    let rows = match table(markdown, CLOSE_TABLE_HEADER) {
        Ok(rows) => rows,
        Err(err) => return vec![err],
    };
    let mut errors = Vec::new();
    let listed: Vec<&str> = rows.iter().map(|(_, cells)| cells[0].as_str()).collect();
    let expected: Vec<String> = CloseCode::ALL
        .iter()
        .map(|c| c.code().to_string())
        .collect();
    if listed != expected {
        errors.push(format!(
            "the close-code table lists {listed:?}; CloseCode::ALL is {expected:?}"
        ));
    }
    for (line, cells) in &rows {
        let Some(close) = cells[0].parse().ok().and_then(CloseCode::from_code) else {
            continue;
        };
        if cells.get(1).map(|c| unquote(c)) != Some(close.name()) {
            errors.push(format!(
                "line {line}: {} is named `{}`, the table says {:?}",
                close.code(),
                close.name(),
                cells.get(1)
            ));
        }
        let recovery = recovery_name(close.recovery());
        if cells.get(2).map(String::as_str) != Some(recovery.as_str()) {
            errors.push(format!(
                "line {line}: {} is {recovery}, the table says {:?}",
                close.code(),
                cells.get(2)
            ));
        }
        let delay = if close.carries_delay() { "yes" } else { "" };
        if cells.get(3).map(String::as_str) != Some(delay) {
            errors.push(format!(
                "line {line}: {} {} a delay, the table's delay column says {:?}",
                close.code(),
                if close.carries_delay() {
                    "carries"
                } else {
                    "carries no"
                },
                cells.get(3)
            ));
        }
    }
    errors
}

#[test]
fn the_error_table_is_the_error_registry() {
    fail_on(
        error_table_errors(&protocol()),
        "error table of spec/PROTOCOL.md",
    );
}

#[test]
fn the_close_code_table_is_the_close_code_registry() {
    fail_on(
        close_table_errors(&protocol()),
        "close-code table of spec/PROTOCOL.md",
    );
}

/// The first code span of a cell: `` `watch` (`resume` when ...) `` names `watch`.
fn first_code_span(cell: &str) -> &str {
    cell.split('`').nth(1).unwrap_or(cell)
}

/// The request table against the message table: each request with its success
/// replies and its profile.
fn request_table_errors(markdown: &str) -> Vec<String> {
    let rows = match table(markdown, REQUEST_TABLE_HEADER) {
        Ok(rows) => rows,
        Err(err) => return vec![err],
    };
    let listed: BTreeSet<(String, String, String)> = rows
        .iter()
        .map(|(_, cells)| {
            let cell = |i: usize| first_code_span(cells.get(i).map_or("", String::as_str));
            (cell(0).into(), cell(1).into(), cell(2).into())
        })
        .collect();
    let expected: BTreeSet<(String, String, String)> = ClientMessage::REPLIES
        .iter()
        .flat_map(|(request, replies)| {
            let profile = ClientMessage::profile_of(request).expect("a request of the table");
            replies.iter().map(move |reply| {
                (
                    request.to_string(),
                    reply.to_string(),
                    profile.as_str().into(),
                )
            })
        })
        .collect();
    if listed == expected {
        return Vec::new();
    }
    vec![format!(
        "the request table differs from the message table: only in the spec {:?}, only in the table {:?}",
        listed.difference(&expected).collect::<Vec<_>>(),
        expected.difference(&listed).collect::<Vec<_>>()
    )]
}

/// The push table against the message table: each push's profile.
fn push_table_errors(markdown: &str) -> Vec<String> {
    let rows = match table(markdown, PUSH_TABLE_HEADER) {
        Ok(rows) => rows,
        Err(err) => return vec![err],
    };
    let mut errors = Vec::new();
    for (line, cells) in &rows {
        let push = first_code_span(&cells[0]);
        let listed = cells.get(2).map(|c| first_code_span(c));
        let expected = ServerMessage::profile_of(push).map(Profile::as_str);
        if listed != expected {
            errors.push(format!(
                "line {line}: push `{push}` is of profile {expected:?}, the table says {listed:?}"
            ));
        }
    }
    errors
}

#[test]
fn the_request_and_push_tables_are_the_message_table() {
    let markdown = protocol();
    fail_on(
        request_table_errors(&markdown),
        "request table of spec/PROTOCOL.md",
    );
    fail_on(
        push_table_errors(&markdown),
        "push table of spec/PROTOCOL.md",
    );
}

// ---------------------------------------------------------------------------
// The checks above fail when they should
// ---------------------------------------------------------------------------

#[test]
fn the_example_check_rejects_bad_examples_with_their_line() {
    let markdown = "\
# Doc

```json server
{\"type\": \"pong\", \"id\": \"p1\"}
{\"type\": \"pong\"}
```

```json
{\"type\": \"ping\", \"id\": \"p1\"}
```

```json client invalid
{\"type\": \"ping\", \"id\": \"p1\"}
```

```json client
{\"type\": \"pong\", \"id\": \"p1\"}
```

```json filter
{\"age\": {\"$between\": [1, 2]}}
```

```json filter invalid
{\"age\": {\"$gt\": 1}}
```

```json client
{\"type\": \"read\", \"id\": \"r\", \"database\": \"d\", \"collection\": \"c\", \"filter\": {\"$and\": []}}
```

```json server
{\"type\": \"pong\", \"id\": \"p1\",
```

```json clients
{}
```
";
    let examples = check_examples(markdown, &Schemas::load());
    let has = |needle: &str| examples.errors.iter().any(|e| e.contains(needle));
    assert!(
        has("line 5: `pong` fails server-message.schema.json"),
        "{:#?}",
        examples.errors
    );
    assert!(
        has("line 5: `pong` fails server/pong.schema.json"),
        "{:#?}",
        examples.errors
    );
    assert!(
        has("line 8: ```json block without a role"),
        "{:#?}",
        examples.errors
    );
    assert!(
        has("line 13: marked `client invalid` but valid"),
        "{:#?}",
        examples.errors
    );
    assert!(
        has("line 17: `pong` is not a client message type"),
        "{:#?}",
        examples.errors
    );
    assert!(
        has("line 21: filter does not parse"),
        "{:#?}",
        examples.errors
    );
    assert!(
        has("line 25: marked `filter invalid` but parses"),
        "{:#?}",
        examples.errors
    );
    assert!(
        has("line 29: `read` carries an invalid filter"),
        "{:#?}",
        examples.errors
    );
    assert!(has("not valid JSON"), "{:#?}", examples.errors);
    assert!(
        has("unknown ```json role `clients`"),
        "{:#?}",
        examples.errors
    );
    // The valid first value still counts as an example of `pong`.
    assert!(examples.valid.contains(&("server".into(), "pong".into())));
    assert!(!examples.valid.contains(&("client".into(), "pong".into())));
}

#[test]
fn the_registry_checks_reject_wrong_tables() {
    let markdown = protocol();
    let dropped = markdown.replace("| `history_lost` | terminal |", "| `gone` | terminal |");
    let errors = error_table_errors(&dropped);
    assert!(errors.iter().any(|e| e.contains("\"gone\"")), "{errors:?}");
    let flipped = markdown.replace("| `internal` | retryable |", "| `internal` | terminal |");
    let errors = error_table_errors(&flipped);
    assert!(
        errors.iter().any(|e| e.contains("`internal` is retryable")),
        "{errors:?}"
    );
    assert!(!error_table_errors("no table").is_empty());

    let renumbered = markdown.replace("| 4002 | `slow_consumer` |", "| 4003 | `slow_consumer` |");
    let errors = close_table_errors(&renumbered);
    assert!(errors.iter().any(|e| e.contains("\"4003\"")), "{errors:?}");
    let flipped = markdown.replace(
        "| 1013 | `try_again_later` | retryable |",
        "| 1013 | `try_again_later` | terminal |",
    );
    let errors = close_table_errors(&flipped);
    assert!(
        errors.iter().any(|e| e.contains("1013 is retryable")),
        "{errors:?}"
    );
}

#[test]
fn the_mention_check_reports_an_unmentioned_type() {
    let errors = mention_errors("### 5.2. `ping` (client) and `pong` (server)\n");
    assert!(errors.iter().any(|e| e.contains("`welcome`")), "{errors:?}");
    assert!(!errors.iter().any(|e| e.contains("`ping`")), "{errors:?}");
}

#[test]
fn the_drift_check_would_see_a_changed_requirement() {
    let markdown = protocol();
    let original = requirements::to_json(&requirements::extract(&markdown).unwrap());
    let edited = markdown.replacen(" MUST ", " SHOULD ", 1);
    let changed = requirements::to_json(&requirements::extract(&edited).unwrap());
    assert_ne!(original, changed);
}

#[test]
fn the_message_table_checks_reject_a_wrong_reply_or_profile() {
    let markdown = protocol();
    let wrong_reply = markdown.replace(
        "| `typing` | `ack` | `rooms` |",
        "| `typing` | `typing` | `rooms` |",
    );
    assert_ne!(wrong_reply, markdown);
    let errors = request_table_errors(&wrong_reply);
    assert!(
        errors.len() == 1 && errors[0].contains("\"typing\", \"ack\""),
        "{errors:?}"
    );
    let wrong_profile = markdown.replace(
        "| `change` | for each matching change of a watch subscription | `watch` |",
        "| `change` | for each matching change of a watch subscription | `records` |",
    );
    assert_ne!(wrong_profile, markdown);
    let errors = push_table_errors(&wrong_profile);
    assert!(
        errors.len() == 1 && errors[0].contains("push `change`"),
        "{errors:?}"
    );
}
