//! Misbehaving servers must not hang the runner or exhaust its memory.

use crate::common;

use futures_util::{SinkExt, StreamExt};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use ws_conformance::{parse_suite, CaseReport, RunOptions, Runner, Status};

/// Every case here must end well within this.
const QUICK: Duration = Duration::from_secs(3);

fn options() -> RunOptions {
    RunOptions {
        step_timeout: Duration::from_millis(300),
        case_timeout: Duration::from_secs(2),
        ..RunOptions::default()
    }
}

async fn run_one(addr: std::net::SocketAddr, steps: &str, options: RunOptions) -> CaseReport {
    let text = format!(
        r#"{{"cases": [{{"id": "robust", "title": "robust", "requirements": [], "profile": "p", "steps": {steps}}}]}}"#
    );
    let suite = parse_suite(Path::new("robust.json"), &text, None).expect("valid suite");
    let started = Instant::now();
    let report = Runner::new(options)
        .run(&format!("ws://{addr}/"), &[suite])
        .await
        .expect("setup succeeds");
    assert!(started.elapsed() < QUICK, "took {:?}", started.elapsed());
    report.cases.into_iter().next().expect("one case")
}

fn message(case: &CaseReport) -> &str {
    assert_eq!(case.status, Status::Fail, "{case:?}");
    &case.failure.as_ref().expect("failure").message
}

/// Completes the WebSocket handshake, then hands the socket to `then`.
async fn ws_server<F, Fut>(then: F) -> std::net::SocketAddr
where
    F: Fn(tokio_tungstenite::WebSocketStream<TcpStream>) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    common::spawn(move |tcp| {
        let then = then.clone();
        async move {
            if let Ok(ws) = tokio_tungstenite::accept_async(tcp).await {
                then(ws).await;
            }
        }
    })
    .await
}

#[tokio::test]
async fn server_that_never_completes_the_handshake() {
    let addr = common::spawn(|tcp| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(tcp);
    })
    .await;
    let case = run_one(addr, r#"[{"step": "open"}]"#, options()).await;
    assert!(
        message(&case).contains("did not complete within 300 ms"),
        "{}",
        message(&case)
    );
}

#[tokio::test]
async fn server_that_never_answers() {
    let addr = ws_server(|mut ws| async move { while ws.next().await.is_some() {} }).await;
    let case = run_one(
        addr,
        r#"[{"step": "open"}, {"step": "send", "json": {"q": 1}}, {"step": "expect", "match": {"a": 1}}]"#,
        options(),
    )
    .await;
    assert_eq!(
        message(&case),
        "no message arrived on \"main\" within 300 ms"
    );
}

#[tokio::test]
async fn server_that_sends_a_100_mib_frame() {
    let addr = common::spawn(|tcp| async move {
        let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
            return;
        };
        // Write the frame by hand: a 100 MiB text frame header, then the
        // payload in chunks for as long as the client keeps reading. The
        // client must give up after the header instead of buffering it all.
        let mut tcp = ws.into_inner();
        let len: u64 = 100 * 1024 * 1024;
        let mut header = vec![0x81, 127];
        header.extend_from_slice(&len.to_be_bytes());
        if tcp.write_all(&header).await.is_err() {
            return;
        }
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..(len / chunk.len() as u64) {
            if tcp.write_all(&chunk).await.is_err() {
                return;
            }
        }
    })
    .await;
    let case = run_one(
        addr,
        r#"[{"step": "open"}, {"step": "expect", "match": {"a": 1}}]"#,
        options(),
    )
    .await;
    let msg = message(&case);
    assert!(
        msg.contains("over the 16777216-byte limit (--max-frame)"),
        "{msg}"
    );
    let smaller = run_one(
        addr,
        r#"[{"step": "open"}, {"step": "expect_close", "code": 1000}]"#,
        RunOptions {
            max_frame: 1024,
            ..options()
        },
    )
    .await;
    assert!(
        message(&smaller).contains("over the 1024-byte limit"),
        "{}",
        message(&smaller)
    );
}

