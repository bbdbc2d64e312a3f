//! Server configuration. Every field has a default that lets a client connect
//! at once (auth off, generous limits); the binary maps each flag onto a field.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tidewire_protocol::{AuthMode, ConnectRate, ErrorBody, RateLimit, ServerMessage};

use crate::auth::StaticToken;
use crate::hooks::{AfterFn, BeforeFn, Hooks, OperationContext, OutboundFilter, RecordVisibility};
use crate::variant::Variant;

/// Switches that make the server deliberately misbehave, for testing clients
/// and conformance suites against a broken server. The named catalogue in
/// `faults.rs` (`InjectedFault`) sets these or installs an outbound filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Never send `heartbeat`.
    pub skip_heartbeats: bool,
    /// Process every message regardless of the rate limit (still announced in `welcome`).
    pub ignore_rate_limit: bool,
    /// Write `created` replies without their required `record`.
    pub omit_required_field: bool,
    /// Give watch and topic subscriptions no filter or pipeline, whatever they asked for.
    pub leak_across_filter: bool,
    /// Allow every request, whatever the connection's scopes.
    pub leak_across_scope: bool,
    /// Apply an `edit` naming a stale version to the current document.
    pub accept_stale_edit: bool,
    /// Leave the rooms of a dropped connection untouched: no presence, still a member.
    pub keep_dropped_member: bool,
    pub push_without_time: bool,
    pub ignore_token_name: bool,
    pub accept_oversized_member_info: bool,
    pub ignore_connect_rate: bool,
    pub ignore_room_post_rate: bool,
    pub unprefixed_extension_codes: bool,
    /// Count records hidden from the principal in `records.total`.
    pub count_hidden_records: bool,
    /// Deliver changes of records hidden from the watch's principal.
    pub leak_hidden_change: bool,
    /// Deliver nothing for an update that hides a record from the watch's principal.
    pub hide_without_delete: bool,
    /// Deliver an update that reveals a record as an update, not as an insert.
    pub reveal_as_update: bool,
    /// Return a record hidden from the principal to `read` by `record_id`.
    pub read_hidden_by_id: bool,
}

/// Records to load into a collection when the server starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Seed {
    pub database: String,
    pub collection: String,
    pub records: Vec<Map<String, Value>>,
}

