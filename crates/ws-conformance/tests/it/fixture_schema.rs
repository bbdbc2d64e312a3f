//! `conformance/fixture.schema.json` must match the Rust fixture types. It
//! stays there, next to the runner's README, because suite files point their
//! `$schema` at that path.
//!
//! Regenerate with `UPDATE_SCHEMAS=1 cargo test -p ws-conformance --test it
//! fixture_schema` or `cargo run -p tidewire-conform -- fixture-schema >
//! conformance/fixture.schema.json`.

use std::path::Path;

/// Fails unless the checked-in `file` equals `generated`; with
/// `UPDATE_SCHEMAS=1`, writes it instead. `test` names the test that
/// regenerates it, for the message.
pub fn assert_generated_file(file: &Path, generated: &str, test: &str) {
    if std::env::var_os("UPDATE_SCHEMAS").is_some_and(|v| v == "1") {
        std::fs::write(file, generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(file).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is out of date with its types; regenerate it with\n  \
         UPDATE_SCHEMAS=1 cargo test -p ws-conformance --test it {test}",
        file.display()
    );
}

#[test]
fn checked_in_schema_matches_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/fixture.schema.json");
    assert_generated_file(
        &path,
        &ws_conformance::fixture_schema_text(),
        "fixture_schema",
    );
}

#[test]
fn every_step_kind_is_in_the_schema() {
    let schema = ws_conformance::fixture_schema();
    let kinds: Vec<&str> = schema["$defs"]["Step"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["properties"]["step"]["const"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "open",
            "reconnect",
            "send",
            "expect",
            "expect_all",
            "expect_repeated",
            "expect_silence",
            "expect_close",
            "ignore",
            "wait",
            "close",
            "pause_reading",
            "resume_reading",
            "http",
            "include",
            "stop_writing"
        ]
    );
}
