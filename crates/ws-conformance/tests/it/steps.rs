//! The step kinds that reach below JSON messages: `send` with `text_hex` or
//! `frame`, `pause_reading` / `resume_reading`, `stop_writing`, `close` with
//! `reply_code`, `open` with `join` or `max_message_bytes`, and `http`, each
//! shown to pass where its condition holds and to fail where it does not,
//! against the small servers of `common/`.

use crate::common::raw;
use crate::common::verdicts::{assert_fail, assert_pass, case, run};

use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use ws_conformance::report::Direction;
use ws_conformance::{parse_suite, RunOptions, Suite};

fn options() -> RunOptions {
    RunOptions {
        step_timeout: Duration::from_secs(2),
        case_timeout: Duration::from_secs(20),
        ..RunOptions::default()
    }
}

/// A suite of one case per `(id, steps)`.
fn suite(cases: &[(&str, Value)]) -> Vec<Suite> {
    let cases: Vec<Value> = cases
        .iter()
        .map(|(id, steps)| json!({"id": id, "title": id, "requirements": [], "profile": "p", "steps": steps}))
        .collect();
    let text = json!({ "cases": cases }).to_string();
    vec![parse_suite(Path::new("steps.json"), &text, None).unwrap()]
}

fn load_error(steps: Value) -> String {
    let text = json!({"cases": [{"id": "c", "title": "c", "requirements": [], "profile": "p", "steps": steps}]})
        .to_string();
    match parse_suite(Path::new("bad.json"), &text, None) {
        Ok(_) => panic!("the suite loaded: {steps}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn text_hex_sends_exactly_its_bytes_as_a_text_frame() {
    let url = format!("ws://{}/", raw::utf8_echo().await);
    let suites = suite(&[
        (
            "valid",
            json!([
                {"step": "open"},
                {"step": "send", "text_hex": "68 C3 A9"},
                {"step": "expect", "match": {"$exact": true, "text": "h\u{e9}", "hex": "68c3a9"}}
            ]),
        ),
        (
            "invalid",
            json!([
                {"step": "open"},
                {"step": "send", "text_hex": "7b ff 7d"},
                {"step": "expect_close", "code": 1007, "within_ms": 1000}
            ]),
        ),
        (
            "valid-is-not-closed",
            json!([
                {"step": "open"},
                {"step": "send", "text_hex": "7b 7d"},
                {"step": "expect_close", "code": 1007, "within_ms": 1000}
            ]),
        ),
        (
            "invalid-is-not-echoed",
            json!([
                {"step": "open"},
                {"step": "send", "text_hex": "c3 28"},
                {"step": "expect", "match": {"text": {"$any": true}}}
            ]),
        ),
    ]);
    let report = run(&url, &suites, options()).await;
    assert_pass(case(&report, "valid"));
    assert_pass(case(&report, "invalid"));
    assert_fail(case(&report, "valid-is-not-closed"), 3, "it sent a message");
    assert_fail(
        case(&report, "invalid-is-not-echoed"),
        3,
        "closed with code 1007",
    );
    // The transcript shows what was sent, even when it is not UTF-8.
    let sent: Vec<&str> = case(&report, "invalid")
        .transcript
        .iter()
        .filter(|e| e.kind == "text" && e.dir == Direction::Out)
        .filter_map(|e| e.text.as_deref())
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].contains("not UTF-8") && sent[0].contains("7bff7d"),
        "{sent:?}"
    );
}

#[test]
fn text_hex_is_checked_when_loading() {
    let e = load_error(json!([{"step": "open"}, {"step": "send", "text_hex": "zz"}]));
    assert!(e.contains("/text_hex") && e.contains("invalid hex"), "{e}");
    let e =
        load_error(json!([{"step": "open"}, {"step": "send", "text_hex": "7b7d", "text": "{}"}]));
    assert!(e.contains("got text, text_hex"), "{e}");
}

