//! `conformance/fixture.schema.json` must match the Rust fixture types. It
//! stays there, next to the runner's README, because suite files point their
//! `$schema` at that path.
//!
//! Regenerate with `UPDATE_SCHEMAS=1 cargo test -p ws-conformance --test it
//! fixture_schema` or `cargo run -p tidewire-conform -- fixture-schema >
//! conformance/fixture.schema.json`.

use std::path::Path;

#[test]
fn checked_in_schema_matches_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/fixture.schema.json");
    let generated = ws_conformance::fixture_schema_text();
    if std::env::var_os("UPDATE_SCHEMAS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is out of date with the fixture types; regenerate it with\n  \
         UPDATE_SCHEMAS=1 cargo test -p ws-conformance --test it fixture_schema",
        path.display()
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
            "expect_silence",
            "expect_close",
            "ignore",
            "wait",
            "close",
            "pause_reading",
            "resume_reading",
            "http"
        ]
    );
}
