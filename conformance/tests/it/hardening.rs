//! The runner against hostile servers (floods, terminal escapes, a server
//! that dies mid-run) and the CLI's hygiene: broken pipes, exit codes that
//! agree between `list` and `run`, reports checked before the run, colors,
//! retries and partitions.

use crate::common::{self, bin, fixture, stderr, stdout, temp_dir};
use futures_util::{SinkExt, StreamExt};
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// The Tidewire suites of the repository.
fn tidewire_suite(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
        .display()
        .to_string()
}

/// A welcome the schema set accepts, so that cases get as far as the flood.
const WELCOME: &str = r#"{"type":"welcome","connection_id":"c1","protocol":"tidewire.v1","server":{"name":"hostile","version":"0.0.1"},"profiles":["core"],"heartbeat_ms":60000,"limits":{"max_message_bytes":1048576,"max_nesting_depth":32,"max_subscriptions":100,"rate":{"messages":100,"window_ms":1000},"outbound_queue":1024},"auth":{"mode":"optional"}}"#;

/// Completes a handshake like a Tidewire server: selects `tidewire.v1`
/// when the client offers it.
async fn accept(tcp: TcpStream) -> Option<tokio_tungstenite::WebSocketStream<TcpStream>> {
    use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
    // tungstenite's callback type fixes the error type.
    #[allow(clippy::result_large_err)]
    fn select(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
        let offered = request
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|p| p.trim() == "tidewire.v1"));
        if offered {
            response
                .headers_mut()
                .insert("sec-websocket-protocol", "tidewire.v1".parse().unwrap());
        }
        Ok(response)
    }
    tokio_tungstenite::accept_hdr_async(tcp, select).await.ok()
}

/// Accepts WebSocket connections; each gets the welcome, then `after`.
fn hostile<F, Fut>(after: F) -> (SocketAddr, tokio::runtime::Runtime)
where
    F: Fn(
            futures_util::stream::SplitSink<tokio_tungstenite::WebSocketStream<TcpStream>, Message>,
        ) -> Fut
        + Send
        + Sync
        + Clone
        + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    common::in_background(move || async move {
        common::spawn(move |tcp| {
            let after = after.clone();
            async move {
                let Some(ws) = accept(tcp).await else {
                    return;
                };
                let (mut sink, mut stream) = ws.split();
                if sink.send(Message::text(WELCOME)).await.is_err() {
                    return;
                }
                // Read (and drop) what the client sends, so its sends go through.
                tokio::spawn(async move { while stream.next().await.is_some() {} });
                after(sink).await;
            }
        })
        .await
    })
}