#[tokio::test]
async fn a_paused_connection_leaves_frames_on_the_socket_until_resumed() {
    let url = format!("ws://{}/", raw::backpressure().await);
    let suites = suite(&[
        (
            "paused",
            json!([
                {"step": "open"},
                {"step": "wait", "ms": 200},
                {"step": "pause_reading"},
                // Received before the pause: still delivered.
                {"step": "expect", "match": {"hello": 1}},
                {"step": "send", "json": {"echo": "a"}},
                {"step": "expect_silence", "for_ms": 300},
                {"step": "resume_reading"},
                {"step": "expect", "match": {"echo": "a"}}
            ]),
        ),
        (
            "not-paused",
            json!([
                {"step": "open"},
                {"step": "expect", "match": {"hello": 1}},
                {"step": "send", "json": {"echo": "a"}},
                {"step": "expect_silence", "for_ms": 300}
            ]),
        ),
        (
            "never-resumed",
            json!([
                {"step": "open"},
                {"step": "expect", "match": {"hello": 1}},
                {"step": "pause_reading"},
                {"step": "send", "json": {"echo": "a"}},
                {"step": "expect", "timeout_ms": 500, "match": {"echo": "a"}}
            ]),
        ),
        (
            "not-open",
            json!([{"step": "pause_reading", "conn": "other"}]),
        ),
    ]);
    let report = run(&url, &suites, options()).await;
    assert_pass(case(&report, "paused"));
    assert_fail(case(&report, "not-paused"), 4, "expected no message");
    assert_fail(case(&report, "never-resumed"), 5, "no message arrived");
    assert_fail(case(&report, "not-open"), 1, "is not open");
}

#[tokio::test]
async fn a_paused_reader_makes_the_server_block_on_writing() {
    let url = format!("ws://{}/", raw::backpressure().await);
    // 400 frames of 64 KiB are far more than loopback socket buffers hold.
    let suites = suite(&[
        (
            "paused",
            json!([
                {"step": "open", "ignore": [{"data": {"$any": true}}]},
                {"step": "expect", "match": {"hello": 1}},
                {"step": "pause_reading"},
                {"step": "send", "json": {"flood": 400}},
                {"step": "wait", "ms": 1500},
                {"step": "resume_reading"},
                {"step": "send", "json": {"report": true}},
                {"step": "expect", "timeout_ms": 5000, "match": {"stalled": true}}
            ]),
        ),
        (
            "reading",
            json!([
                {"step": "open", "ignore": [{"data": {"$any": true}}]},
                {"step": "expect", "match": {"hello": 1}},
                {"step": "send", "json": {"flood": 400}},
                {"step": "wait", "ms": 1500},
                {"step": "send", "json": {"report": true}},
                {"step": "expect", "timeout_ms": 5000, "match": {"stalled": true}}
            ]),
        ),
    ]);
    // The reading case holds all 25 MiB unread while it waits.
    let options = RunOptions {
        max_buffered_bytes: 32 * 1024 * 1024,
        ..options()
    };
    let report = run(&url, &suites, options).await;
    assert_pass(case(&report, "paused"));
    // A client that reads keeps the server's writes flowing.
    assert_fail(
        case(&report, "reading"),
        6,
        "at /stalled: expected true, got false",
    );
}

