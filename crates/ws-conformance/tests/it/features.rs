//! Run variables (`--var`) and what builds on them (`needs`, `open`'s `url`,
//! sized byte counts), `send`'s `repeat`, the schema set's `claims`, and
//! requirement coverage, through the library against the JSON-RPC servers of
//! `common`.

use crate::common;

use common::verdicts::{assert_fail, assert_pass, case, explain, run};

use common::Identity;
use std::path::Path;
use std::time::Duration;
use ws_conformance::report::{Coverage, Requirements, Tally};
use ws_conformance::{
    load_suites, parse_suite, Filter, RunOptions, Runner, SetupError, Status, Suite,
};

fn options(vars: &[(&str, &str)]) -> RunOptions {
    RunOptions {
        step_timeout: Duration::from_secs(2),
        case_timeout: Duration::from_secs(10),
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..RunOptions::default()
    }
}

fn suite(rel: &str) -> Vec<Suite> {
    load_suites(&[common::fixtures().join(rel)], None).unwrap()
}

async fn named(name: &'static str) -> String {
    let addr = common::jsonrpc_with(Identity {
        name,
        profiles: None,
    })
    .await;
    format!("ws://{addr}/")
}

fn only(ids: &[&str], mut options: RunOptions) -> RunOptions {
    options.filter = Filter {
        cases: ids.iter().map(|s| s.to_string()).collect(),
        ..Filter::default()
    };
    options
}

#[tokio::test]
async fn cases_missing_a_variable_are_skipped_and_run_once_given() {
    let url = named("main").await;
    let suites = suite("features/variables.json");
    let report = run(&url, &suites, options(&[])).await;
    for (id, var) in [
        ("vars.greeting", "greeting"),
        ("vars.url", "other_url"),
        ("vars.sized", "limit"),
    ] {
        let c = case(&report, id);
        assert_eq!(c.status, Status::Skip, "{}", explain(c));
        assert_eq!(
            c.skip_reason.as_deref(),
            Some(format!("needs --var {var}=...").as_str())
        );
        assert!(c.transcript.is_empty(), "a skipped case opens nothing");
    }
    assert_pass(case(&report, "send.repeat"));

    let report = run(
        &url,
        &suites,
        only(&["vars.greeting"], options(&[("greeting", "hello, world")])),
    )
    .await;
    assert_pass(case(&report, "vars.greeting"));
}

