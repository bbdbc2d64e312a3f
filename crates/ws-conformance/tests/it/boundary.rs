//! The engine knows no protocol: it depends on no `tidewire*` crate, so
//! nothing of Tidewire reaches it except through suite files and schema
//! sets. A dependency added by mistake fails here, not in review.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Every dependency of the engine (normal, dev and build, for any target),
/// by crate name and by the name it is renamed to, as cargo resolves the
/// manifest.
fn dependency_names() -> Vec<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata JSON");
    let engine = metadata["packages"]
        .as_array()
        .expect("a package list")
        .iter()
        .find(|package| package["name"] == env!("CARGO_PKG_NAME"))
        .expect("the engine's package in the metadata");
    engine["dependencies"]
        .as_array()
        .expect("a dependency list")
        .iter()
        .flat_map(|dependency| [&dependency["name"], &dependency["rename"]])
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_engine_depends_on_no_tidewire_crate() {
    let names = dependency_names();
    assert!(
        names.iter().any(|name| name == "serde_json"),
        "the metadata lists none of the engine's known dependencies: {names:?}"
    );
    let tidewire: Vec<&String> = names
        .iter()
        .filter(|name| name.starts_with("tidewire"))
        .collect();
    assert!(
        tidewire.is_empty(),
        "ws-conformance must not depend on Tidewire crates, but depends on {tidewire:?}"
    );
}
