//! The runner's side: suite-file loading (with `file:line:column` for every
//! problem) and the pattern language that received frames are matched with.
//!
//! These use the engine crate's public API (`parse_suite`, `locate`,
//! `pattern`), kept apart from the server-side checks.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arbitrary::Unstructured;
use serde_json::{Map, Value};
use ws_conformance::locate::{locate, Position};
use ws_conformance::pattern::{self, Captures};
use ws_conformance::{parse_suite, unique_keys, LoadError, SchemaSet};

use crate::gen;

/// The protocol's schema set, given to every parse so that a suite naming
/// other `schemas` never makes the loader read files during fuzzing.
fn schema_set() -> Arc<SchemaSet> {
    static SET: OnceLock<Arc<SchemaSet>> = OnceLock::new();
    SET.get_or_init(|| {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../spec/schema/schema-set.json");
        Arc::new(SchemaSet::load(&path).expect("spec/schema/schema-set.json loads"))
    })
    .clone()
}

fn position_in(text: &str, position: Position) -> bool {
    let Some(line) = text.split('\n').nth(position.line.wrapping_sub(1)) else {
        return false;
    };
    (1..=line.chars().count() + 1).contains(&position.column)
}

/// Fuzz target `suite`: the bytes are a suite file. Loading must not panic,
/// and every error must point into the text it came from.
pub fn check_suite(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    match parse_suite(Path::new("fuzz.json"), text, Some(schema_set())) {
        Ok(suite) => {
            for case in &suite.cases {
                assert!(
                    position_in(text, case.position),
                    "case at {}",
                    case.position
                );
                assert_eq!(case.step_positions.len(), case.case.steps.len());
                for position in &case.step_positions {
                    assert!(position_in(text, *position), "step at {position}");
                }
            }
        }
        Err(LoadError::Syntax { line, column, .. }) => {
            // serde_json reports the position after the last byte it read.
            let lines = text.split('\n').count();
            assert!(
                (1..=lines).contains(&line),
                "syntax error on line {line} of {lines}"
            );
            assert!(column <= text.len() + 1, "syntax error at column {column}");
        }
        Err(LoadError::Invalid { problems, .. }) => {
            assert!(!problems.is_empty(), "an invalid suite names its problems");
            for problem in problems {
                assert!(
                    position_in(text, problem.position),
                    "{} at {} is outside the text",
                    problem.pointer,
                    problem.position
                );
            }
        }
        Err(LoadError::DuplicateId { .. }) => {}
        Err(other) => panic!("parsing text from memory failed with {other}"),
    }
    check_locate(text);
}

/// `locate` must place every pointer of a parsed document on the first
/// character of the value it names.
fn check_locate(text: &str) {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return;
    };
    // With a key twice in one object the parsed value holds the last one and
    // `locate` finds the first; the loader refuses such a text before it
    // locates anything (`unique_keys`).
    if unique_keys::check(text).is_err() {
        return;
    }
    let mut pointers = Vec::new();
    collect_pointers(&value, String::new(), &mut pointers, 64);
    let lines: Vec<Vec<char>> = text.split('\n').map(|l| l.chars().collect()).collect();
    for (pointer, target) in pointers {
        let position = locate(text, &pointer);
        let found = lines
            .get(position.line.wrapping_sub(1))
            .and_then(|line| line.get(position.column.wrapping_sub(1)));
        match &target {
            // A number's text need not be its shortest form (`1e2`, `100.0`).
            Value::Number(_) => assert!(
                found.is_some_and(|c| *c == '-' || c.is_ascii_digit()),
                "pointer {pointer:?} located at {position}, on {found:?}"
            ),
            _ => {
                let first = target.to_string().chars().next();
                assert_eq!(
                    found.copied(),
                    first,
                    "pointer {pointer:?} located at {position}"
                );
            }
        }
    }
}

fn collect_pointers(value: &Value, at: String, out: &mut Vec<(String, Value)>, budget: usize) {
    if out.len() >= budget {
        return;
    }
    out.push((at.clone(), value.clone()));
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_pointers(item, format!("{at}/{i}"), out, budget);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let token = key.replace('~', "~0").replace('/', "~1");
                collect_pointers(item, format!("{at}/{token}"), out, budget);
            }
        }
        _ => {}
    }
}

