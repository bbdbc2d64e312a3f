//! What the CLI tests share: the engine's JSON-RPC test server and example
//! suites, and driving the `tidewire-conform` binary.

// The same server the engine's own tests use: one JSON-RPC implementation.
#[path = "../../../crates/ws-conformance/tests/it/common/servers.rs"]
mod servers;

pub use servers::{jsonrpc, jsonrpc_with, Identity};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The engine's example suites (JSON-RPC 2.0 and others).
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/ws-conformance/tests/fixtures")
}

/// Runs `start` on a runtime owned by a background thread, for tests that
/// drive the CLI binary synchronously. The runtime lives while the returned
/// guard does.
pub fn in_background<F, Fut>(start: F) -> (SocketAddr, tokio::runtime::Runtime)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = SocketAddr>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let addr = rt.block_on(start());
    (addr, rt)
}

pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidewire-conform"));
    cmd.env_remove("CONFORM_TOKEN").env_remove("NO_COLOR");
    cmd
}

pub fn fixture(rel: &str) -> String {
    fixtures().join(rel).display().to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Snapshot settings that hide what varies between runs: ports, timings and
/// the checkout path.
pub fn stable() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex::escape(&fixture("")), "[fixtures]/");
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[port]");
    settings.add_filter(r"\[ *\d+\.\d{3}s\]", "[  [time]]");
    settings.add_filter(r"(?m)^(      ) *\d+\.\dms ", "${1}[t]ms ");
    settings.add_filter(r"ran in \d+\.\d+s", "ran in [time]");
    settings.add_filter(r"after \d+ ms", "after [n] ms");
    settings
}

/// Per process, and emptied first so that nothing left by an earlier run
/// can pass for this one's output.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tidewire-conform-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
