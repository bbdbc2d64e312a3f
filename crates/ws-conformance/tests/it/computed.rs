//! Values computed from captures: counts (`"${hb} * 2"`) in numeric step
//! fields, expressions in number matchers, `$ne`, `nested` frames,
//! interpolation in `sized` and close reasons, `needs_profiles`, and what a
//! failed `expect_silence` shows. Against the JSON-RPC servers of `common`.

use crate::common;

use common::verdicts::{assert_fail, assert_pass, explain, run};
use common::Identity;
use serde_json::{json, Value};
use std::time::Duration;
use ws_conformance::{parse_suite, RunOptions, Status, Suite};

fn options() -> RunOptions {
    RunOptions {
        step_timeout: Duration::from_secs(2),
        case_timeout: Duration::from_secs(10),
        ..RunOptions::default()
    }
}

/// One case of `steps`, in a file beside the JSON-RPC example suites so that
/// `schemas` resolves like theirs.
fn one_case(schema_set: &str, extra: Value, steps: Value) -> Vec<Suite> {
    let mut case = json!({
        "id": "computed", "title": "computed", "requirements": [], "profile": "core",
        "steps": steps,
    });
    case.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let text = json!({ "schemas": format!("../jsonrpc/schema/{schema_set}"), "cases": [case] });
    let path = common::fixtures().join("features/inline.json");
    vec![parse_suite(&path, &text.to_string(), None).unwrap()]
}

fn steps(steps: Value) -> Vec<Suite> {
    one_case("schema-set.json", json!({}), steps)
}

async fn server() -> String {
    format!("ws://{}/", common::jsonrpc().await)
}

fn echo(id: u64, params: Value) -> Value {
    json!({ "step": "send", "json": { "jsonrpc": "2.0", "id": id, "method": "echo", "params": params } })
}

/// Captures `interval` (300) from an echo, then waits for the heartbeat of
/// a connection asking for that interval within `timeout`.
fn heartbeat_within(timeout: &str) -> Vec<Suite> {
    steps(json!([
        { "step": "open" },
        echo(1, json!({ "interval": 300 })),
        { "step": "expect", "match": { "id": 1, "result": { "interval": { "$capture": "interval" } } } },
        { "step": "open", "conn": "beat", "query": { "heartbeat_ms": "${interval}" } },
        { "step": "expect", "conn": "beat", "match": { "method": "heartbeat" }, "timeout_ms": timeout }
    ]))
}

#[tokio::test]
async fn a_timeout_is_computed_from_a_captured_value() {
    let url = server().await;
    let report = run(&url, &heartbeat_within("${interval} * 2 + 100"), options()).await;
    assert_pass(&report.cases[0]);
    let report = run(&url, &heartbeat_within("${interval} / 3"), options()).await;
    assert_fail(
        &report.cases[0],
        5,
        "no message arrived on \"beat\" within 100 ms",
    );
    let report = run(&url, &heartbeat_within("${nowhere} * 2"), options()).await;
    assert_fail(
        &report.cases[0],
        5,
        "`${nowhere}` is used but was never captured",
    );
}

#[test]
fn a_malformed_count_is_refused_at_load() {
    let text = json!({ "cases": [{ "id": "c", "title": "t", "requirements": [], "profile": "core",
        "steps": [ { "step": "wait", "ms": "${a} * " } ] }] });
    let err = parse_suite("bad.json".as_ref(), &text.to_string(), None).unwrap_err();
    assert!(
        err.to_string()
            .contains("at /cases/0/steps/0/ms: invalid expression \"${a} * \""),
        "{err}"
    );
}

fn compare(matcher: Value) -> Vec<Suite> {
    steps(json!([
        { "step": "open" },
        echo(1, json!({ "start": 1200 })),
        { "step": "expect", "match": { "id": 1, "result": { "start": { "$capture": "start" } } } },
        echo(2, json!({ "later": 1700, "list": [1, 2, 3] })),
        { "step": "expect", "match": { "id": 2, "result": matcher } }
    ]))
}

#[tokio::test]
async fn number_matchers_take_expressions_over_captures() {
    let url = server().await;
    for passing in [
        json!({ "later": { "$gte": "${start} + 500", "$lte": "${start} * 2" } }),
        json!({ "later": { "$eq": "${start} + 500" } }),
        json!({ "later": { "$ne": "${start}" }, "list": { "$length": "${start} / 400" } }),
    ] {
        let report = run(&url, &compare(passing.clone()), options()).await;
        assert_eq!(
            report.cases[0].status,
            Status::Pass,
            "{passing}: {}",
            explain(&report.cases[0])
        );
    }
    let report = run(
        &url,
        &compare(json!({ "later": { "$gt": "${start} + 500" } })),
        options(),
    )
    .await;
    assert_fail(
        &report.cases[0],
        5,
        "at /result/later: expected a number > 1700, got 1700",
    );
    let report = run(
        &url,
        &compare(json!({ "later": { "$eq": "${start} + 501" } })),
        options(),
    )
    .await;
    assert_fail(&report.cases[0], 5, "expected a number = 1701, got 1700");
    let report = run(
        &url,
        &compare(json!({ "later": { "$ne": 1700 } })),
        options(),
    )
    .await;
    assert_fail(&report.cases[0], 5, "expected a value other than 1700");
    let report = run(
        &url,
        &compare(json!({ "list": { "$length": "${start} / 300" } })),
        options(),
    )
    .await;
    assert_fail(&report.cases[0], 5, "an array of 4 elements (it has 3)");
}

