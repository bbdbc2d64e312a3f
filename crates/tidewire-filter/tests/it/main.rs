//! The integration tests of the filter crate, in one binary so that the
//! crate and its dependencies are linked once, not once per test file.

mod errors;
mod laws;
mod table;