#[tokio::test]
async fn a_variable_is_interpolated_as_given() {
    let url = named("main").await;
    let suites = suite("features/variables.json");
    let report = run(
        &url,
        &suites,
        only(&["vars.greeting"], options(&[("greeting", "goodbye")])),
    )
    .await;
    let c = case(&report, "vars.greeting");
    assert_fail(c, 3, "expected \"hello, world\", got \"goodbye\"");
    let sent = c
        .transcript
        .iter()
        .find_map(|e| e.text.as_deref().filter(|t| t.contains("echo")))
        .expect("the request is in the transcript");
    assert!(sent.contains(r#""inside":"<goodbye>""#), "{sent}");
}

#[tokio::test]
async fn open_url_connects_to_the_endpoint_the_variable_names() {
    let main = named("main").await;
    let other = named("other").await;
    let suites = suite("features/variables.json");
    let with = |url: &str| only(&["vars.url"], options(&[("other_url", url)]));

    let report = run(&main, &suites, with(&other)).await;
    assert_pass(case(&report, "vars.url"));

    // Pointing the variable at the run URL's server proves the step does
    // not silently fall back to it: `whoami` on "other" answers "main".
    let report = run(&main, &suites, with(&main)).await;
    assert_fail(
        case(&report, "vars.url"),
        6,
        "expected \"other\", got \"main\"",
    );

    let report = run(&main, &suites, with("http://127.0.0.1:1/")).await;
    assert_fail(
        case(&report, "vars.url"),
        4,
        "invalid URL \"http://127.0.0.1:1/\"",
    );
}

#[tokio::test]
async fn sized_takes_its_byte_count_from_a_variable_plus_an_offset() {
    let url = named("main").await;
    let suites = suite("features/variables.json");
    let with = |limit: &str| only(&["vars.sized"], options(&[("limit", limit)]));

    // 4096 bytes is the server's largest frame: 4096 - 1000 is echoed with
    // exactly 3042 fill bytes, 4096 is echoed, 4096 + 1 closes with 1009.
    let report = run(&url, &suites, with("4096")).await;
    assert_pass(case(&report, "vars.sized"));

    let report = run(&url, &suites, with("4095")).await;
    assert_fail(case(&report, "vars.sized"), 3, "^x{3042}$");

    let report = run(&url, &suites, with("lots")).await;
    assert_fail(
        case(&report, "vars.sized"),
        2,
        "`${limit}` is \"lots\", not a number",
    );

    let report = run(&url, &suites, with("10")).await;
    assert_fail(case(&report, "vars.sized"), 2, "out of range");
}

fn repeat_suite(repeat: u32, expected: usize) -> Vec<Suite> {
    let patterns = vec![serde_json::json!({ "id": 7 }); expected];
    let text = serde_json::json!({
        "cases": [{
            "id": "repeat",
            "title": "repeat",
            "requirements": [],
            "profile": "core",
            "steps": [
                { "step": "open" },
                { "step": "send", "repeat": repeat,
                  "json": { "jsonrpc": "2.0", "id": 7, "method": "echo", "params": [1] } },
                { "step": "expect_all", "timeout_ms": 500, "match": patterns },
                { "step": "expect_silence", "for_ms": 300, "match": { "id": 7 } }
            ]
        }]
    });
    vec![parse_suite(Path::new("repeat.json"), &text.to_string(), None).unwrap()]
}

#[tokio::test]
async fn repeat_sends_the_frame_exactly_that_many_times() {
    let url = named("main").await;
    let report = run(&url, &suite("features/variables.json"), options(&[])).await;
    let c = case(&report, "send.repeat");
    assert_pass(c);
    let received = c
        .transcript
        .iter()
        .filter(|e| e.text.as_deref().is_some_and(|t| t.contains(r#""id":7"#)))
        .count();
    // One entry for the frame sent (noted as repeated) and one per reply.
    assert_eq!(received, 4, "{:#?}", c.transcript);
    assert!(
        c.transcript
            .iter()
            .any(|e| e.text.as_deref() == Some("the frame above is sent 3 times")),
        "{:#?}",
        c.transcript
    );

    let report = run(&url, &repeat_suite(2, 3), options(&[])).await;
    assert_fail(
        &report.cases[0],
        3,
        "only 2 of 3 expected messages arrived on \"main\" within 500 ms",
    );
    let report = run(&url, &repeat_suite(4, 3), options(&[])).await;
    assert_fail(
        &report.cases[0],
        4,
        "expected no matching message on \"main\" for 300 ms",
    );
    let report = run(&url, &repeat_suite(3, 3), options(&[])).await;
    assert_pass(&report.cases[0]);
}

async fn claiming(profiles: Vec<&'static str>) -> String {
    let addr = common::jsonrpc_with(Identity {
        name: "claims",
        profiles: Some(profiles),
    })
    .await;
    format!("ws://{addr}/")
}

#[tokio::test]
async fn cases_of_profiles_the_server_does_not_claim_are_skipped() {
    let suites = suite("claims/claims.json");

    let url = claiming(vec!["core"]).await;
    let report = run(&url, &suites, options(&[])).await;
    assert_pass(case(&report, "claims.core"));
    let extras = case(&report, "claims.extras");
    assert_eq!(extras.status, Status::Skip, "{}", explain(extras));
    assert_eq!(
        extras.skip_reason.as_deref(),
        Some("profile \"extras\" not claimed by the server (it claims: core)")
    );
    assert_eq!(report.profiles, Some(vec!["core".to_string()]));

    let url = claiming(vec!["extras", "core"]).await;
    let report = run(&url, &suites, options(&[])).await;
    assert_pass(case(&report, "claims.core"));
    assert_pass(case(&report, "claims.extras"));

    // --profile decides instead of the claims, which are then not read.
    let url = claiming(vec!["extras"]).await;
    let mut opts = options(&[]);
    opts.filter.profiles = vec!["core".into()];
    let report = run(&url, &suites, opts).await;
    assert_fail(
        case(&report, "claims.core"),
        2,
        "at /params/profiles: expected an array containing an element matching \"core\"",
    );
    assert_eq!(
        case(&report, "claims.extras").skip_reason.as_deref(),
        Some("profile \"extras\" not requested")
    );
    assert_eq!(report.profiles, Some(vec!["core".to_string()]));
}

#[tokio::test]
async fn a_first_frame_without_the_claims_is_a_setup_error() {
    let suites = suite("claims/claims.json");
    let addr = common::jsonrpc().await;
    let mut opts = options(&[]);
    opts.step_timeout = Duration::from_millis(300);
    let err = Runner::new(opts.clone())
        .run(&format!("ws://{addr}/"), &suites)
        .await
        .unwrap_err();
    assert!(matches!(err, SetupError::Claims { .. }), "{err:?}");
    assert!(
        err.to_string()
            .ends_with("claims: no frame within 300 ms (pass --profile to choose them, or --timeout to wait longer)"),
        "{err}"
    );

    // A refused handshake: choosing profiles would not help, a token would.
    let err = Runner::new(opts.clone())
        .run(&format!("ws://{addr}/private"), &suites)
        .await
        .unwrap_err();
    assert!(
        err.to_string().ends_with(
            "the handshake was refused with HTTP 401 (pass --token if the endpoint needs one)"
        ),
        "{err}"
    );

    // An `x-client` header makes the server greet with `hello` first.
    opts.headers = vec![("X-Client".into(), "me".into())];
    let err = Runner::new(opts)
        .run(&format!("ws://{addr}/"), &suites)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the first frame does not match {\"method\":\"welcome\"}"),
        "{err}"
    );
}

fn requirements() -> Requirements {
    Requirements::load(&common::fixtures().join("requirements/claims.json")).unwrap()
}

fn tally(total: usize, uncovered: &[&str]) -> Tally {
    Tally {
        total,
        covered: total - uncovered.len(),
        uncovered: uncovered.iter().map(|s| s.to_string()).collect(),
    }
}

#[tokio::test]
async fn coverage_counts_the_requirements_of_the_claimed_profiles() {
    let suites = suite("claims/claims.json");
    let requirements = requirements();

    let url = claiming(vec!["core"]).await;
    let mut report = run(&url, &suites, options(&[])).await;
    report.cover(&requirements);
    assert_eq!(
        report.coverage,
        Some(Coverage {
            // `params` comes in with `core` (applies_with); the client
            // requirement and the MAY are not counted.
            profiles: vec!["core".into(), "params".into()],
            must: tally(4, &["RPC-CORE-2", "RPC-PARAMS-1"]),
            should: tally(1, &["RPC-CORE-3"]),
            unlisted: vec!["RPC-TYPO-1".into()],
        })
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["coverage"]["must"]["covered"], 2);
    assert_eq!(
        json["coverage"]["should"]["uncovered"],
        serde_json::json!(["RPC-CORE-3"])
    );

    let url = claiming(vec!["core", "extras"]).await;
    let mut report = run(&url, &suites, options(&[])).await;
    report.cover(&requirements);
    let coverage = report.coverage.unwrap();
    assert_eq!(
        coverage.profiles,
        ["core", "extras", "params", "stats"].map(String::from)
    );
    assert_eq!(coverage.must, tally(5, &["RPC-CORE-2", "RPC-PARAMS-1"]));
    assert_eq!(coverage.should, tally(2, &["RPC-CORE-3", "RPC-STATS-1"]));
}

#[tokio::test]
async fn skipped_cases_cover_nothing() {
    let suites = suite("claims/claims.json");
    let requirements = requirements();
    let url = claiming(vec!["core"]).await;
    let mut opts = options(&[]);
    opts.filter.profiles = vec!["extras".into()];
    let mut report = run(&url, &suites, opts.clone()).await;
    // The extras case fails (the server does not claim extras), but it ran,
    // so it checked its requirement.
    assert_eq!(case(&report, "claims.core").status, Status::Skip);
    assert_eq!(case(&report, "claims.extras").status, Status::Fail);
    report.cover(&requirements);
    let coverage = report.coverage.clone().unwrap();
    assert_eq!(coverage.profiles, ["extras", "stats"]);
    assert_eq!(coverage.must, tally(1, &[]));
    assert_eq!(coverage.should, tally(1, &["RPC-STATS-1"]));

    // Counted over every profile, the skipped core case covers nothing, but
    // its ids are still checked against the file.
    report.profiles = None;
    report.cover(&requirements);
    let coverage = report.coverage.unwrap();
    let core_uncovered = ["RPC-CORE-1", "RPC-CORE-2", "RPC-PARAMS-1", "RPC-PARAMS-2"];
    assert_eq!(coverage.must, tally(5, &core_uncovered));
    assert_eq!(coverage.unlisted, ["RPC-TYPO-1"]);

    // A plan (what `list` shows) counts the same way before anything runs.
    let plan = Runner::new(opts).plan(&suites).unwrap();
    assert_eq!(
        plan.coverage(&requirements, None).must,
        tally(5, &core_uncovered)
    );
    let plan = Runner::new(options(&[])).plan(&suites).unwrap();
    let coverage = plan.coverage(&requirements, None);
    assert_eq!(coverage.must, tally(5, &["RPC-CORE-2", "RPC-PARAMS-1"]));
    assert_eq!(coverage.should, tally(2, &["RPC-CORE-3", "RPC-STATS-1"]));
}

#[tokio::test]
async fn a_case_lacking_variables_covers_in_a_listing_but_not_in_a_run() {
    let suites = suite("features/variables.json");
    let requirements = Requirements::parse(
        "r.json",
        r#"[{"id": "RPC-WS-2", "profile": "core", "level": "MUST"}]"#,
    )
    .unwrap();
    // Only vars.sized cites RPC-WS-2, and it needs `limit`.
    let plan = Runner::new(options(&[])).plan(&suites).unwrap();
    assert_eq!(plan.coverage(&requirements, None).must, tally(1, &[]));

    let url = named("main").await;
    let mut report = run(&url, &suites, options(&[])).await;
    assert_eq!(case(&report, "vars.sized").status, Status::Skip);
    report.cover(&requirements);
    assert_eq!(report.coverage.unwrap().must, tally(1, &["RPC-WS-2"]));

    let mut report = run(&url, &suites, options(&[("limit", "4096")])).await;
    report.cover(&requirements);
    assert_eq!(report.coverage.unwrap().must, tally(1, &[]));
}

#[test]
fn requirements_files_are_checked_when_loaded() {
    let parse = |text: &str| Requirements::parse("r.json", text).map(|r| r.list.len());
    assert_eq!(
        parse(r#"[{"id": "A-1", "profile": "p", "level": "MUST", "extra": 1}]"#).unwrap(),
        1
    );
    let err = parse(r#"[{"id": "A-1", "profile": "p", "level": "MUST"}, {"id": "A-1", "profile": "p", "level": "MAY"}]"#)
        .unwrap_err();
    assert_eq!(err.to_string(), "r.json: requirement A-1 is listed twice");
    let err = parse(r#"[{"id": "A-1", "profile": "p", "level": "must"}]"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "r.json: requirement A-1 has level \"must\"; expected MUST, MUST NOT, SHOULD, SHOULD NOT or MAY"
    );
    let err = parse(r#"{"id": "A-1"}"#).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("r.json: not a requirements file"),
        "{err}"
    );
    let err = parse(r#"[{"id": "A-1", "level": "MUST"}]"#).unwrap_err();
    let chain = common::error_chain(&err);
    assert!(chain.contains("missing field `profile`"), "{chain}");
}

#[tokio::test]
async fn fresh_variables_are_made_as_each_case_starts_and_yield_to_var() {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let url = named("main").await;
    let suites = suite("features/variables.json");
    let made = Arc::new(AtomicUsize::new(0));
    let counter = made.clone();
    let mut fresh = only(&["vars.greeting", "send.repeat"], options(&[]));
    fresh.fresh_vars = Some(ws_conformance::FreshVars::new(
        vec!["greeting".to_string()],
        move || {
            counter.fetch_add(1, Ordering::SeqCst);
            BTreeMap::from([("greeting".to_string(), "hello, world".to_string())])
        },
    ));
    let report = run(&url, &suites, fresh.clone()).await;
    // A fresh variable satisfies `needs` like a --var value.
    assert_pass(case(&report, "vars.greeting"));
    assert_pass(case(&report, "send.repeat"));
    assert_eq!(made.load(Ordering::SeqCst), 2, "made once per case run");

    fresh
        .vars
        .insert("greeting".to_string(), "goodbye".to_string());
    let report = run(&url, &suites, fresh).await;
    assert_fail(
        case(&report, "vars.greeting"),
        3,
        "expected \"hello, world\", got \"goodbye\"",
    );
}

#[tokio::test]
async fn every_case_run_gets_a_fresh_nonce_unless_one_is_given() {
    let url = named("main").await;
    let case = |id: &str| {
        serde_json::json!({
            "id": id, "title": id, "requirements": [], "profile": "core",
            "steps": [
                {"step": "open"},
                {"step": "send", "json": {"jsonrpc": "2.0", "id": 1, "method": "echo", "params": ["${nonce}"]}},
                {"step": "expect", "match": {"id": 1, "result": [{"$regex": "^n[0-9a-f]{12}$", "$capture": "seen"}]}}
            ]
        })
    };
    let text = serde_json::json!({"cases": [case("nonce.a"), case("nonce.b")]}).to_string();
    let suites = vec![parse_suite(Path::new("nonce.json"), &text, None).unwrap()];
    let sent = |report: &ws_conformance::Report, id: &str| -> String {
        let c = common::verdicts::case(report, id);
        assert_pass(c);
        c.transcript
            .iter()
            .find_map(|e| e.text.clone().filter(|t| t.contains("echo")))
            .expect("the echo request is in the transcript")
    };

    let report = run(&url, &suites, options(&[])).await;
    assert_ne!(
        sent(&report, "nonce.a"),
        sent(&report, "nonce.b"),
        "two case runs must not share a nonce"
    );
    let again = run(&url, &suites, options(&[])).await;
    assert_ne!(sent(&report, "nonce.a"), sent(&again, "nonce.a"));

    // A --var nonce (here one the pattern refuses) replaces the fresh one.
    let given = run(&url, &suites, options(&[("nonce", "fixed")])).await;
    assert_fail(common::verdicts::case(&given, "nonce.a"), 3, "fixed");
}

/// Records the order in which cases start.
#[derive(Default)]
struct StartOrder(Vec<String>);

impl ws_conformance::Observer for StartOrder {
    fn started(
        &mut self,
        case: &ws_conformance::fixture::LoadedCase,
        _: usize,
        _: usize,
        _: usize,
    ) {
        self.0.push(case.case.id.clone());
    }
}

#[tokio::test]
async fn cases_that_wait_longest_start_first_and_report_in_file_order() {
    let url = named("main").await;
    let case = |id: &str, steps: serde_json::Value| serde_json::json!({ "id": id, "title": id, "requirements": [], "profile": "core", "steps": steps });
    let open = serde_json::json!({ "step": "open" });
    let text = serde_json::json!({
        "cases": [
            case("answers-at-once", serde_json::json!([open])),
            case("waits-on-a-computed-timer", serde_json::json!([
                open, { "step": "expect_silence", "for_ms": "10 + 10", "match": { "id": 99 } }
            ])),
            case("listens-a-while", serde_json::json!([
                open, { "step": "expect_silence", "for_ms": 30 }, { "step": "wait", "ms": 70 }
            ])),
            case("sleeps-briefly", serde_json::json!([open, { "step": "wait", "ms": 10 }])),
        ]
    });
    let suites = vec![parse_suite(Path::new("order.json"), &text.to_string(), None).unwrap()];
    let runner = Runner::new(RunOptions {
        jobs: 1,
        ..options(&[])
    });
    let mut order = StartOrder::default();
    let report = runner.run_with(&url, &suites, &mut order).await.unwrap();
    assert_eq!(
        order.0,
        [
            "waits-on-a-computed-timer",
            "listens-a-while",
            "sleeps-briefly",
            "answers-at-once"
        ]
    );
    let reported: Vec<&str> = report.cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        reported,
        [
            "answers-at-once",
            "waits-on-a-computed-timer",
            "listens-a-while",
            "sleeps-briefly"
        ]
    );
}