/// A welcome, then 1 MiB frames as fast as the client takes them.
fn big_frame_flood() -> (SocketAddr, tokio::runtime::Runtime) {
    hostile(|mut sink| async move {
        let frame = format!(r#"{{"type":"pad","pad":"{}"}}"#, "x".repeat(1024 * 1024));
        while sink.send(Message::text(frame.clone())).await.is_ok() {}
    })
}

/// A welcome, then small frames as fast as the client takes them.
fn small_frame_flood() -> (SocketAddr, tokio::runtime::Runtime) {
    hostile(|mut sink| async move {
        let mut n = 0u64;
        loop {
            n += 1;
            let frame = format!(r#"{{"type":"event","n":{n}}}"#);
            if sink.send(Message::text(frame)).await.is_err() {
                return;
            }
        }
    })
}

/// Runs the binary with stdout to a file and returns its exit code, stdout,
/// and its peak resident set size in bytes (Linux's VmHWM, read until it
/// exits).
fn run_measured(args: &[&str], dir: &Path) -> (Option<i32>, String, u64) {
    let out_path = dir.join("stdout.txt");
    let mut child = bin()
        .args(args)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let started = Instant::now();
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            if let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb * 1024);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        // Generous: other tests share the machine's cores.
        if started.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("the run did not end within 300 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code(),
        std::fs::read_to_string(out_path).unwrap(),
        peak,
    )
}

const MIB: u64 = 1024 * 1024;

fn assert_flood_is_bounded(name: &str, addr: SocketAddr) {
    let dir = temp_dir(name);
    let json = dir.join("report.json");
    let (code, text, peak) = run_measured(
        &[
            "run",
            &format!("ws://{addr}/v1"),
            "-s",
            &tidewire_suite("core.json"),
            "-p",
            "core",
            "--timeout",
            "1000",
            "--json",
            json.to_str().unwrap(),
        ],
        &dir,
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("flood: the server sent"), "{text}");
    let size = std::fs::metadata(&json).unwrap().len();
    eprintln!(
        "{name}: peak RSS {} MiB, JSON report {} KiB",
        peak / MIB,
        size / 1024
    );
    #[cfg(target_os = "linux")]
    assert!(peak > 0 && peak < 256 * MIB, "peak RSS {peak} bytes");
    assert!(size < 10 * MIB, "JSON report of {size} bytes");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_flood_of_big_frames_is_bounded_in_memory_and_report() {
    let (addr, _rt) = big_frame_flood();
    assert_flood_is_bounded("big-flood", addr);
}

#[test]
fn a_flood_of_small_frames_is_bounded_in_memory_and_report() {
    let (addr, _rt) = small_frame_flood();
    assert_flood_is_bounded("small-flood", addr);
}

#[test]
fn terminal_escapes_from_the_server_do_not_reach_the_terminal() {
    let (addr, _rt) = hostile(|mut sink| async move {
        let nasty = "\u{1b}]0;owned\u{7}\u{1b}[2J\u{1b}[31mred\u{0}\u{9b}1m";
        let _ = sink.send(Message::text(nasty)).await;
        let _ = sink
            .send(Message::text(format!(r#"{{"type":"{nasty}"}}"#)))
            .await;
        std::future::pending::<()>().await;
    });
    let sgr = regex::Regex::new(r"\x1b\[[0-9;]*m").unwrap();
    for color in ["never", "always"] {
        let out = bin()
            .args([
                "run",
                &format!("ws://{addr}/v1"),
                "-s",
                &tidewire_suite("core.json"),
                "-p",
                "core",
                "-c",
                "core.ping.*",
                "--timeout",
                "300",
                "--color",
                color,
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        let text = stdout(&out);
        let without_sgr = sgr.replace_all(&text, "");
        let raw: Vec<char> = without_sgr
            .chars()
            .filter(|c| c.is_control() && *c != '\n')
            .collect();
        assert_eq!(raw, Vec::<char>::new(), "--color {color}:\n{text}");
        if color == "never" {
            assert!(!text.contains('\u{1b}'), "{text}");
        }
        assert!(text.contains(r"\u{1b}]0;owned\u{7}"), "{text}");
    }
}

#[test]
fn a_server_that_dies_mid_run_aborts_the_run_with_one_message() {
    let accepted = Arc::new(AtomicUsize::new(0));
    let (addr, rt) = {
        let accepted = accepted.clone();
        common::in_background(move || async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                // Answers five handshakes, then closes its port for good.
                while let Ok((tcp, _)) = listener.accept().await {
                    if let Some(ws) = accept(tcp).await {
                        let (mut sink, _stream) = ws.split();
                        let _ = sink.send(Message::text(WELCOME)).await;
                        if accepted.fetch_add(1, Ordering::SeqCst) + 1 >= 5 {
                            return;
                        }
                    }
                }
            });
            addr
        })
    };
    let out = bin()
        .args([
            "run",
            &format!("ws://{addr}/v1"),
            "-s",
            &tidewire_suite("core.json"),
            "-p",
            "core",
            "-j",
            "1",
            "--timeout",
            "300",
        ])
        .output()
        .unwrap();
    drop(rt);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let aborted: Vec<&str> = text.lines().filter(|l| l.starts_with("aborted:")).collect();
    assert_eq!(aborted.len(), 1, "{text}");
    assert!(aborted[0].contains("stopped answering"), "{text}");
    let refused_blocks = text.matches("Connection refused").count();
    assert!(
        refused_blocks <= 3 * 2,
        "{refused_blocks} refusals shown:\n{text}"
    );
    assert!(text.contains("not run: ws://"), "{text}");
}

#[test]
fn a_closed_pipe_ends_the_run_quietly() {
    let (addr, _rt) = common::in_background(common::jsonrpc);
    let mut child = bin()
        .args([
            "run",
            &format!("ws://{addr}/"),
            "-s",
            &fixture("jsonrpc"),
            "-j",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout_pipe = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    stdout_pipe.read_exact(&mut first).unwrap();
    // `| head -c 16`: the reader goes away.
    drop(stdout_pipe);
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err, "");
    assert_eq!(status.code(), Some(141));
}

#[test]
fn list_and_run_agree_that_selecting_nothing_is_an_error() {
    let list = bin()
        .args(["list", "-s", &fixture("jsonrpc"), "-c", "nomatch*"])
        .output()
        .unwrap();
    let run = bin()
        .args([
            "run",
            "ws://127.0.0.1:9/",
            "-s",
            &fixture("jsonrpc"),
            "-c",
            "nomatch*",
        ])
        .output()
        .unwrap();
    assert_eq!(list.status.code(), Some(2));
    assert_eq!(run.status.code(), Some(2));
    assert_eq!(stderr(&list), stderr(&run));
    assert!(
        stderr(&list).starts_with("error: no cases selected"),
        "{}",
        stderr(&list)
    );
}

fn listed_ids(extra: &[&str]) -> Vec<String> {
    let out = bin()
        .args(["list", "--format", "json", "-s", &tidewire_suite("")])
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        listing["selected"].as_u64().unwrap() as usize,
        listing["cases"].as_array().unwrap().len()
    );
    listing["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn partitions_cover_every_case_exactly_once() {
    let all = listed_ids(&[]);
    assert!(all.len() > 200, "{}", all.len());
    let mut seen: Vec<String> = Vec::new();
    for shard in 1..=3 {
        let part = listed_ids(&["--partition", &format!("{shard}/3")]);
        assert!(part.len() >= all.len() / 3, "shard {shard}: {}", part.len());
        seen.extend(part);
    }
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    let mut sorted_all = all.clone();
    sorted_all.sort();
    assert_eq!(sorted_seen, sorted_all, "every case once, none twice");
    let bad = bin()
        .args(["list", "-s", &tidewire_suite(""), "--partition", "4/3"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn report_paths_that_cannot_be_written_fail_before_the_run() {
    let (addr, _rt) = common::in_background(common::jsonrpc);
    for flag in ["--json", "--junit", "--html"] {
        let out = bin()
            .args([
                "run",
                &format!("ws://{addr}/"),
                "-s",
                &fixture("jsonrpc"),
                flag,
                "/nonexistent-dir/report",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag}");
        assert_eq!(stdout(&out), "", "{flag}: nothing ran");
        assert!(
            stderr(&out).starts_with("error: cannot write /nonexistent-dir/report"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn colors_follow_the_environment_conventions() {
    let (addr, _rt) = common::in_background(common::jsonrpc);
    let colored = |env: &[(&str, &str)]| {
        let mut cmd: Command = bin();
        cmd.args([
            "run",
            &format!("ws://{addr}/"),
            "-s",
            &fixture("jsonrpc/01-requests.json"),
            "-c",
            "rpc.echo.exact",
        ]);
        cmd.env_remove("CLICOLOR_FORCE").env_remove("TERM");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out).contains('\u{1b}')
    };
    assert!(!colored(&[]), "not a terminal");
    assert!(colored(&[("CLICOLOR_FORCE", "1")]));
    assert!(!colored(&[("CLICOLOR_FORCE", "0")]));
    assert!(!colored(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]));
    // An empty NO_COLOR does not count.
    assert!(colored(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "")]));
}

/// A suite of one case that passes only from the second connection on.
fn flaky_suite(dir: &Path) -> PathBuf {
    let path = dir.join("flaky.json");
    std::fs::write(
        &path,
        r#"{"cases": [{"id": "flaky.second-time", "title": "passes the second time",
            "requirements": ["RPC-1"], "profile": "core",
            "steps": [{"step": "open"}, {"step": "expect", "match": {"n": {"$gte": 2}}}]}]}"#,
    )
    .unwrap();
    path
}

#[test]
fn a_case_that_passes_on_retry_is_flaky() {
    let count = Arc::new(AtomicUsize::new(0));
    let (addr, _rt) = {
        let count = count.clone();
        common::in_background(move || async move {
            common::spawn(move |tcp| {
                let count = count.clone();
                async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    let n = count.fetch_add(1, Ordering::SeqCst) % 2 + 1;
                    let _ = ws.send(Message::text(format!(r#"{{"n":{n}}}"#))).await;
                    while ws.next().await.is_some() {}
                }
            })
            .await
        })
    };
    let dir = temp_dir("flaky");
    let suite = flaky_suite(&dir);
    let junit = dir.join("junit.xml");
    let run = |extra: &[&str]| {
        count.store(0, Ordering::SeqCst);
        bin()
            .args([
                "run",
                &format!("ws://{addr}/"),
                "-s",
                suite.to_str().unwrap(),
                "--junit",
                junit.to_str().unwrap(),
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let out = run(&["--retries", "1"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FLAKY ["), "{text}");
    assert!(text.contains("(2 attempts)"), "{text}");
    assert!(
        text.ends_with("Summary: 0 passed, 0 failed, 1 flaky, 0 warned, 0 skipped\n"),
        "{text}"
    );
    assert!(std::fs::read_to_string(&junit)
        .unwrap()
        .contains("<flakyFailure"));
    let out = run(&["--retries", "1", "--allow-flaky"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let _ = std::fs::remove_dir_all(&dir);
}
