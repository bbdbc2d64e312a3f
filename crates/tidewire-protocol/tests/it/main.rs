//! The integration tests of the protocol crate, in one binary so that the
//! crate and its dependencies are linked once, not once per test file.

mod asyncapi;
mod decode_schema;
mod schemas;
mod spec;
mod wire_format;
