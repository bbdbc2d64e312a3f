//! A conformance runner for WebSocket endpoints that speak JSON.
//!
//! The engine knows no protocol: cases come from declarative suite files
//! ([`fixture`]) and message schemas from a schema set ([`SchemaSet`]). It
//! depends on no protocol's crate (`tests/it/boundary.rs` keeps it so).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ws_conformance::{load_suites, RunOptions, Runner};
//! let suites = load_suites(&["conformance/suites".into()], None)?;
//! let report = Runner::new(RunOptions::default())
//!     .run("ws://127.0.0.1:9000/ws", &suites)
//!     .await?;
//! println!("{}", report.summary);
//! # Ok(()) }
//! ```

mod conn;
mod engine;
pub mod expr;
pub mod extensions;
pub mod fixture;
pub mod html;
mod junit;
pub mod locate;
pub mod pattern;
pub mod render;
pub mod report;
pub mod runner;
pub mod schema_set;
pub mod target;
pub mod tls;
pub mod unique_keys;

pub use fixture::{
    fixture_schema, fixture_schema_text, load_suites, parse_suite, LoadError, Suite,
};
pub use report::RequirementsError;
pub use report::{Baseline, BaselineError, CaseReport, Report, Status, Summary, Verdict};
pub use runner::{
    Auth, BufferBudget, Filter, FirstFrameError, FreshVars, Observer, Partition, Plan, RunOptions,
    Runner, SetupError,
};
pub use schema_set::{ClaimsError, SchemaFileError, SchemaSet, SchemaSetError};
pub use tls::{TlsConfig, TlsError};
