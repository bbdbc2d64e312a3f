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
mod clock;
mod config;
mod connection;
mod endpoints;
mod ends;
mod fanout;
mod faults;
mod hooks;
mod http;
mod idempotency;
mod offload;
mod outbound;
mod persist;
mod profiles;
mod quota;
mod ratelimit;
mod rooms;
mod server;
mod session;
pub mod similarity;
mod state;
mod store;
mod topics;
mod util;
mod variant;

pub use auth::{encode_hs256, StaticToken, ANONYMOUS};
pub use config::{Config, ConfigError, Faults, Seed};
pub use endpoints::BoundEndpoint;
pub use faults::{InjectedFault, UnknownFault};
pub use hooks::{Hooks, OperationContext, OutboundFilter, Outgoing, RecordVisibility};
pub use persist::StorageError;
pub use server::{Server, ServerError, ServerHandle};
pub use tidewire_protocol::{AuthMode, ConnectRate, RateLimit};
pub use variant::{UnknownVariant, Variant, EXTENSION_MEMBER, EXTRA_MEMBER};

/// Entry points for the fuzz targets in `fuzz/` and their regression replay
/// (`crates/tidewire-fuzz-checks`): the parsers that read a peer's bytes
/// before any session exists. Not part of the server's API.
#[doc(hidden)]
pub mod fuzzing {
    use std::collections::HashMap;
    use std::time::{Duration, SystemTime};

    /// Request heads larger than this are refused with 431.
    pub const MAX_HEAD_BYTES: usize = crate::http::MAX_HEAD_BYTES;

    /// A request head as the listener parsed it, with what the listener derives from it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ParsedHead {
        pub method: String,
        pub path: String,
        pub query: Option<String>,
        /// Lower-cased names, values as read (lossy UTF-8).
        pub headers: Vec<(String, String)>,
        /// Bytes that followed the head (the start of the WebSocket stream).
        pub rest: Vec<u8>,
        pub is_upgrade: bool,
        pub token: Option<String>,
        /// `Ok((accept key, subprotocol))` or `Err(status line)` of the upgrade check.
        pub upgrade: Result<(String, Option<&'static str>), &'static str>,
    }

    /// Why no head was read, as the listener tells it apart.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum HeadRefusal {
        TooLarge,
        Malformed,
        Closed,
        TimedOut,
    }

    /// Runs the listener's head reader over `bytes` as if they were all the
    /// client ever sent before closing its side.
    pub fn read_request_head(bytes: &[u8]) -> Result<ParsedHead, HeadRefusal> {
        thread_local! {
            static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a current-thread runtime builds");
        }
        let mut stream = bytes;
        let read = RUNTIME.with(|runtime| {
            runtime.block_on(crate::http::read_head(&mut stream, Duration::from_secs(5)))
        });
        let (head, rest) = read.map_err(|err| match err {
            crate::http::HeadError::TooLarge => HeadRefusal::TooLarge,
            crate::http::HeadError::Malformed => HeadRefusal::Malformed,
            crate::http::HeadError::Closed => HeadRefusal::Closed,
            crate::http::HeadError::TimedOut => HeadRefusal::TimedOut,
        })?;
        let upgrade = crate::http::check_upgrade(&head)
            .map(|upgrade| (upgrade.accept_key, upgrade.subprotocol))
            .map_err(|refusal| refusal.status);
        Ok(ParsedHead {
            is_upgrade: head.is_upgrade(),
            token: head.token(),
            upgrade,
            method: head.method,
            path: head.path,
            query: head.query,
            headers: head.headers,
            rest,
        })
    }

    /// What the authenticator granted a token.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Granted {
        pub principal: String,
        pub scopes: Vec<String>,
        pub expires_at: Option<SystemTime>,
    }

    /// Verifies `token` as the listener and the `auth` request do.
    pub fn verify_token(
        static_tokens: &HashMap<String, crate::StaticToken>,
        jwt_secret: Option<&[u8]>,
        token: &str,
    ) -> Result<Granted, String> {
        let authenticator = crate::auth::Authenticator {
            tokens: static_tokens.clone(),
            jwt_secret: jwt_secret.map(<[u8]>::to_vec),
        };
        authenticator
            .verify(token)
            .map(|identity| Granted {
                principal: identity.principal,
                scopes: identity.scopes.raw,
                expires_at: identity.expires_at,
            })
            .map_err(|err| err.0)
    }

    /// The scope glob matcher (`*` matches any run of characters).
    pub fn glob_match(glob: &str, text: &str) -> bool {
        crate::auth::glob_match(glob, text)
    }
}