/// An unknown matcher, so that refusals are exercised beside the engine's own.
const UNKNOWN_DIRECTIVE: &str = "$nope";

/// Fuzz target `pattern`: patterns and frames shaped from the bytes.
pub fn check_pattern(bytes: &[u8]) {
    let mut u = Unstructured::new(bytes);
    let Ok(actual) = gen::value(&mut u, gen::MAX_VALUE_DEPTH) else {
        return;
    };
    // A frame matches its own escaped copy, its `$literal`, and a captured
    // copy of itself interpolated into a pattern.
    let own = escape(&actual);
    assert_eq!(pattern::validate(&own), Vec::new(), "escaped {actual}");
    assert!(
        pattern::matches(&own, &actual).is_match(),
        "{own} against {actual}"
    );
    let literal = serde_json::json!({ "$literal": actual });
    assert!(pattern::matches(&literal, &actual).is_match(), "{literal}");
    assert!(pattern::json_eq(&actual, &actual));
    let vars = Captures::from([("v".to_string(), actual.clone())]);
    let interpolated = pattern::interpolate(&Value::String("${v}".into()), &vars, true)
        .expect("a captured variable interpolates");
    assert!(
        pattern::matches(&interpolated, &actual).is_match(),
        "${{v}} = {actual} became {interpolated}"
    );

    let Ok(shaped) = shaped_pattern(&mut u, 3) else {
        return;
    };
    if pattern::validate(&shaped).is_empty() {
        let outcome = pattern::matches(&shaped, &actual);
        if !outcome.is_match() {
            assert!(
                outcome.captures.is_empty(),
                "a failed match captures nothing"
            );
        }
        let _ = pattern::project(&shaped, &actual);
        let _ = pattern::interpolate(&shaped, &outcome.captures, true);
    }
}

/// `value` as a pattern that means exactly "this value, partially for objects":
/// keys that start with `$` are written `$$`.
fn escape(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(escape).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = if k.starts_with('$') {
                        format!("${k}")
                    } else {
                        k.clone()
                    };
                    (key, escape(v))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn shaped_pattern(u: &mut Unstructured, depth: u32) -> arbitrary::Result<Value> {
    if depth == 0 || u.ratio(1, 3)? {
        return gen::value(u, 1);
    }
    if u.ratio(1, 4)? {
        return Ok(Value::Array(
            (0..u.int_in_range(0..=3)?)
                .map(|_| shaped_pattern(u, depth - 1))
                .collect::<arbitrary::Result<_>>()?,
        ));
    }
    let mut map = Map::new();
    for _ in 0..u.int_in_range(0..=3)? {
        if u.ratio(1, 2)? {
            map.insert(
                u.choose(gen::WORDS)?.to_string(),
                shaped_pattern(u, depth - 1)?,
            );
            continue;
        }
        let directive = if u.ratio(1, pattern::DIRECTIVES.len() + 1)? {
            UNKNOWN_DIRECTIVE
        } else {
            *u.choose(pattern::DIRECTIVES)?
        };
        let argument = match directive {
            "$type" => Value::String(
                u.choose(&[
                    "string", "number", "integer", "boolean", "null", "object", "array", "int",
                ])?
                .to_string(),
            ),
            "$any" | "$absent" | "$exact" => Value::Bool(u.arbitrary()?),
            "$regex" => Value::String(
                u.choose(&["^a", "a|b", "(", "[a-", "^$", ".*", "\\d+", "${v}"])?
                    .to_string(),
            ),
            "$gte" | "$gt" | "$lte" | "$lt" => Value::Number(gen::number(u)?),
            "$contains" => Value::Array(
                (0..u.int_in_range(0..=2)?)
                    .map(|_| shaped_pattern(u, depth - 1))
                    .collect::<arbitrary::Result<_>>()?,
            ),
            "$length" => Value::from(u.int_in_range(0u8..=4)?),
            "$capture" => Value::String(u.choose(&["v", "w", "", "a$b"])?.to_string()),
            _ => shaped_pattern(u, depth - 1)?,
        };
        map.insert(directive.to_string(), argument);
    }
    Ok(Value::Object(map))
}

/// The case the engine runs against a peer that answers with fuzzed frames:
/// every kind of waiting step, each reading whatever arrives.
const ENGINE_SUITE: &str = r#"{
  "description": "arbitrary server frames",
  "cases": [{
    "id": "fuzz.engine.frames",
    "title": "the engine survives any frames a server sends",
    "profile": "core",
    "requirements": ["TW-CORE-10"],
    "steps": [
      {"step": "open", "subprotocols": ["tidewire.v1"], "ignore": [{"type": "heartbeat"}]},
      {"step": "expect", "match": {"type": "welcome", "limits": {"max_message_bytes": {"$capture": "max"}}}},
      {"step": "send", "json": {"type": "ping", "id": "p1"}},
      {"step": "expect_all", "match": [{"type": "pong", "id": "p1"}, {"type": {"$type": "string"}, "$capture": "any"}]},
      {"step": "expect", "match": {"$literal": "${any}"}},
      {"step": "expect_silence", "for_ms": 1},
      {"step": "expect_close", "code": 1000, "within_ms": 100}
    ]
  }]
}"#;

