//! The terminal renderer and the JSON and JUnit reports, on made-up reports:
//! every status, a failure with a diff and a transcript, a schema violation,
//! baseline notes and coverage lines, with no server and nothing that varies
//! between runs.

use serde_json::json;
use ws_conformance::fixture::Level;
use ws_conformance::pattern::Mismatch;
use ws_conformance::render::{self, Style};
use ws_conformance::report::{Coverage, Direction, Entry, Failure, Tally};
use ws_conformance::schema_set::SchemaViolation;
use ws_conformance::{Baseline, CaseReport, Report, Status, Summary};

fn case(id: &str, status: Status, duration_ms: f64) -> CaseReport {
    CaseReport {
        id: id.into(),
        title: format!("the {id} case"),
        location: "suites/demo.json:4:5".into(),
        file: "suites/demo.json".into(),
        requirements: vec!["RPC-1".into()],
        profile: "core".into(),
        tags: Vec::new(),
        level: Level::Must,
        status,
        duration_ms,
        skip_reason: None,
        failure: None,
        warnings: Vec::new(),
        transcript: Vec::new(),
    }
}

fn entry(at_ms: f64, dir: Direction, kind: &str, text: &str) -> Entry {
    Entry {
        at_ms,
        conn: "main".into(),
        dir,
        kind: kind.into(),
        text: Some(text.into()),
        binary_base64: None,
        bytes: None,
        ignored: false,
        schema_error: None,
    }
}

/// A value that does not match: the pattern, the frame, and the mismatch
/// the matcher would report.
fn value_failure() -> CaseReport {
    let received = json!({"jsonrpc": "2.0", "id": 1, "result": 4});
    CaseReport {
        failure: Some(Failure {
            step: Some(3),
            step_kind: Some("expect".into()),
            conn: Some("main".into()),
            location: "suites/demo.json:12:9".into(),
            message: "the message did not match the pattern".into(),
            expected: Some(json!({"id": 1, "result": 5})),
            received: Some(received),
            mismatches: vec![Mismatch {
                path: "/result".into(),
                expected: "5".into(),
                actual: Some(json!(4)),
            }],
            schema_violation: None,
        }),
        transcript: vec![
            entry(0.6, Direction::Event, "open", "ws://127.0.0.1:9000/ws"),
            entry(
                1.9,
                Direction::Out,
                "text",
                r#"{"jsonrpc":"2.0","id":1,"method":"add","params":[2,2]}"#,
            ),
            Entry {
                ignored: true,
                ..entry(2.1, Direction::In, "text", r#"{"method":"heartbeat"}"#)
            },
            entry(
                2.6,
                Direction::In,
                "text",
                r#"{"jsonrpc":"2.0","id":1,"result":4}"#,
            ),
        ],
        ..case("rpc.add", Status::Fail, 3.25)
    }
}

/// A SHOULD case whose frame breaks its schema: a warning, not a failure.
fn schema_warning() -> CaseReport {
    CaseReport {
        level: Level::Should,
        failure: Some(Failure {
            step: None,
            step_kind: None,
            conn: Some("main".into()),
            location: "suites/demo.json:20:5".into(),
            message: "a frame received on \"main\" does not conform to the schema set".into(),
            expected: None,
            received: Some(json!({"jsonrpc": "1.0", "id": 2, "result": 1})),
            mismatches: Vec::new(),
            schema_violation: Some(SchemaViolation {
                schema: "response.schema.json".into(),
                instance_path: "/jsonrpc".into(),
                message: "\"2.0\" was expected".into(),
            }),
        }),
        warnings: vec!["an outbound frame does not conform to the schema set".into()],
        transcript: vec![entry(
            0.4,
            Direction::In,
            "text",
            r#"{"jsonrpc":"1.0","id":2,"result":1}"#,
        )],
        ..case("rpc.version", Status::Warn, 1.5)
    }
}

fn report() -> Report {
    let cases = vec![
        case("rpc.echo", Status::Pass, 0.75),
        value_failure(),
        schema_warning(),
        CaseReport {
            skip_reason: Some("needs --var token=...".into()),
            ..case("rpc.private", Status::Skip, 0.0)
        },
        CaseReport {
            failure: Some(Failure {
                step: Some(1),
                step_kind: Some("open".into()),
                conn: Some("main".into()),
                location: "suites/demo.json:30:9".into(),
                message: "the handshake was refused with HTTP 403".into(),
                expected: None,
                received: None,
                mismatches: Vec::new(),
                schema_violation: None,
            }),
            ..case("rpc.known", Status::Fail, 0.5)
        },
        case("rpc.fixed", Status::Pass, 1.0),
    ];
    Report {
        url: "ws://127.0.0.1:9000/ws".into(),
        duration_ms: 12.0,
        summary: Summary {
            passed: 2,
            failed: 2,
            warned: 1,
            skipped: 1,
        },
        filtered_out: 3,
        profiles: Some(vec!["core".into()]),
        coverage: Some(Coverage {
            profiles: vec!["core".into(), "params".into()],
            must: Tally {
                total: 4,
                covered: 2,
                uncovered: vec!["RPC-CORE-2".into(), "RPC-PARAMS-1".into()],
            },
            should: Tally {
                total: 1,
                covered: 0,
                uncovered: vec!["RPC-CORE-3".into()],
            },
            unlisted: vec!["RPC-TYPO-1".into()],
        }),
        cases,
    }
}

fn baseline() -> Baseline {
    Baseline::parse("rpc.known\nrpc.fixed  # passes again\n")
}

/// What the terminal shows for `report`: the case lines, a block after
/// each FAIL and WARN, then the closing lines.
fn terminal(report: &Report, style: Style) -> String {
    let mut out = String::new();
    for case in &report.cases {
        out.push_str(&render::case_line(case, style));
        out.push('\n');
        if matches!(case.status, Status::Fail | Status::Warn) {
            out.push_str(&render::failure_block(case, style, 3));
        }
    }
    let verdict = report.judge(&baseline());
    out.push_str(&render::summary(
        &report.summary,
        &verdict,
        report.filtered_out,
        report.duration_ms / 1000.0,
        report.coverage.as_ref(),
        style,
    ));
    out
}

#[test]
fn terminal_output() {
    insta::assert_snapshot!(terminal(&report(), Style { color: false }));
}

#[test]
fn terminal_output_in_color() {
    let report = report();
    let lines: String = report
        .cases
        .iter()
        .map(|case| format!("{}\n", render::case_line(case, Style { color: true })))
        .collect();
    insta::assert_snapshot!(lines.replace('\x1b', "<ESC>"));
}

#[test]
fn the_baseline_keeps_known_failures_from_failing_the_run() {
    let report = report();
    let verdict = report.judge(&baseline());
    assert_eq!(verdict.new_failures, ["rpc.add"]);
    assert_eq!(verdict.known_failures, ["rpc.known"]);
    assert_eq!(verdict.fixed, ["rpc.fixed"]);
    assert!(!verdict.ok());
}

#[test]
fn json_report() {
    insta::assert_snapshot!(report().to_json());
}

#[test]
fn junit_report() {
    insta::assert_snapshot!(report().to_junit(3));
}
