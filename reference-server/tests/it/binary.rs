//! The `tidewire-server` program: the first stdout line is the address, and
//! flags and environment variables reach the configuration.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::common::{body, http_get, Client};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the program and returns it with the URL from its first stdout line.
fn spawn(args: &[&str], env: &[(&str, &str)]) -> (Running, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidewire-server"));
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("the program starts");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(crate::common::WAIT)
        .expect("a first line within the timeout");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (running, url)
}

#[tokio::test]
async fn prints_the_bound_address_and_serves() {
    let (_running, url) = spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--path",
            "/tw",
            "--max-subscriptions",
            "7",
        ],
        &[("TIDEWIRE_HEARTBEAT_MS", "1234")],
    );
    assert!(
        url.starts_with("ws://127.0.0.1:") && url.ends_with("/tw"),
        "{url}"
    );
    let mut client = Client::connect(&url).await;
    assert_eq!(client.welcome["heartbeat_ms"], 1234);
    assert_eq!(client.welcome["limits"]["max_subscriptions"], 7);
    client.assert_alive().await;
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches("/tw")
        .parse()
        .unwrap();
    let (status, response) = http_get(addr, "/healthz", &[]).await;
    assert_eq!((status, body(&response)), (200, "ok"));
}

#[tokio::test]
async fn the_variant_sets_the_defaults_and_flags_still_win() {
    let usual = tidewire_server::Config::default();
    let (_running, url) = spawn(
        &["--listen", "127.0.0.1:0", "--max-subscriptions", "7"],
        &[("TIDEWIRE_VARIANT", "alternate")],
    );
    let client = Client::connect(&url).await;
    let welcome = &client.welcome;
    assert!(
        welcome.get(tidewire_server::EXTRA_MEMBER).is_some(),
        "{welcome}"
    );
    assert_eq!(welcome["limits"]["max_subscriptions"], 7);
    let depth = welcome["limits"]["max_nesting_depth"].as_u64().unwrap();
    assert!(depth > u64::from(usual.max_nesting_depth), "{welcome}");
}

#[test]
fn help_documents_every_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_tidewire-server"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--listen",
        "--path",
        "--heartbeat-ms",
        "--auth",
        "--auth-timeout-ms",
        "--tokens-file",
        "--jwt-secret",
        "--anonymous-scopes",
        "--rate-messages",
        "--rate-window-ms",
        "--max-connections",
        "--max-subscriptions",
        "--max-message-bytes",
        "--max-nesting-depth",
        "--allowed-origins",
        "--outbound-queue",
        "--journal-retention",
        "--room-history",
        "--variant",
        "TIDEWIRE_LISTEN",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}