#[tokio::test]
async fn repeat_wait_and_silence_take_counts() {
    let url = server().await;
    let suites = steps(json!([
        { "step": "open" },
        echo(1, json!({ "n": 3 })),
        { "step": "expect", "match": { "id": 1, "result": { "n": { "$capture": "n" } } } },
        { "step": "send", "repeat": "${n} - 1", "json": { "jsonrpc": "2.0", "id": 7, "method": "echo", "params": [] } },
        { "step": "wait", "ms": "${n} * 10" },
        { "step": "expect_all", "match": [ { "id": 7 }, { "id": 7 } ], "timeout_ms": "${n} * 100" },
        { "step": "expect_silence", "for_ms": "${n} * 50", "match": { "id": 7 } }
    ]));
    assert_pass(&run(&url, &suites, options()).await.cases[0]);
}

#[tokio::test]
async fn a_nested_frame_takes_its_depth_from_a_capture() {
    let url = server().await;
    let nested = |depth: &str| {
        steps(json!([
            { "step": "open" },
            echo(1, json!({ "depth": 3 })),
            { "step": "expect", "match": { "id": 1, "result": { "depth": { "$capture": "depth" } } } },
            { "step": "send", "nested": { "depth": depth, "inner": "7",
                "prefix": "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\",\"params\":", "suffix": "}" } },
            { "step": "expect", "match": { "id": 2, "result": [[[7]]] } }
        ]))
    };
    assert_pass(&run(&url, &nested("${depth}"), options()).await.cases[0]);
    let report = run(&url, &nested("${depth} - 1"), options()).await;
    assert_fail(&report.cases[0], 5, "at /result/0/0: expected [7], got 7");
}

#[tokio::test]
async fn sized_prefixes_and_close_reasons_are_interpolated() {
    let url = server().await;
    let suites = |reason: &str| {
        steps(json!([
            { "step": "open" },
            echo(1, json!({ "id": "tag-9", "word": "shutting" })),
            { "step": "expect", "match": { "id": 1, "result": { "id": { "$capture": "tag" }, "word": { "$capture": "word" } } } },
            { "step": "send", "sized": { "bytes": 100,
                "prefix": "{\"jsonrpc\":\"2.0\",\"id\":\"${tag}\",\"method\":\"echo\",\"params\":[\"", "suffix": "\"]}" } },
            { "step": "expect", "match": { "id": "tag-9", "result": [{ "$regex": "^x+$" }] } },
            { "step": "send", "json": { "jsonrpc": "2.0", "id": 3, "method": "shutdown" } },
            { "step": "expect", "match": { "id": 3 } },
            { "step": "expect_close", "code": 4000, "reason": reason }
        ]))
    };
    assert_pass(&run(&url, &suites("^${word} down$"), options()).await.cases[0]);
    let report = run(&url, &suites("^not ${word}$"), options()).await;
    assert_fail(&report.cases[0], 8, "a reason matching /^not shutting$/");
}

#[tokio::test]
async fn a_failed_silence_shows_the_frames_that_arrived() {
    let url = server().await;
    let suites = steps(json!([
        { "step": "open" },
        echo(1, json!("first")),
        echo(2, json!("second")),
        { "step": "expect_silence", "for_ms": 1000, "match": { "id": 2 } }
    ]));
    let report = run(&url, &suites, options()).await;
    assert_fail(
        &report.cases[0],
        4,
        r#"{"jsonrpc":"2.0","id":2,"result":"second"}; before it, in the window, arrived (not matching): {"jsonrpc":"2.0","id":1,"result":"first"}"#,
    );
}