/// Everything the server can be told. Build with `Config::default()` and set fields.
#[derive(Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (see `ServerHandle::local_addr`).
    pub listen: SocketAddr,
    /// Path of the WebSocket endpoint.
    pub path: String,
    /// Idle time after which a `heartbeat` is sent.
    pub heartbeat_interval: Duration,
    pub auth_mode: AuthMode,
    /// In `required` mode, how long a connection may stay unauthenticated.
    pub auth_timeout: Duration,
    /// Static tokens: token -> principal and scopes.
    pub tokens: HashMap<String, StaticToken>,
    /// Secret for HS256 JWTs; `None` accepts no JWTs.
    pub jwt_secret: Option<Vec<u8>>,
    /// Scopes of unauthenticated connections in `optional` mode.
    pub anonymous_scopes: Vec<String>,
    /// How long before a token's expiry the `token_expiring` notice is sent.
    pub token_expiry_notice: Duration,
    /// Client message rate limit; `None` applies none.
    pub rate_limit: Option<RateLimit>,
    /// Open connections beyond this are closed with 1013.
    pub max_connections: usize,
    /// Live watch and topic subscriptions per connection.
    pub max_subscriptions: u32,
    /// Largest client frame; larger closes with 1009.
    pub max_message_bytes: usize,
    /// Deepest JSON nesting accepted in a client message.
    pub max_nesting_depth: u32,
    /// Allowed `Origin` values; empty allows every origin. Requests without an
    /// `Origin` header (non-browser clients) are always allowed.
    pub allowed_origins: Vec<String>,
    /// Server messages that may wait for one connection before it is a slow consumer.
    pub outbound_queue: usize,
    /// Bytes of message text that may wait for one connection before it is a slow consumer.
    pub outbound_queue_bytes: usize,
    /// Change events kept for resuming.
    pub journal_retention: usize,
    /// Change events older than this are dropped from the journal; `None`
    /// keeps them until `journal_retention` drops them.
    pub journal_max_age: Option<Duration>,
    /// Where records, the journal (with its epoch) and room history are kept
    /// across restarts; `None` keeps everything in memory, with a new epoch per start.
    pub data_dir: Option<PathBuf>,
    /// Messages kept per room for `history`.
    pub room_history: usize,
    /// How long a closing connection may take to flush its last messages and
    /// close frame before the socket is dropped.
    pub close_grace: Duration,
    /// How long a client may take to send its HTTP request head.
    pub handshake_timeout: Duration,
    /// Collections loaded at start, committed like `create`s.
    pub seed: Vec<Seed>,
    pub faults: Faults,
    /// Which side of the specification's freedoms the server takes.
    pub variant: Variant,
    pub hooks: Vec<Arc<dyn Hooks>>,
    pub outbound_filter: Option<Arc<dyn OutboundFilter>>,
    /// Handshakes accepted from one client address per window (section 13.6); `None`: no limit.
    pub connect_rate: Option<ConnectRate>,
    /// Posts accepted in one room per window (section 13.7); `None`: no limit.
    pub room_post_rate: Option<RateLimit>,
    /// Which records each principal may see (section 8.3); `None`: every record.
    pub record_visibility: Option<Arc<dyn RecordVisibility>>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            path: "/v1".into(),
            heartbeat_interval: Duration::from_secs(15),
            auth_mode: AuthMode::Off,
            auth_timeout: Duration::from_secs(10),
            tokens: HashMap::new(),
            jwt_secret: None,
            anonymous_scopes: vec!["*".into()],
            token_expiry_notice: Duration::from_secs(30),
            rate_limit: Some(RateLimit {
                messages: 100,
                window_ms: 1000,
            }),
            max_connections: 1024,
            max_subscriptions: 100,
            max_message_bytes: 1 << 20,
            max_nesting_depth: 32,
            allowed_origins: Vec::new(),
            outbound_queue: 1024,
            outbound_queue_bytes: 8 << 20,
            journal_retention: 10_000,
            journal_max_age: None,
            data_dir: None,
            room_history: 1000,
            close_grace: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            seed: Vec::new(),
            faults: Faults::default(),
            variant: Variant::Usual,
            hooks: Vec::new(),
            outbound_filter: None,
            connect_rate: None,
            room_post_rate: None,
            record_visibility: None,
        }
    }
}

impl Config {
    /// The defaults of `variant`. The alternate server announces the widest
    /// limits and keeps the most, where the specification leaves the amount
    /// to the server (sections 5.1, 11.4, 19): a suite has to read them from
    /// `welcome` rather than assume the usual ones.
    pub fn for_variant(variant: Variant) -> Config {
        let usual = Config::default();
        match variant {
            Variant::Usual => usual,
            Variant::Alternate => Config {
                variant,
                heartbeat_interval: Duration::from_secs(30),
                auth_timeout: Duration::from_secs(30),
                token_expiry_notice: Duration::from_secs(60),
                rate_limit: Some(RateLimit {
                    messages: 1000,
                    window_ms: 1000,
                }),
                max_connections: 4096,
                max_subscriptions: 1000,
                max_message_bytes: 8 << 20,
                max_nesting_depth: 64,
                outbound_queue: 8192,
                journal_retention: 100_000,
                room_history: 5000,
                ..usual
            },
        }
    }

    /// Adds a hook object (see [`Hooks`]).
    pub fn with_hooks(mut self, hooks: impl Hooks) -> Config {
        self.hooks.push(Arc::new(hooks));
        self
    }

