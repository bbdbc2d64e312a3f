//! The invariants that the fuzz targets in `fuzz/` check, one function per
//! target, each taking the fuzzer's raw bytes and panicking when an invariant
//! breaks. They live here, in the main workspace, so that `cargo test` replays
//! every reproducer under `fuzz/regressions/<target>/` and the checked-in seed
//! corpus under `fuzz/corpus/<target>/` on every run.

pub mod auth;
pub mod client;
pub mod filter;
pub mod gen;
pub mod http;
pub mod runner;

/// A target's check: panics when an invariant breaks for these bytes.
pub type Check = fn(&[u8]);

/// Every fuzz target by name, with its check. The replay test and the
/// `fuzz/` targets use the same names.
pub const TARGETS: &[(&str, Check)] = &[
    ("client_frame", client::check_client_frame),
    ("client_message", client::check_client_message),
    ("ws_frames", client::check_ws_frames),
    ("filter", filter::check_filter),
    ("filter_json", filter::check_filter_json),
    ("http_head", http::check_http_head),
    ("auth_token", auth::check_token),
    ("suite", runner::check_suite),
    ("pattern", runner::check_pattern),
    ("engine_frames", runner::check_engine_frames),
];
