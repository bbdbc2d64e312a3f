//! The JSON and JUnit reports, pinned with timings and ports redacted.

mod common;

use std::time::Duration;
use tidewire_conform::{load_suites, Filter, Report, RunOptions};

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

fn redact(text: &str) -> String {
    common::redact(
        text,
        &[
            (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
            (r#""(at_ms|duration_ms)": [\d.]+"#, r#""$1": "[ms]""#),
            (r#"time="[\d.]+""#, r#"time="[s]""#),
            (r"(?m)^(      ) *\d+\.\dms ", "${1}[t]ms "),
        ],
    )
}

#[tokio::test]
async fn json_report() {
    let report = mixed_report().await;
    assert_eq!(
        report.summary.to_string(),
        "1 passed, 1 failed, 1 warned, 1 skipped"
    );
    insta::assert_snapshot!("report_json", redact(&report.to_json()));
}

#[tokio::test]
async fn junit_report() {
    let report = mixed_report().await;
    insta::assert_snapshot!("report_junit", redact(&report.to_junit(5)));
}