/// Bounds of one engine run: the steps wait at most this long, and the
/// engine holds at most this much of what the peer sends.
const ENGINE_STEP_TIMEOUT: Duration = Duration::from_millis(100);
const ENGINE_CASE_TIMEOUT: Duration = Duration::from_secs(2);
const ENGINE_MAX_FRAME: usize = 4096;
const ENGINE_MAX_BUFFERED: usize = 64;

/// Fuzz target `engine_frames`: the bytes are what a server sends after
/// accepting the upgrade. The runner must finish the case within its
/// deadline and report it, whatever arrives.
pub fn check_engine_frames(bytes: &[u8]) {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime builds");
    }
    let suite = {
        static SUITE: OnceLock<ws_conformance::Suite> = OnceLock::new();
        SUITE
            .get_or_init(|| {
                parse_suite(Path::new("engine.json"), ENGINE_SUITE, Some(schema_set()))
                    .expect("the engine suite loads")
            })
            .clone()
    };
    let frames = bytes.to_vec();
    RUNTIME.with(|runtime| {
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a loopback port");
            let url = format!("ws://{}/v1", listener.local_addr().expect("bound"));
            let peer = tokio::spawn(fake_server(listener, frames));
            let mut options = ws_conformance::RunOptions {
                step_timeout: ENGINE_STEP_TIMEOUT,
                case_timeout: ENGINE_CASE_TIMEOUT,
                max_frame: ENGINE_MAX_FRAME,
                max_buffered: ENGINE_MAX_BUFFERED,
                ..Default::default()
            };
            options.filter.profiles = vec!["core".into()];
            let started = Instant::now();
            let report = ws_conformance::Runner::new(options)
                .run(&url, &[suite])
                .await
                .expect("a run against a listening peer starts");
            let took = started.elapsed();
            assert_eq!(report.cases.len(), 1, "one case, one report");
            assert!(
                took <= ENGINE_CASE_TIMEOUT + Duration::from_secs(1),
                "the case took {took:?}"
            );
            peer.abort();
        })
    });
}

/// Accepts connections (the runner may probe before it opens the case's
/// connection), completes each upgrade, writes `frames` and closes; every
/// wait is bounded.
async fn fake_server(listener: tokio::net::TcpListener, frames: Vec<u8>) {
    let frames = Arc::new(frames);
    let accept = async {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_frames(stream, frames.clone()));
        }
    };
    let _ = tokio::time::timeout(ENGINE_CASE_TIMEOUT, accept).await;
}

async fn serve_frames(mut stream: tokio::net::TcpStream, frames: Arc<Vec<u8>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let serve = async {
        let mut head = Vec::new();
        let mut chunk = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&head);
        let key = text.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_string())
        })?;
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\nsec-websocket-protocol: tidewire.v1\r\n\r\n"
        );
        stream.write_all(response.as_bytes()).await.ok()?;
        stream.write_all(&frames).await.ok()?;
        stream.shutdown().await.ok()?;
        while stream.read(&mut chunk).await.ok()? > 0 {}
        Some(())
    };
    let _ = tokio::time::timeout(ENGINE_CASE_TIMEOUT, serve).await;
}
