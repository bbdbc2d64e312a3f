//! The `tidewire-conform` binary's integration tests, in one binary so that
//! the package and its dependencies are linked once rather than once per
//! test file.

mod anywhere;
mod authz;
mod cli;
mod cli_features;
mod common;
mod coverage;
mod faults;
mod hardening;
mod html;
mod prop;
mod variant;