    /// Adds a closure run before every request; `Err` rejects the request with that error.
    pub fn before_operation<F>(self, hook: F) -> Config
    where
        F: Fn(&OperationContext<'_>) -> Result<(), ErrorBody> + Send + Sync + 'static,
    {
        self.with_hooks(BeforeFn(hook))
    }

    /// Adds a closure run after every request with its reply.
    pub fn after_operation<F>(self, hook: F) -> Config
    where
        F: Fn(&OperationContext<'_>, &ServerMessage) + Send + Sync + 'static,
    {
        self.with_hooks(AfterFn(hook))
    }

    /// Narrows reads and watches to the records `visibility` lets each
    /// principal see (replacing any previous rule).
    pub fn with_record_visibility(mut self, visibility: impl RecordVisibility) -> Config {
        self.record_visibility = Some(Arc::new(visibility));
        self
    }

    /// Installs the outbound filter (replacing any previous one).
    pub fn with_outbound_filter(mut self, filter: impl OutboundFilter) -> Config {
        self.outbound_filter = Some(Arc::new(filter));
        self
    }

    /// Adds records to load into `database.collection` at start.
    pub fn with_seed(
        mut self,
        database: impl Into<String>,
        collection: impl Into<String>,
        records: Vec<Map<String, Value>>,
    ) -> Config {
        self.seed.push(Seed {
            database: database.into(),
            collection: collection.into(),
            records,
        });
        self
    }

    /// Parses a tokens file: a JSON object mapping each token to
    /// `{"principal": "...", "scopes": ["..."]}`.
    pub fn parse_tokens(json: &str) -> Result<HashMap<String, StaticToken>, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// Reads and parses a tokens file (see [`Config::parse_tokens`]).
    pub fn load_tokens_file(path: &Path) -> Result<HashMap<String, StaticToken>, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse_tokens(&text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |why: &str| Err(ConfigError::Invalid(why.to_string()));
        if !self.path.starts_with('/') {
            return invalid("path must start with `/`");
        }
        if self.heartbeat_interval.is_zero() {
            return invalid("heartbeat interval must be positive");
        }
        if self.outbound_queue == 0 || self.outbound_queue_bytes == 0 {
            return invalid("outbound queue must hold at least one message");
        }
        if self.max_message_bytes == 0 || self.max_nesting_depth == 0 {
            return invalid("message size and nesting limits must be positive");
        }
        if self.max_nesting_depth as usize > tidewire_protocol::MAX_PARSER_NESTING_DEPTH {
            return invalid(&format!(
                "nesting limit must be at most {} (the deepest JSON the decoder parses)",
                tidewire_protocol::MAX_PARSER_NESTING_DEPTH
            ));
        }
        if let Some(rate) = self.rate_limit {
            if rate.messages == 0 || rate.window_ms == 0 {
                return invalid("rate limit needs a positive message count and window");
            }
        }
        if let Some(rate) = self.connect_rate {
            if rate.attempts == 0 || rate.window_ms == 0 {
                return invalid("connection rate needs a positive attempt count and window");
            }
        }
        if let Some(rate) = self.room_post_rate {
            if rate.messages == 0 || rate.window_ms == 0 {
                return invalid("room post rate needs a positive post count and window");
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("path", &self.path)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("auth_mode", &self.auth_mode)
            .field("auth_timeout", &self.auth_timeout)
            .field("tokens", &self.tokens.len())
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "<set>"))
            .field("anonymous_scopes", &self.anonymous_scopes)
            .field("token_expiry_notice", &self.token_expiry_notice)
            .field("rate_limit", &self.rate_limit)
            .field("connect_rate", &self.connect_rate)
            .field("room_post_rate", &self.room_post_rate)
            .field("max_connections", &self.max_connections)
            .field("max_subscriptions", &self.max_subscriptions)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_nesting_depth", &self.max_nesting_depth)
            .field("allowed_origins", &self.allowed_origins)
            .field("outbound_queue", &self.outbound_queue)
            .field("outbound_queue_bytes", &self.outbound_queue_bytes)
            .field("journal_retention", &self.journal_retention)
            .field("journal_max_age", &self.journal_max_age)
            .field("data_dir", &self.data_dir)
            .field("room_history", &self.room_history)
            .field("close_grace", &self.close_grace)
            .field("seed", &self.seed.len())
            .field("faults", &self.faults)
            .field("variant", &self.variant)
            .field("hooks", &self.hooks.len())
            .field("outbound_filter", &self.outbound_filter.is_some())
            .finish()
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot parse {path}: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nesting_limit_beyond_the_decoder_is_refused() {
        let deepest = tidewire_protocol::MAX_PARSER_NESTING_DEPTH as u32;
        let at_limit = Config {
            max_nesting_depth: deepest,
            ..Config::default()
        };
        at_limit.validate().unwrap();
        let beyond = Config {
            max_nesting_depth: deepest + 1,
            ..Config::default()
        };
        let err = beyond.validate().unwrap_err();
        assert!(err.to_string().contains("at most 127"), "{err}");
    }
}