#[tokio::test]
async fn a_case_needing_a_profile_the_server_does_not_claim_is_skipped() {
    let addr = common::jsonrpc_with(Identity {
        name: "claims",
        profiles: Some(vec!["core"]),
    })
    .await;
    let url = format!("ws://{addr}/");
    let suites = one_case(
        "schema-set-claims.json",
        json!({ "needs_profiles": ["extras"] }),
        json!([{ "step": "open" }, { "step": "expect", "match": { "method": "welcome" } }]),
    );
    let report = run(&url, &suites, options()).await;
    assert_eq!(report.cases[0].status, Status::Skip);
    assert_eq!(
        report.cases[0].skip_reason.as_deref(),
        Some("profile \"extras\" not claimed by the server (it claims: core)")
    );

    let mut requested = options();
    requested.filter.profiles = vec!["core".into()];
    let report = run(&url, &suites, requested).await;
    assert_eq!(
        report.cases[0].skip_reason.as_deref(),
        Some("profile \"extras\" not requested")
    );

    let addr = common::jsonrpc_with(Identity {
        name: "claims",
        profiles: Some(vec!["core", "extras"]),
    })
    .await;
    let report = run(&format!("ws://{addr}/"), &suites, options()).await;
    assert_pass(&report.cases[0]);
}

fn with_setup(setup_expect: Value) -> Vec<Suite> {
    let text = json!({
        "schemas": "../jsonrpc/schema/schema-set.json",
        "setups": { "greeted": [
            { "step": "open", "headers": { "X-Client": "${nonce}" } },
            { "step": "expect", "match": setup_expect }
        ] },
        "cases": [{
            "id": "setup", "title": "setup", "requirements": [], "profile": "core",
            "steps": [
                { "step": "include", "setup": "greeted" },
                { "step": "include", "setup": "greeted", "conn": "second" },
                echo(1, json!("on second")).as_object().unwrap().clone().into_iter()
                    .chain([("conn".to_string(), json!("second"))]).collect::<serde_json::Map<_, _>>(),
                { "step": "expect", "conn": "second", "match": { "id": 1, "result": "on second" } },
                { "step": "expect_silence", "for_ms": 100 }
            ]
        }]
    });
    let path = common::fixtures().join("features/inline.json");
    vec![parse_suite(&path, &text.to_string(), None).unwrap()]
}

#[tokio::test]
async fn an_include_runs_a_setup_on_the_connection_it_names() {
    let url = server().await;
    let report = run(
        &url,
        &with_setup(json!({ "method": "hello", "params": { "client": "${nonce}" } })),
        options(),
    )
    .await;
    let case = &report.cases[0];
    assert_pass(case);
    let opened: Vec<&str> = case
        .transcript
        .iter()
        .filter(|e| e.kind == "open")
        .map(|e| e.conn.as_str())
        .collect();
    assert_eq!(opened, ["main", "second"]);

    let report = run(&url, &with_setup(json!({ "method": "goodbye" })), options()).await;
    assert_fail(
        &report.cases[0],
        1,
        "in setup \"greeted\", step 2 (expect): the message did not match the pattern",
    );
}

#[test]
fn an_include_of_a_missing_setup_is_refused_at_load() {
    let text = json!({ "cases": [{ "id": "c", "title": "t", "requirements": [], "profile": "core",
        "steps": [ { "step": "include", "setup": "nowhere" } ] }] });
    let err = parse_suite("bad.json".as_ref(), &text.to_string(), None).unwrap_err();
    assert!(
        err.to_string()
            .contains("at /cases/0/steps/0/setup: no setup named \"nowhere\" in this file"),
        "{err}"
    );
}

fn scatter_then_reply(min: Value, max: Value) -> Vec<Suite> {
    let mut step = json!({ "step": "expect_repeated", "match": { "method": "item" },
        "then": { "id": 1, "result": { "sent": { "$capture": "sent" } } } });
    for (key, value) in [("min", min), ("max", max)] {
        if !value.is_null() {
            step[key] = value;
        }
    }
    steps(json!([
        { "step": "open" },
        { "step": "send", "json": { "jsonrpc": "2.0", "id": 1, "method": "scatter", "params": { "count": 5 } } },
        step,
        echo(2, json!("${sent}")),
        { "step": "expect", "match": { "id": 2, "result": 5 } }
    ]))
}

#[tokio::test]
async fn expect_repeated_takes_like_frames_until_the_awaited_one() {
    let url = server().await;
    let run_with = |min: Value, max: Value| {
        let url = url.clone();
        async move { run(&url, &scatter_then_reply(min, max), options()).await }
    };
    assert_pass(&run_with(Value::Null, Value::Null).await.cases[0]);
    assert_pass(&run_with(json!(5), json!("2 + 3")).await.cases[0]);
    assert_fail(
        &run_with(Value::Null, json!(4)).await.cases[0],
        3,
        "more than 4 repeated messages arrived on \"main\" before one matching `then`",
    );
    assert_fail(
        &run_with(json!(6), Value::Null).await.cases[0],
        3,
        "a message matching `then` arrived after only 5 of at least 6 repeated messages",
    );
    let neither = steps(json!([
        { "step": "open" },
        echo(1, json!("odd")),
        { "step": "expect_repeated", "match": { "method": "item" }, "then": { "id": 2 } }
    ]));
    assert_fail(
        &run(&url, &neither, options()).await.cases[0],
        3,
        "after 0 repeated messages, one matches neither the repeated pattern nor `then`",
    );
}

