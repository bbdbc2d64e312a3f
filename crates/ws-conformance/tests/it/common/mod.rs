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

/// An error and its causes, outermost first, joined with ": ".
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(source) = cause {
        text.push_str(": ");
        text.push_str(&source.to_string());
        cause = source.source();
    }
    text
}
