//! The command line: exit codes, terminal output, list, reports, baseline.

use crate::common;

use common::{bin, fixture, stable, stderr, stdout, temp_dir};

use std::path::Path;

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or("")
}

#[test]
fn passing_run_exits_zero_with_summary_line() {
    let (addr, _rt) = common::in_background(common::jsonrpc);
    let out = bin()
        .args([
            "run",
            &format!("ws://{addr}/"),
            "--suite",
            &fixture("jsonrpc"),
            "-j",
            "3",
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(text.contains("        PASS ["), "{text}");
    let summary = last_line(&text);
    assert!(
        regex::Regex::new(r"^Summary: \d+ passed, 0 failed, 0 warned, 0 skipped$")
            .unwrap()
            .is_match(summary),
        "{summary:?}"
    );
    assert!(!text.contains('\x1b'), "no colors when not a terminal");
}

#[test]
fn failure_output_is_pinned() {
    let (addr, _rt) = common::in_background(common::jsonrpc);
    let out = bin()
        .args([
            "run",
            &format!("ws://{addr}/"),
            "--suite",
            &fixture("jsonrpc-failing/failing.json"),
            "--case",
            "fail.value",
            "--case",
            "fail.expect-all-unmatched",
            "--case",
            "fail.should-level",
            "--case",
            "fail.schema",
            "--transcript-lines",
            "6",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    stable().bind(|| insta::assert_snapshot!("failure_output", stdout(&out)));
}

#[test]
fn colors_can_be_forced() {
    let (addr, _rt) = common::in_background(common::jsonrpc);
    let run = |extra: &[&str]| {
        bin()
            .args([
                "run",
                &format!("ws://{addr}/"),
                "-s",
                &fixture("jsonrpc"),
                "-c",
                "rpc.echo.exact",
                "--color",
                "always",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(
        stdout(&out).contains("\x1b[1;32m        PASS\x1b[0m"),
        "{}",
        stdout(&out)
    );
    let out = run(&["--no-color"]);
    assert!(!stdout(&out).contains('\x1b'));
}

#[test]
fn list_needs_no_server() {
    let out = bin()
        .args(["run", "--list", "-s", &fixture("jsonrpc"), "--tag", "smoke"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stable().bind(|| insta::assert_snapshot!("list", stdout(&out)));
    let out = bin()
        .args([
            "list",
            "-s",
            &fixture("jsonrpc"),
            "--exclude",
            "rpc.*",
            "--profile",
            "extras",
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("raw.text-frame"), "{text}");
    assert!(
        text.contains("(skipped: profile \"core\" not requested)"),
        "{text}"
    );
    assert!(!text.contains("rpc.echo.exact"), "{text}");
}

#[test]
fn list_skips_for_missing_variables_exactly_as_run_would() {
    let dir = temp_dir("list-vars");
    let file = dir.join("needs.json");
    std::fs::write(
        &file,
        r#"{"cases": [{"id": "needs.token", "title": "t", "requirements": [], "profile": "p",
            "needs": ["token"], "steps": [{"step": "open"}]}]}"#,
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let listed = |extra: &[&str]| {
        let out = bin()
            .args(["run", "--list", "-s", file])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    assert!(
        listed(&[]).contains("(skipped: needs --var token=...)"),
        "{}",
        listed(&[])
    );
    let with_var = listed(&["--var", "token=t"]);
    assert!(!with_var.contains("skipped"), "{with_var}");

    // The embedded servers provide every variable the shipped suites need.
    let out = bin()
        .args(["run", "--embedded", "--list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("auth.handshake.bearer-header"), "{text}");
    assert!(!text.contains("skipped"), "{text}");
}

#[test]
fn setup_errors_exit_two() {
    // Nothing listens on a port we just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let suite = fixture("jsonrpc");
    let cases: [(&[&str], &str); 6] = [
        (
            &["run", &format!("ws://127.0.0.1:{port}/"), "-s", &suite],
            "error: cannot reach ws://127.0.0.1:",
        ),
        (
            &["run", "http://127.0.0.1:1/", "-s", &suite],
            "error: invalid URL \"http://127.0.0.1:1/\": the scheme must be ws://",
        ),
        (
            &["run", "ws://127.0.0.1:1/", "-s", "/nonexistent/suite.json"],
            "error: cannot read /nonexistent/suite.json",
        ),
        (
            &[
                "run",
                "ws://127.0.0.1:1/",
                "-s",
                &suite,
                "--case",
                "nothing*",
            ],
            "error: no cases selected (17 loaded)",
        ),
        (
            &["run", "ws://127.0.0.1:1/", "-s", &suite, "--case", "a[b"],
            "error: invalid glob \"a[b\"",
        ),
        (
            &[
                "run",
                "ws://127.0.0.1:1/",
                "-s",
                &suite,
                "--header",
                "nocolon",
            ],
            "is not a header",
        ),
    ];
    for (args, wanted) in cases {
        let out = bin().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(wanted), "{args:?}: {}", stderr(&out));
    }
    let out = bin().args(["run", "ws://x/"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "clap usage errors");
}

#[test]
fn a_setup_error_is_printed_once_with_its_causes() {
    let dir = temp_dir("causes");
    let missing = dir.join("missing.txt");
    let out = bin()
        .args(["run", "ws://127.0.0.1:1/", "-s", &fixture("jsonrpc")])
        .arg("--baseline")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let io = std::fs::read_to_string(&missing).unwrap_err();
    assert_eq!(
        stderr(&out),
        format!(
            "error: cannot read baseline {}\n  caused by: {io}\n",
            missing.display()
        )
    );

    let set = dir.join("set.json");
    std::fs::write(&set, r#"{"inbound": {"union": "absent.json"}}"#).unwrap();
    let out = bin()
        .args(["list", "-s", &fixture("jsonrpc")])
        .arg("--schemas")
        .arg(&set)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let io = std::fs::read_to_string(dir.join("absent.json")).unwrap_err();
    assert_eq!(
        stderr(&out),
        format!(
            "error: schema absent.json (from {}) cannot be used\n  \
             caused by: cannot read {}\n  caused by: {io}\n",
            set.display(),
            dir.join("absent.json").display()
        )
    );
}

/// Writes `text` as `dir`/bad.json and lists it, which must fail with exit
/// code 2; returns stderr with `dir` as `[dir]`, since it varies by process.
fn list_invalid(dir: &Path, text: &str) -> String {
    let file = dir.join("bad.json");
    std::fs::write(&file, text).unwrap();
    let out = bin()
        .args(["list", "-s", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    stderr(&out).replace(dir.to_str().unwrap(), "[dir]")
}

#[test]
fn invalid_fixture_reports_position_and_pointer() {
    let dir = temp_dir("invalid");
    let listed = list_invalid(
        &dir,
        r#"{
  "cases": [
    {
      "id": "x",
      "title": "t",
      "requirements": [],
      "profile": "p",
      "steps": [
        { "step": "open" },
        { "step": "expect", "match": { "id": { "$regx": "a" } } },
        { "step": "send", "jsn": {} },
        { "step": "send" }
      ]
    }
  ]
}
"#,
    );
    insta::assert_snapshot!("invalid_fixture", listed);

    let listed = list_invalid(
        &dir,
        r#"{
  "cases": [
    {
      "id": "x",
      "title": "t",
      "requirements": [],
      "profile": "p",
      "steps": [
        { "step": "open" },
        { "step": "expect", "match": { "id": { "$regx": "a" } } },
        { "step": "send" },
        { "step": "send", "binary_base64": "%%" },
        { "step": "expect_close", "reason": "(" }
      ]
    }
  ]
}
"#,
    );
    insta::assert_snapshot!("invalid_fixture_semantics", listed);

    assert_eq!(
        list_invalid(&dir, "{\n  \"cases\": [\n    {\"id\": \"x\",}\n  ]\n}\n"),
        "error: [dir]/bad.json:3:16: invalid JSON: trailing comma\n"
    );
}

#[test]
fn baseline_tolerates_known_failures_and_reports_fixed_ones() {
    let (addr, _rt) = common::in_background(common::jsonrpc);
    let dir = temp_dir("baseline");
    let baseline = dir.join("baseline.txt");
    std::fs::write(
        &baseline,
        "# known\nfail.value\nrpc.echo.exact  # fixed since\n",
    )
    .unwrap();
    let json = dir.join("report.json");
    let junit = dir.join("junit.xml");
    let out = bin()
        .args([
            "run",
            &format!("ws://{addr}/"),
            "-s",
            &fixture("jsonrpc-failing"),
            "-s",
            &fixture("jsonrpc/01-requests.json"),
            "-c",
            "fail.value",
            "-c",
            "rpc.echo.exact",
            "--baseline",
            baseline.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("1 known failure(s) listed in the baseline: fail.value"),
        "{text}"
    );
    assert!(
        text.contains("1 case(s) in the baseline now pass; remove them from it: rpc.echo.exact"),
        "{text}"
    );
    assert_eq!(
        last_line(&text),
        "Summary: 1 passed, 1 failed, 0 warned, 0 skipped"
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["cases"].as_array().unwrap().len(), 2);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<failure message=\"the message did not match the pattern\""),
        "{xml}"
    );

    std::fs::write(&baseline, "rpc.echo.exact\n").unwrap();
    let out = bin()
        .args([
            "run",
            &format!("ws://{addr}/"),
            "-s",
            &fixture("jsonrpc-failing"),
            "-c",
            "fail.value",
            "--baseline",
            baseline.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("failed: fail.value"));
}

#[test]
fn fixture_schema_subcommand_prints_the_checked_in_schema() {
    let out = bin().arg("fixture-schema").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let checked_in = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixture.schema.json"),
    )
    .unwrap();
    assert_eq!(stdout(&out), checked_in);
}