#[tokio::test]
async fn a_case_may_have_no_profile_and_no_requirements() {
    let url = server().await;
    let text = json!({ "cases": [{ "id": "plain", "title": "no profile", "steps": [
        { "step": "open" },
        echo(1, json!("plain")),
        { "step": "expect", "match": { "id": 1, "result": "plain" } }
    ] }] });
    let suites = vec![parse_suite("plain.json".as_ref(), &text.to_string(), None).unwrap()];
    let mut requested = options();
    requested.filter.profiles = vec!["core".into()];
    let report = run(&url, &suites, requested).await;
    assert_pass(&report.cases[0]);
    assert!(report.cases[0].requirements.is_empty());
}

fn refused(open: Value) -> Vec<Suite> {
    steps(json!([open, { "step": "open", "conn": "after" }]))
}

#[tokio::test]
async fn a_refused_handshake_of_each_kind_can_be_the_expected_outcome() {
    let url = server().await;
    let pass = [
        json!({ "step": "open", "subprotocols": ["other.v9"], "expect_refusal": { "no_subprotocol": true } }),
        json!({ "step": "open", "path": "/closing", "expect_refusal": { "closed": true } }),
        json!({ "step": "open", "path": "/closing", "expect_refusal": { "close_code": 4001 } }),
        json!({ "step": "open", "path": "/refuse", "expect_refusal": { "status": 403 } }),
    ];
    for open in pass {
        let report = run(&url, &refused(open.clone()), options()).await;
        assert_eq!(
            report.cases[0].status,
            Status::Pass,
            "{open}: {}",
            explain(&report.cases[0])
        );
    }
    let fail = [
        (
            json!({ "step": "open", "subprotocols": ["jsonrpc.v2"], "expect_refusal": { "no_subprotocol": true } }),
            "expected an upgrade without any of the offered subprotocols, but the server accepted the handshake with subprotocol \"jsonrpc.v2\"",
        ),
        (
            json!({ "step": "open", "path": "/closing", "expect_refusal": { "close_code": 4002 } }),
            "expected an upgrade followed by a close with code 4002; the connection closed with code 4001",
        ),
        (
            json!({ "step": "open", "expect_refusal": { "closed": true }, "timeout_ms": 200 }),
            "expected an upgrade followed by a close, but the connection was still open after 200 ms",
        ),
        (
            json!({ "step": "open", "path": "/refuse", "expect_refusal": { "closed": true } }),
            "expected an upgrade followed by a close, got HTTP 403",
        ),
    ];
    for (open, wanted) in fail {
        let report = run(&url, &refused(open), options()).await;
        assert_fail(&report.cases[0], 1, wanted);
    }
}

#[test]
fn a_refusal_of_two_kinds_is_refused_at_load() {
    let text = json!({ "cases": [{ "id": "c", "title": "t", "steps": [
        { "step": "open", "expect_refusal": { "status": 401, "closed": true } } ] }] });
    let err = parse_suite("bad.json".as_ref(), &text.to_string(), None).unwrap_err();
    assert!(
        err.to_string()
            .contains("at /cases/0/steps/0/expect_refusal: expect one kind of refusal"),
        "{err}"
    );
}

fn ticks(order: [u64; 3], ordered_by: Option<&str>) -> Vec<Suite> {
    let mut expect = json!({ "step": "expect_all", "match": order.map(|n|
        json!({ "method": "tick", "params": { "subscription": "${sub}", "n": n } })) });
    if let Some(pointer) = ordered_by {
        expect["ordered_by"] = json!(pointer);
    }
    steps(json!([
        { "step": "open" },
        { "step": "send", "json": { "jsonrpc": "2.0", "id": 1, "method": "subscribe" } },
        { "step": "expect", "match": { "id": 1, "result": { "subscription": { "$capture": "sub" } } } },
        expect
    ]))
}

#[tokio::test]
async fn ordered_by_holds_the_frames_of_one_key_to_the_listed_order() {
    let url = server().await;
    let ordered = Some("/params/subscription");
    assert_pass(&run(&url, &ticks([1, 2, 3], ordered), options()).await.cases[0]);
    // Without ordered_by, any order of distinct patterns is fine.
    assert_pass(&run(&url, &ticks([3, 1, 2], None), options()).await.cases[0]);
    assert_fail(
        &run(&url, &ticks([3, 1, 2], ordered), options()).await.cases[0],
        4,
        "message 1 of 3 on \"main\" matches none of the patterns still expected",
    );
}
