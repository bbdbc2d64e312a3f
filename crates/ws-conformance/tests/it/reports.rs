//! The JSON and JUnit reports, pinned with timings and ports redacted.

use crate::common;

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
