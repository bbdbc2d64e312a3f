//! Runs the JSON-RPC 2.0 suites against a JSON-RPC server written here: the
//! engine is protocol-agnostic, so a second protocol is the proof.

use crate::common;

use common::verdicts::run;
use std::time::Duration;
use ws_conformance::{load_suites, Filter, RunOptions, Status};

fn options() -> RunOptions {
    RunOptions {
        step_timeout: Duration::from_secs(2),
        case_timeout: Duration::from_secs(10),
        jobs: 4,
        ..RunOptions::default()
    }
}

#[tokio::test]
async fn passing_suite_passes() {
    let addr = common::jsonrpc().await;
    let suites = load_suites(&[common::fixtures().join("jsonrpc")], None).unwrap();
    let report = run(&format!("ws://{addr}/"), &suites, options()).await;
    for case in &report.cases {
        assert_eq!(
            case.status,
            Status::Pass,
            "{}:\n{}",
            case.id,
            ws_conformance::render::failure_text(case, 20)
        );
    }
    assert!(report.cases.len() >= 17, "{} cases", report.cases.len());
    assert_eq!(report.summary.failed, 0);
}

#[tokio::test]
async fn every_failing_case_fails_with_its_message() {
    let addr = common::jsonrpc().await;
    let suites = load_suites(&[common::fixtures().join("jsonrpc-failing")], None).unwrap();
    let report = run(&format!("ws://{addr}/"), &suites, options()).await;
    let cases = &suites[0].cases;
    assert_eq!(report.cases.len(), cases.len());
    for (loaded, case) in cases.iter().zip(&report.cases) {
        let wanted = loaded
            .case
            .description
            .as_deref()
            .and_then(|d| d.strip_prefix("fails with: "))
            .expect("each failing case says how it fails");
        let expected_status = if case.id == "fail.should-level" {
            Status::Warn
        } else {
            Status::Fail
        };
        assert_eq!(case.status, expected_status, "{}", case.id);
        let failure = case.failure.as_ref().expect("a failure");
        let text = common::verdicts::failure_text(case);
        assert!(
            text.contains(wanted),
            "{}: expected the failure to mention {wanted:?}, got:\n{text}",
            case.id
        );
        assert!(
            failure.location.contains("failing.json:"),
            "{}",
            failure.location
        );
    }
}

#[tokio::test]
async fn strict_turns_should_failures_into_failures() {
    let addr = common::jsonrpc().await;
    let suites = load_suites(&[common::fixtures().join("jsonrpc-failing")], None).unwrap();
    let report = run(
        &format!("ws://{addr}/"),
        &suites,
        RunOptions {
            strict: true,
            filter: Filter {
                cases: vec!["fail.should-*".into()],
                ..Filter::default()
            },
            ..options()
        },
    )
    .await;
    assert_eq!(report.cases.len(), 1);
    assert_eq!(report.cases[0].status, Status::Fail);
}

#[tokio::test]
async fn heartbeats_are_recorded_even_when_ignored() {
    let addr = common::jsonrpc().await;
    let suites = load_suites(
        &[common::fixtures().join("jsonrpc/02-connections.json")],
        None,
    )
    .unwrap();
    let report = run(
        &format!("ws://{addr}/"),
        &suites,
        RunOptions {
            filter: Filter {
                cases: vec!["conn.heartbeat.ignored".into()],
                ..Filter::default()
            },
            ..options()
        },
    )
    .await;
    let case = &report.cases[0];
    assert_eq!(case.status, Status::Pass);
    let ignored = case.transcript.iter().filter(|e| e.ignored).count();
    assert!(ignored >= 3, "{ignored} ignored heartbeats recorded");
    assert!(case
        .transcript
        .iter()
        .filter(|e| e.ignored)
        .all(|e| e.text.as_deref() == Some(r#"{"jsonrpc":"2.0","method":"heartbeat"}"#)));
}

#[tokio::test]
async fn token_injection_reaches_the_handshake() {
    let addr = common::jsonrpc().await;
    let suite = ws_conformance::parse_suite(
        std::path::Path::new("inline.json"),
        r#"{"cases": [{"id": "t", "title": "t", "requirements": [], "profile": "p", "steps": [
            {"step": "open", "path": "/private"},
            {"step": "open", "conn": "anon", "path": "/private", "inject": false, "expect_refusal": {"status": 401}}
        ]}]}"#,
        None,
    )
    .unwrap();
    for auth in [
        ws_conformance::Auth::Query {
            param: "token".into(),
            token: "secret".into(),
        },
        ws_conformance::Auth::Bearer("secret".into()),
    ] {
        let report = run(
            &format!("ws://{addr}/"),
            std::slice::from_ref(&suite),
            RunOptions {
                auth: Some(auth.clone()),
                ..options()
            },
        )
        .await;
        assert_eq!(
            report.cases[0].status,
            Status::Pass,
            "{auth:?}: {:?}",
            report.cases[0].failure
        );
    }
    let report = run(&format!("ws://{addr}/"), &[suite], options()).await;
    assert!(report.cases[0]
        .failure
        .as_ref()
        .unwrap()
        .message
        .contains("HTTP 401"));
}

#[tokio::test]
async fn profiles_skip_and_fail_fast_stops() {
    let addr = common::jsonrpc().await;
    let suites = load_suites(&[common::fixtures().join("jsonrpc")], None).unwrap();
    let report = run(
        &format!("ws://{addr}/"),
        &suites,
        RunOptions {
            filter: Filter {
                profiles: vec!["pubsub".into()],
                tags: vec![],
                ..Filter::default()
            },
            ..options()
        },
    )
    .await;
    assert_eq!(report.summary.passed, 1);
    assert_eq!(report.summary.skipped, report.cases.len() - 1);
    assert!(report
        .cases
        .iter()
        .any(|c| c.skip_reason.as_deref() == Some("profile \"core\" not requested")));

    let suites = load_suites(&[common::fixtures().join("jsonrpc-failing")], None).unwrap();
    let report = run(
        &format!("ws://{addr}/"),
        &suites,
        RunOptions {
            fail_fast: true,
            jobs: 1,
            ..options()
        },
    )
    .await;
    assert_eq!(report.summary.failed, 1);
    assert_eq!(report.summary.skipped, report.cases.len() - 1);
}
