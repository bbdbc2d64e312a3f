//! The Tidewire v1 reference server: every profile (core, auth, records,
//! watch, resume, topics, rooms, collab, limits, stats), in memory or durable
//! in a data directory ([`Config::data_dir`]).
//!
//! Run it as the `tidewire-server` binary, or embed it in tests:
//!
//! ```no_run
//! use tidewire_server::{Config, Server};
//!
//! # async fn demo() -> Result<(), tidewire_server::ServerError> {
//! let server = Server::start(Config::default()).await?;
//! println!("connect to {}", server.ws_url());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Seams for tests of clients and conformance suites: [`Hooks`] run before and
//! after every request and can reject it; an [`OutboundFilter`] sees every
//! server message before it is written and can drop, duplicate, delay, reorder
//! or alter it; [`Faults`] switch off heartbeats or the rate limit; and
//! [`InjectedFault`] names a catalogue of faults built on these seams.

mod auth;
mod config;
mod connection;
mod fanout;
mod faults;
mod hooks;
mod http;
mod outbound;
mod persist;
mod profiles;
mod ratelimit;
mod rooms;
mod server;
mod session;
mod state;
mod store;
mod topics;
mod util;
mod variant;

pub use auth::{encode_hs256, StaticToken, ANONYMOUS};
pub use config::{Config, ConfigError, Faults, Seed};
pub use faults::{InjectedFault, UnknownFault};
pub use hooks::{Hooks, OperationContext, OutboundFilter, Outgoing};
pub use persist::StorageError;
pub use server::{Server, ServerError, ServerHandle};
pub use tidewire_protocol::{AuthMode, RateLimit};
pub use variant::{UnknownVariant, Variant, EXTRA_MEMBER};
