//! The command line of the newer features: `--var`, `needs`, the schema
//! set's `claims`, and `--requirements` coverage output.

use crate::common;

use common::{bin, fixture, stable, stderr, stdout, temp_dir};

use common::Identity;
use std::process::Output;

fn server(
    name: &'static str,
    profiles: Option<Vec<&'static str>>,
) -> (String, tokio::runtime::Runtime) {
    let (addr, rt) = common::in_background(|| common::jsonrpc_with(Identity { name, profiles }));
    (format!("ws://{addr}/"), rt)
}

fn run(url: &str, suite: &str, extra: &[&str]) -> Output {
    bin()
        .args(["run", url, "-s", suite])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn vars_run_the_cases_that_need_them() {
    let (main, _rt) = server("main", None);
    let (other, _rt2) = server("other", None);
    let suite = fixture("features/variables.json");

    let out = run(&main, &suite, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("SKIP [   0.000s] vars.greeting (needs --var greeting=...)"),
        "{text}"
    );
    assert!(
        text.ends_with("Summary: 1 passed, 0 failed, 0 warned, 3 skipped\n"),
        "{text}"
    );

    let out = run(
        &main,
        &suite,
        &[
            "--var",
            "greeting=hello, world",
            "--var",
            &format!("other_url={other}"),
            "--var",
            "limit=4096",
        ],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(
        text.ends_with("Summary: 4 passed, 0 failed, 0 warned, 0 skipped\n"),
        "{text}"
    );

    // The value is used as given: this greeting is not the one expected.
    let out = run(
        &main,
        &suite,
        &["-c", "vars.greeting", "--var", "greeting=hi=there"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("at /result/whole: expected \"hello, world\", got \"hi=there\""),
        "{}",
        stdout(&out)
    );

    for bad in ["greeting", "=x", "a-b=1"] {
        let out = run(&main, &suite, &["--var", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(stderr(&out).contains("--var"), "{bad}: {}", stderr(&out));
    }
}

#[test]
fn a_server_whose_first_frame_does_not_claim_profiles_is_a_setup_error() {
    let (plain, _rt) = server("", None);
    let suite = fixture("claims/claims.json");
    let out = run(&plain, &suite, &["--timeout", "300"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: cannot tell which profiles {plain} claims: no frame within 300 ms \
             (pass --profile to choose them)\n"
        )
    );

    let out = run(&plain, &suite, &["-H", "X-Client: me"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(
            "the first frame does not match {\"method\":\"welcome\"}: \
             {\"jsonrpc\":\"2.0\",\"method\":\"hello\",\"params\":{\"client\":\"me\"}}"
        ),
        "{}",
        stderr(&out)
    );

    // With --profile the claims are not read.
    let out = run(&plain, &suite, &["--timeout", "300", "-p", "none"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn coverage_output_is_pinned() {
    let (url, _rt) = server("claims", Some(vec!["core"]));
    let dir = temp_dir("coverage");
    let json = dir.join("report.json");
    let out = run(
        &url,
        &fixture("claims/claims.json"),
        &[
            "--requirements",
            &fixture("requirements/claims.json"),
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stable().bind(|| insta::assert_snapshot!("coverage_output", stdout(&out)));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(
        report["coverage"],
        serde_json::json!({
            "profiles": ["core", "params"],
            "must": { "total": 4, "covered": 2, "uncovered": ["RPC-CORE-2", "RPC-PARAMS-1"] },
            "should": { "total": 1, "covered": 0, "uncovered": ["RPC-CORE-3"] },
            "unlisted": ["RPC-TYPO-1"]
        })
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Without --requirements there is no coverage, in either output.
    let out = run(&url, &fixture("claims/claims.json"), &[]);
    assert!(!stdout(&out).contains("requirements"), "{}", stdout(&out));
}

#[test]
fn list_shows_the_coverage_of_the_selection() {
    let out = bin()
        .args([
            "list",
            "-s",
            &fixture("claims/claims.json"),
            "-s",
            &fixture("features/variables.json"),
            "--requirements",
            &fixture("requirements/claims.json"),
            "-p",
            "extras",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stable().bind(|| insta::assert_snapshot!("list_coverage", stdout(&out)));

    let out = bin()
        .args([
            "list",
            "-s",
            &fixture("claims/claims.json"),
            "--requirements",
            "/nonexistent/requirements.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .starts_with("error: cannot read requirements file /nonexistent/requirements.json"),
        "{}",
        stderr(&out)
    );

    let out = bin()
        .args([
            "list",
            "-s",
            &fixture("claims/claims.json"),
            "--requirements",
            &fixture("claims/claims.json"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a requirements file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn embedded_defaults_to_the_tidewire_requirements() {
    // --list stops before any server starts; one suite keeps it quick.
    let out = bin()
        .args(["run", "--embedded", "--list", "-s", "../fixtures/core.json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let counts =
        regex::Regex::new(r"(?m)^requirements: \d+/\d+ MUST, \d+/\d+ SHOULD covered \(core, ")
            .unwrap();
    assert!(counts.is_match(&text), "{text}");
}

#[test]
fn a_ca_certificate_file_that_cannot_be_used_is_a_setup_error() {
    let suite = fixture("features/variables.json");
    for (file, wanted) in [
        (
            "/nonexistent/ca.pem",
            "cannot read CA certificates from /nonexistent/ca.pem",
        ),
        (suite.as_str(), "holds no PEM certificate"),
    ] {
        let out = run("wss://127.0.0.1:9/", &suite, &["--ca-cert", file]);
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
        assert!(stderr(&out).contains(wanted), "{file}: {}", stderr(&out));
    }
}

#[test]
fn injected_faults_need_the_embedded_server() {
    for command in ["run", "prop"] {
        let out = bin()
            .args([command, "ws://127.0.0.1:9/", "--inject-fault", "drop-event"])
            .args(if command == "run" {
                vec!["-s", "fixtures"]
            } else {
                vec![]
            })
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{command}: {}", stdout(&out));
        assert!(
            stderr(&out).contains("--inject-fault works only with --embedded"),
            "{command}: {}",
            stderr(&out)
        );
    }
}
