//! What the engine's tests share: test servers, the example suites'
//! directory, and helpers for judging reports.

pub mod raw;
mod servers;
pub mod verdicts;

pub use servers::{jsonrpc, jsonrpc_with, spawn, Identity};

use std::path::{Path, PathBuf};

/// The example suites (JSON-RPC 2.0 and others) and their schema sets.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}