#[tokio::test]
async fn server_that_floods_frames() {
    let addr = ws_server(|ws| async move {
        let (mut sink, _stream) = ws.split();
        let mut n = 0u64;
        loop {
            n += 1;
            let frame = format!(r#"{{"flood":{n}}}"#);
            if sink.send(Message::text(frame)).await.is_err() {
                return;
            }
        }
    })
    .await;
    let case = run_one(
        addr,
        r#"[{"step": "open"}, {"step": "wait", "ms": 300}, {"step": "expect", "match": {"flood": 1}}, {"step": "expect", "match": {"never": true}}]"#,
        RunOptions {
            max_buffered: 500,
            ..options()
        },
    )
    .await;
    let msg = message(&case);
    assert_eq!(case.failure.as_ref().unwrap().step, Some(4), "{msg}");
    assert!(msg.contains("the message did not match"), "{msg}");

    // Frames left unread pile up only to the bound, then the case fails.
    let case = run_one(
        addr,
        r#"[{"step": "open"}, {"step": "ignore", "match": [{"flood": {"$type": "integer"}}]}, {"step": "wait", "ms": 300}, {"step": "expect", "match": {"never": true}}]"#,
        RunOptions {
            max_buffered: 500,
            ..options()
        },
    )
    .await;
    let msg = message(&case);
    assert!(
        msg.contains("more than 500 frames that the case did not consume"),
        "{msg}"
    );
    let received = case.transcript.iter().filter(|e| e.kind == "text").count();
    assert!(received <= 500, "{received} frames buffered");
}

#[tokio::test]
async fn server_that_never_closes() {
    let addr = ws_server(|mut ws| async move { while ws.next().await.is_some() {} }).await;
    let case = run_one(
        addr,
        r#"[{"step": "open"}, {"step": "expect_close", "code": 1000, "within_ms": 200}]"#,
        options(),
    )
    .await;
    assert_eq!(
        message(&case),
        "expected the server to close with code 1000 within 200 ms, but \"main\" is still open"
    );
    // Nor does a client-initiated close wait forever for the server's reply.
    let silent = ws_server(|ws| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(ws);
    })
    .await;
    let case = run_one(
        silent,
        r#"[{"step": "open"}, {"step": "close", "within_ms": 200}]"#,
        options(),
    )
    .await;
    assert_eq!(case.status, Status::Pass);
    assert!(case
        .transcript
        .iter()
        .any(|e| e.text.as_deref() == Some("no closing handshake from the server within 200 ms")));
}

#[tokio::test]
async fn server_that_stops_reading_cannot_block_sends() {
    let addr = ws_server(|ws| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(ws);
    })
    .await;
    let case = run_one(
        addr,
        r#"[{"step": "open"}, {"step": "send", "sized": {"bytes": 8000000}}, {"step": "send", "sized": {"bytes": 8000000}}, {"step": "send", "sized": {"bytes": 8000000}}]"#,
        options(),
    )
    .await;
    assert!(
        message(&case).contains("the server is not reading"),
        "{}",
        message(&case)
    );
}

#[tokio::test]
async fn case_deadline_bounds_a_slow_case() {
    let addr = ws_server(|mut ws| async move { while ws.next().await.is_some() {} }).await;
    let case = run_one(
        addr,
        r#"[{"step": "open"}, {"step": "expect_silence", "for_ms": 60000}]"#,
        RunOptions {
            case_timeout: Duration::from_millis(400),
            ..options()
        },
    )
    .await;
    assert!(
        message(&case).contains("deadline of 400 ms"),
        "{}",
        message(&case)
    );
    assert_eq!(case.failure.as_ref().unwrap().step, Some(2));
}

#[tokio::test]
async fn unreachable_endpoint_is_a_setup_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let suite = parse_suite(
        Path::new("x.json"),
        r#"{"cases": [{"id": "x", "title": "x", "requirements": [], "profile": "p", "steps": [{"step": "open"}]}]}"#,
        None,
    )
    .unwrap();
    let err = Runner::new(options())
        .run(&format!("ws://127.0.0.1:{port}/"), &[suite])
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot reach ws://127.0.0.1:{port}/")),
        "{err}"
    );
}
