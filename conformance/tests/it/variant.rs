//! The suites and `prop` against the alternate variant of the reference
//! server, which takes the other side of every freedom the specification
//! gives a server: a case that passes only against the usual choices relies
//! on something the specification does not require.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::common::{bin, temp_dir};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace")
        .to_path_buf()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn every_suite_passes_against_the_alternate_variant() {
    let report_path = temp_dir("variant-run").join("report.json");
    let output = bin()
        .current_dir(workspace())
        .args([
            "run",
            "--embedded",
            "--variant",
            "alternate",
            "-j",
            "4",
            "--no-color",
            "--json",
        ])
        .arg(&report_path)
        .output()
        .expect("tidewire-conform runs");
    let printed = text(&output);
    assert!(
        printed.contains("(variant alternate)"),
        "the embedded servers say which variant they are:\n{printed}"
    );
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(&report_path).expect("the run writes its report"),
    )
    .expect("the report is JSON");
    let not_passed: Vec<String> = report["cases"]
        .as_array()
        .expect("the report lists its cases")
        .iter()
        .filter(|case| case["status"] != "pass")
        .map(|case| format!("{} ({})", case["id"], case["status"]))
        .collect();
    assert!(
        not_passed.is_empty(),
        "every case of fixtures/ passes against the alternate variant; these did not: \
         {not_passed:?}\n{printed}"
    );
    assert!(
        report["summary"]["passed"].as_u64() > Some(100),
        "the run covered the suites: {}",
        report["summary"]
    );
    assert_eq!(output.status.code(), Some(0), "{printed}");
}

#[test]
fn prop_passes_against_the_alternate_variant() {
    let out = temp_dir("variant-prop").join("failure.json");
    let output = bin()
        .current_dir(workspace())
        .args([
            "prop",
            "--embedded",
            "--variant",
            "alternate",
            "--seed",
            "1",
            "--cases",
            "30",
            "--color",
            "never",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("tidewire-conform runs");
    let printed = text(&output);
    assert!(printed.contains("(variant alternate)"), "{printed}");
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(
        printed.contains("prop: 30 cases and the shutdown passed"),
        "{printed}"
    );
    assert!(!out.exists(), "a passing run writes no failing sequence");
}

#[test]
fn a_variant_needs_the_embedded_server() {
    let output = bin()
        .args(["run", "ws://127.0.0.1:9/v1", "--variant", "alternate"])
        .args(["--suite", "fixtures"])
        .current_dir(workspace())
        .output()
        .expect("tidewire-conform runs");
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("--variant works only with --embedded"),
        "{}",
        text(&output)
    );
}
