//! Schema sets: by-tag and union validation, cross-file `$ref`s, and no
//! fetching outside the schema directory.

use crate::common;

use serde_json::json;
use std::path::{Path, PathBuf};
use ws_conformance::{parse_suite, RunOptions, Runner, SchemaSet, Status};

fn jsonrpc_set() -> SchemaSet {
    SchemaSet::load(&common::fixtures().join("jsonrpc/schema/schema-set.json")).unwrap()
}

#[test]
fn by_tag_schema_with_parent_ref() {
    let set = jsonrpc_set();
    set.check_inbound(&json!({"jsonrpc": "2.0", "method": "heartbeat"}))
        .unwrap();
    let v = set
        .check_inbound(&json!({"jsonrpc": "2.0", "method": "heartbeat", "extra": 1}))
        .unwrap_err();
    assert_eq!(v.schema, "notification/heartbeat.schema.json");
    assert!(v.message.contains("extra"), "{v}");
    let v = set
        .check_inbound(&json!({"jsonrpc": "2.1", "method": "heartbeat"}))
        .unwrap_err();
    assert_eq!(v.instance_path, "/jsonrpc");
}

#[test]
fn union_schema_names_the_failing_field() {
    let set = jsonrpc_set();
    set.check_inbound(&json!({"jsonrpc": "2.0", "id": 1, "result": null}))
        .unwrap();
    set.check_inbound(&json!({"jsonrpc": "2.0", "method": "tick", "params": {}}))
        .unwrap();
    let v = set
        .check_inbound(&json!({"jsonrpc": "2.0", "id": 1, "error": {"code": "x", "message": "m"}}))
        .unwrap_err();
    assert_eq!(v.schema, "server-message.schema.json");
    assert_eq!(v.instance_path, "/error/code");
    assert!(
        v.message.contains("\"x\" is not of type \"integer\""),
        "{v}"
    );
    assert!(set
        .check_outbound(&json!({"jsonrpc": "2.0", "method": "m"}))
        .is_ok());
    assert!(set
        .check_outbound(&json!({"jsonrpc": "2.0", "method": 1}))
        .is_err());
}

fn temp_set(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tidewire-conform-set-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir.join("set.json")
}

#[test]
fn refs_outside_the_directory_are_refused() {
    let set = temp_set(
        "network",
        &[
            ("set.json", r#"{"inbound": {"union": "u.json"}}"#),
            ("u.json", r#"{"$ref": "https://example.com/schema.json"}"#),
        ],
    );
    let err = common::error_chain(&SchemaSet::load(&set).unwrap_err());
    assert!(
        err.contains("refusing to fetch https://example.com/schema.json"),
        "{err}"
    );

    let set = temp_set(
        "outside",
        &[
            ("set.json", r#"{"inbound": {"union": "u.json"}}"#),
            ("u.json", r#"{"$ref": "../../etc/passwd"}"#),
        ],
    );
    let err = common::error_chain(&SchemaSet::load(&set).unwrap_err());
    assert!(err.contains("outside the schema set directory"), "{err}");
}

#[test]
fn tags_without_schema_need_a_union() {
    let set = temp_set(
        "tags",
        &[
            (
                "set.json",
                r#"{"discriminator": "type", "inbound": {"by_tag": {"a": "a.json"}}}"#,
            ),
            (
                "a.json",
                r#"{"properties": {"type": {"const": "a"}, "n": {"type": "integer"}}}"#,
            ),
        ],
    );
    let set = SchemaSet::load(&set).unwrap();
    set.check_inbound(&json!({"type": "a", "n": 1})).unwrap();
    assert_eq!(
        set.check_inbound(&json!({"type": "a", "n": "x"}))
            .unwrap_err()
            .instance_path,
        "/n"
    );
    let v = set.check_inbound(&json!({"type": "b"})).unwrap_err();
    assert!(
        v.message.contains("no schema for type \"b\" (known: a)"),
        "{v}"
    );
    let v = set.check_inbound(&json!({"n": 1})).unwrap_err();
    assert!(v.message.contains("has no string `type` field"), "{v}");
    let err = SchemaSet::load(&temp_set("bad", &[("set.json", r#"{"inbound": {}}"#)])).unwrap_err();
    assert!(err.to_string().contains("needs a `union` schema"), "{err}");
}

#[tokio::test]
async fn outbound_violations_warn_unless_marked_invalid() {
    let addr = common::jsonrpc().await;
    let text = r#"{"schemas": "jsonrpc/schema/schema-set.json", "cases": [{"id": "w", "title": "w", "requirements": [], "profile": "p", "steps": [
        {"step": "open"},
        {"step": "send", "json": {"jsonrpc": "2.0", "id": 1, "method": "echo", "oops": true}},
        {"step": "expect", "match": {"id": 1}},
        {"step": "send", "invalid": true, "json": {"jsonrpc": "2.0", "id": 2, "method": "echo", "oops": true}},
        {"step": "expect", "match": {"id": 2}}
    ]}]}"#;
    let suite = parse_suite(&common::fixtures().join("inline.json"), text, None).unwrap();
    let report = Runner::new(RunOptions::default())
        .run(&format!("ws://{addr}/"), &[suite])
        .await
        .unwrap();
    let case = &report.cases[0];
    assert_eq!(case.status, Status::Pass);
    assert_eq!(case.warnings.len(), 1, "{:?}", case.warnings);
    assert!(
        case.warnings[0].starts_with("frame sent by step 2 ("),
        "{}",
        case.warnings[0]
    );
    assert!(case.warnings[0].contains("mark the step \"invalid\": true"));
    let _ = Path::new("");
}
