//! The JSON and JUnit reports, pinned with timings and ports redacted, and
//! held to their contracts: the JUnit file to the Jenkins JUnit XSD (with
//! `xmllint`), the JSON report to `conformance/report.schema.json`.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;
use ws_conformance::{load_suites, Filter, Report, RunOptions};

async fn mixed_report() -> Report {
    let addr = common::jsonrpc().await;
    let suites = load_suites(
        &[
            common::fixtures().join("jsonrpc/01-requests.json"),
            common::fixtures().join("jsonrpc/03-raw.json"),
            common::fixtures().join("jsonrpc-failing/failing.json"),
        ],
        None,
    )
    .unwrap();
    let options = RunOptions {
        step_timeout: Duration::from_secs(2),
        filter: Filter {
            cases: vec![
                "rpc.echo.exact".into(),
                "raw.*".into(),
                "fail.value".into(),
                "fail.should-level".into(),
            ],
            profiles: vec!["core".into()],
            ..Filter::default()
        },
        ..RunOptions::default()
    };
    common::verdicts::run(&format!("ws://{addr}/"), &suites, options).await
}

/// Ports, timings and the checkout path vary between runs.
fn stable_filters() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(
        &regex::escape(&common::fixtures().display().to_string()),
        "[fixtures]",
    );
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[port]");
    settings.add_filter(r#""(at_ms|duration_ms)": [\d.]+"#, r#""$1": "[ms]""#);
    settings.add_filter(r#"time="[\d.]+""#, r#"time="[s]""#);
    settings.add_filter(
        r#"("started_at": |timestamp=)"[^"]+""#,
        r#"$1"[timestamp]""#,
    );
    settings.add_filter(r#"("hostname": |hostname=)"[^"]+""#, r#"$1"[host]""#);
    settings.add_filter(
        r#"("runner_version": |name="runner_version" value=)"[^"]+""#,
        r#"$1"[version]""#,
    );
    settings.add_filter(r"(?m)^(      ) *\d+\.\dms ", "${1}[t]ms ");
    settings
}

#[tokio::test]
async fn json_report() {
    let report = mixed_report().await;
    assert_eq!(
        report.summary.to_string(),
        "1 passed, 1 failed, 1 warned, 1 skipped"
    );
    stable_filters().bind(|| insta::assert_snapshot!("report_json", report.to_json()));
}

#[tokio::test]
async fn junit_report() {
    let report = mixed_report().await;
    stable_filters().bind(|| insta::assert_snapshot!("report_junit", report.to_junit(5)));
}

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance")
}

/// Whether `tool` runs; when it does not, the test is skipped, except on CI
/// (`CI=true`), where `.ci/run` installs it and its absence is a failure.
fn tool_available(tool: &str) -> bool {
    let found = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is not installed; CI must install it (see .ci/run)"
        );
        eprintln!("skipped: {tool} is not installed");
    }
    found
}

#[tokio::test]
async fn junit_report_is_valid_against_the_jenkins_schema() {
    if !tool_available("xmllint") {
        return;
    }
    let report = mixed_report().await;
    let dir = std::env::temp_dir().join(format!("ws-conformance-junit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("junit.xml");
    std::fs::write(&file, report.to_junit(5)).unwrap();
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(conformance_dir().join("junit.xsd"))
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("validates"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn checked_in_report_schema_matches_the_types() {
    let path = conformance_dir().join("report.schema.json");
    crate::fixture_schema::assert_generated_file(
        &path,
        &Report::json_schema_text(),
        "report_schema",
    );
}

#[tokio::test]
async fn json_report_conforms_to_its_schema() {
    let report = mixed_report().await;
    let schema: serde_json::Value =
        serde_json::from_str(&Report::json_schema_text()).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let instance: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // Values keep their JSON types: a pattern's number stays a number.
    let mismatch = &instance["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "fail.value")
        .expect("fail.value ran")["failure"]["mismatches"][0];
    assert!(mismatch["expected"].is_number(), "{mismatch}");
    assert!(mismatch["actual"].is_number(), "{mismatch}");
    assert_eq!(instance["format_version"], 1);
    assert!(instance["started_at"].as_str().unwrap().ends_with('Z'));
}
