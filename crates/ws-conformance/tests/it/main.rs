//! The engine's integration tests, in one binary so that the crate and its
//! dependencies are linked once rather than once per test file.

mod boundary;
mod common;
mod features;
mod fixture_schema;
mod jsonrpc;
mod render;
mod reports;
mod robustness;
mod schema_set;
mod steps;
mod tls;