#[tokio::test]
async fn a_paused_connection_still_ends_at_the_case_deadline() {
    let url = format!("ws://{}/", raw::backpressure().await);
    let mut cases = suite(&[(
        "deadline",
        json!([
            {"step": "open"},
            {"step": "pause_reading"},
            {"step": "send", "json": {"flood": 400}},
            {"step": "expect", "timeout_ms": 60000, "match": {"never": true}}
        ]),
    )]);
    cases[0].cases[0].case.timeout_ms = Some(1000);
    let started = Instant::now();
    let report = run(&url, &cases, options()).await;
    assert_fail(case(&report, "deadline"), 4, "deadline of 1000 ms");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn http_gets_check_status_content_type_and_body() {
    let http = raw::http().await;
    let ws = format!("ws://{}/ws", raw::utf8_echo().await);
    let json_body =
        json!({"service": "raw", "count": {"$gte": 3, "$capture": "count"}, "tags": ["a", "b"]});
    let suites = suite(&[
        (
            "by-path",
            json!([
                {"step": "http", "url": "http://${http}/json", "status": 200,
                 "content_type": "^application/json", "body": json_body},
                {"step": "http", "url": "http://${http}/chunked", "status": 200, "body": {"count": "${count}"}},
                {"step": "http", "url": "http://${http}/until-close", "status": 200, "body": {"service": "raw"}},
                {"step": "http", "url": "http://${http}/keep-alive", "status": 200, "body": {"service": "raw"}},
                {"step": "http", "url": "http://${http}/text", "status": 200, "content_type": "^text/plain", "body": "hello"},
                {"step": "http", "url": "http://${http}/missing", "status": 404},
                {"step": "http", "url": "http://${http}/echo-header", "headers": {"X-Probe": "${count}-x"}, "status": 200, "body": {"probe": "3-x"}}
            ]),
        ),
        (
            "status",
            json!([{"step": "http", "url": "http://${http}/missing", "status": 200}]),
        ),
        (
            "content-type",
            json!([{"step": "http", "url": "http://${http}/text", "status": 200, "content_type": "json"}]),
        ),
        (
            "body",
            json!([{"step": "http", "url": "http://${http}/json", "status": 200, "body": {"count": 4}}]),
        ),
        (
            "too-big",
            json!([{"step": "http", "url": "http://${http}/big", "status": 200, "max_bytes": 100000}]),
        ),
        (
            "silent",
            json!([{"step": "http", "url": "http://${http}/silent", "status": 200, "timeout_ms": 300}]),
        ),
        (
            "https",
            json!([{"step": "http", "url": "https://${http}/json", "status": 200}]),
        ),
    ]);
    let mut opts = options();
    opts.vars.insert("http".into(), http.to_string());
    let report = run(&ws, &suites, opts).await;
    assert_pass(case(&report, "by-path"));
    assert_fail(case(&report, "status"), 1, "expected status 200, got 404");
    assert_fail(
        case(&report, "content-type"),
        1,
        "\"text/plain; charset=utf-8\" does not match /json/",
    );
    assert_fail(case(&report, "body"), 1, "at /count: expected 4, got 3");
    assert_fail(case(&report, "too-big"), 1, "larger than 100000 bytes");
    assert_fail(
        case(&report, "silent"),
        1,
        "no complete response within 300 ms",
    );
    assert_fail(case(&report, "https"), 1, "TLS, which it does not support");
}

#[tokio::test]
async fn an_http_path_is_on_the_run_urls_host() {
    let http = raw::http().await;
    // The run URL's path is replaced, not extended.
    let url = format!("ws://{http}/some/ws");
    let suites = suite(&[
        (
            "json",
            json!([{"step": "http", "path": "/json", "status": 200, "body": {"service": "raw"}}]),
        ),
        (
            "relative",
            json!([{"step": "http", "path": "json", "status": 200}]),
        ),
        (
            "wrong",
            json!([{"step": "http", "path": "/nothing", "status": 200}]),
        ),
    ]);
    let report = run(&url, &suites, options()).await;
    assert_pass(case(&report, "json"));
    assert_pass(case(&report, "relative"));
    assert_fail(case(&report, "wrong"), 1, "expected status 200, got 404");
}

#[test]
fn http_steps_are_checked_when_loading() {
    let e = load_error(json!([{"step": "http", "url": "http://x/", "path": "/a", "status": 200}]));
    assert!(e.contains("`url` or `path`, not both"), "{e}");
    let e = load_error(json!([{"step": "http", "path": "/a", "status": 200, "content_type": "("}]));
    assert!(
        e.contains("/content_type") && e.contains("invalid regex"),
        "{e}"
    );
    let e =
        load_error(json!([{"step": "http", "path": "/a", "status": 200, "body": {"$regx": "a"}}]));
    assert!(e.contains("/body/$regx"), "{e}");
    let e = load_error(json!([{"step": "http", "path": "/a"}]));
    assert!(e.contains("status"), "{e}");
}

#[tokio::test]
async fn raw_frames_go_out_as_described() {
    let url = format!("ws://{}/", raw::utf8_echo().await);
    let suites = suite(&[
        (
            "masked-text",
            json!([
                {"step": "open"},
                {"step": "send", "frame": {"opcode": 1, "payload_hex": "7b 7d"}},
                {"step": "expect", "match": {"$exact": true, "text": "{}", "hex": "7b7d"}}
            ]),
        ),
        // The echo server's library fails these connections, so it drops them.
        (
            "unmasked-text",
            json!([
                {"step": "open"},
                {"step": "send", "frame": {"opcode": 1, "masked": false, "payload_hex": "7b 7d"}},
                {"step": "expect_close", "code": 1006, "within_ms": 1000}
            ]),
        ),
        (
            "rsv1-text",
            json!([
                {"step": "open"},
                {"step": "send", "frame": {"opcode": 1, "rsv1": true, "payload_hex": "7b 7d"}},
                {"step": "expect_close", "code": 1006, "within_ms": 1000}
            ]),
        ),
        (
            "unmasked-is-not-echoed",
            json!([
                {"step": "open"},
                {"step": "send", "frame": {"opcode": 1, "masked": false, "payload_hex": "7b 7d"}},
                {"step": "expect", "match": {"text": "{}"}}
            ]),
        ),
    ]);
    let report = run(&url, &suites, options()).await;
    assert_pass(case(&report, "masked-text"));
    assert_pass(case(&report, "unmasked-text"));
    assert_pass(case(&report, "rsv1-text"));
    assert_fail(case(&report, "unmasked-is-not-echoed"), 3, "1006");
    let events: Vec<&str> = case(&report, "rsv1-text")
        .transcript
        .iter()
        .filter(|e| e.kind == "frame")
        .filter_map(|e| e.text.as_deref())
        .collect();
    assert!(
        events.len() == 1 && events[0].contains("RSV1"),
        "{events:?}"
    );
}

#[test]
fn raw_frames_are_checked_when_loading() {
    let e = load_error(
        json!([{"step": "open"}, {"step": "send", "frame": {"opcode": 1, "payload_hex": "zz"}}]),
    );
    assert!(e.contains("/frame/payload_hex"), "{e}");
    let e = load_error(json!([{"step": "open"}, {"step": "send", "frame": {"opcode": 16}}]));
    assert!(e.contains("opcode"), "{e}");
}

#[tokio::test]
async fn a_close_reply_code_is_checked() {
    let url = format!("ws://{}/", raw::utf8_echo().await);
    let suites = suite(&[
        (
            "echoed",
            json!([{"step": "open"}, {"step": "close", "code": 4001, "reply_code": 4001, "within_ms": 1000}]),
        ),
        (
            "other-code",
            json!([{"step": "open"}, {"step": "close", "code": 4001, "reply_code": 1000, "within_ms": 1000}]),
        ),
    ]);
    let report = run(&url, &suites, options()).await;
    assert_pass(case(&report, "echoed"));
    assert_fail(
        case(&report, "other-code"),
        2,
        "answer the close with code 1000",
    );
}

#[tokio::test]
async fn join_hands_the_joined_pieces_to_expectations() {
    let url = format!("ws://{}/", crate::common::jsonrpc().await);
    let piece = |id: u32, data: &str, last: bool| json!({"step": "send", "json": {"jsonrpc": "2.0", "id": id, "method": "echo", "params": {"data": data, "last": last}}});
    let join = json!({"match": {"result": {"last": {"$type": "boolean"}}}, "data": "/result/data", "last": "/result/last"});
    let suites = suite(&[
        (
            "joined",
            json!([
                {"step": "open", "join": join, "ignore": [{"method": {"$any": true}}]},
                piece(1, "{\"joined\":", false),
                piece(2, "[1,", false),
                piece(3, "2]}", true),
                {"step": "expect", "match": {"$exact": true, "joined": [1, 2]}},
                {"step": "send", "json": {"jsonrpc": "2.0", "id": 4, "method": "echo", "params": "whole"}},
                {"step": "expect", "match": {"id": 4, "result": "whole"}}
            ]),
        ),
        (
            "no-string",
            json!([
                {"step": "open", "join": {"match": {"result": {"last": {"$type": "boolean"}}}, "data": "/result/missing", "last": "/result/last"}, "ignore": [{"method": {"$any": true}}]},
                piece(1, "x", true),
                {"step": "expect", "match": {"id": 1}}
            ]),
        ),
    ]);
    let report = run(&url, &suites, options()).await;
    assert_pass(case(&report, "joined"));
    assert_fail(
        case(&report, "no-string"),
        3,
        "no string at /result/missing",
    );
}

#[tokio::test]
async fn a_connection_that_stops_writing_is_heard_no_more() {
    let url = format!("ws://{}/", crate::common::jsonrpc().await);
    let echo =
        json!({"step": "send", "json": {"jsonrpc": "2.0", "id": 1, "method": "echo", "params": 1}});
    let suites = suite(&[
        (
            "muted",
            json!([
                {"step": "open", "ignore": [{"method": {"$any": true}}]},
                {"step": "stop_writing"},
                echo,
                {"step": "expect_silence", "for_ms": 300, "match": {"id": 1}}
            ]),
        ),
        (
            "heard",
            json!([
                {"step": "open", "ignore": [{"method": {"$any": true}}]},
                echo,
                {"step": "expect_silence", "for_ms": 300, "match": {"id": 1}}
            ]),
        ),
    ]);
    let report = run(&url, &suites, options()).await;
    assert_pass(case(&report, "muted"));
    assert_fail(case(&report, "heard"), 3, "");
}

#[tokio::test]
async fn an_open_step_bounds_the_message_size() {
    let url = format!("ws://{}/", crate::common::jsonrpc().await);
    let long = "y".repeat(200);
    let suites = suite(&[(
        "bounded",
        json!([
            {"step": "open", "max_message_bytes": 100, "ignore": [{"method": {"$any": true}}]},
            {"step": "send", "json": {"jsonrpc": "2.0", "id": 1, "method": "echo", "params": long}},
            {"step": "expect", "match": {"id": 1}}
        ]),
    )]);
    let report = run(&url, &suites, options()).await;
    assert_fail(case(&report, "bounded"), 3, "over the 100-byte limit");
}

#[tokio::test]
async fn ignored_frames_are_counted_per_connection_before_the_reply_is_matched() {
    let url = format!("ws://{}/", crate::common::jsonrpc().await);
    let scatter = |id: u32, count: u32| json!({"step": "send", "json": {"jsonrpc": "2.0", "id": id, "method": "scatter", "params": {"count": count}}});
    let items_ignored = json!({"step": "open", "ignore": [{"method": "item"}]});
    let suites = suite(&[
        (
            "counted",
            json!([
                items_ignored,
                scatter(1, 4),
                {"step": "expect", "match": {"id": 1, "result": {"sent": {"$eq": "${ignored.main}"}}}},
                scatter(2, 2),
                {"step": "expect", "match": {"id": 2, "result": {"sent": {"$eq": "${ignored.main} - 4"}}}}
            ]),
        ),
        (
            "reset-by-reopening",
            json!([
                items_ignored,
                scatter(1, 3),
                {"step": "expect", "match": {"id": 1}},
                {"step": "reconnect"},
                scatter(2, 2),
                {"step": "expect", "match": {"id": 2, "result": {"sent": {"$eq": "${ignored.main}"}}}}
            ]),
        ),
        (
            "miscounted",
            json!([
                items_ignored,
                scatter(1, 4),
                {"step": "expect", "match": {"id": 1, "result": {"sent": {"$eq": "${ignored.main} + 1"}}}}
            ]),
        ),
    ]);
    let report = run(&url, &suites, options()).await;
    assert_pass(case(&report, "counted"));
    assert_pass(case(&report, "reset-by-reopening"));
    assert_fail(case(&report, "miscounted"), 3, "sent");
}
