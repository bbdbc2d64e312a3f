//! The reference server's integration tests, one module per area, in one
//! binary so the package links its tests once.

mod auth;
mod binary;
mod common;
mod core;
mod durability;
mod faults;
mod hooks;
mod limits;
mod positions;
mod records;
mod rooms;
mod session;
mod topics;
mod variant;
mod watch;
