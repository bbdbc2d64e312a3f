//! The `tidewire-conform` binary's integration tests, in one binary so that
//! the package and its dependencies are linked once rather than once per
//! test file.

mod cli;
mod cli_features;
mod common;
mod coverage;
mod faults;
mod prop;
