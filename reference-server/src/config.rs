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
use crate::endpoints::BoundEndpoint;
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
    /// Refuse integer members written with a fraction or an exponent (`10.0`, `1E1`, `-0`).
    pub strict_integers: bool,
    /// Refuse `null` for the optional members that are not plain options (`sort`, `set`, ...).
    pub null_not_absent: bool,
    /// Read `read.limit` and `read.offset` past the integer bound as the bound.
    pub unbounded_integers: bool,
    /// Apply an `edit` with no operations as one that inserts nothing.
    pub empty_edit_applied: bool,
    /// Refuse requests carrying extension (`x-`) members.
    pub refuse_extension_members: bool,
    /// Answer a `permessage-deflate` offer with a parameter it did not offer.
    pub unoffered_deflate_parameter: bool,
    /// Score `cosine` searches by the dot product.
    pub cosine_as_dot: bool,
    /// Rank every record with a vector, whatever the search's filter.
    pub search_ignores_filter: bool,
    /// Answer a search whose `k` is out of range instead of refusing it.
    pub search_accepts_any_k: bool,
    /// Pass over vectors of another dimension instead of refusing the search.
    pub search_skips_other_dimensions: bool,
    /// Leave the nearest record out of every search's results.
    pub search_misses_nearest: bool,
    /// Accept watch filters on paths no change event has.
    pub accept_unmatchable_paths: bool,
    /// On a bound endpoint, accept names other than the bound ones.
    pub bound_names_unchecked: bool,
    /// On a bound endpoint, refuse requests that omit the bound names.
    pub bound_names_required: bool,
    /// On the main endpoint, read an omitted database or collection as `default`.
    pub unbound_names_defaulted: bool,
    /// Report no change that moves a record out of a `view` watch's selection.
    pub view_drops_leaves: bool,
    /// Keep every subscription and room membership across re-authentication,
    /// whatever the new scopes allow, and say nothing.
    pub end_silently_on_narrowing: bool,
    /// Send `ended` but keep the stream: pushes go on and `unsubscribe` succeeds.
    pub ended_keeps_subscription: bool,
    /// Close for shutdown, expiry or a slow consumer without the `ended` pushes.
    pub end_silently_on_close: bool,
    /// End what narrower scopes no longer allow without the `ended` pushes.
    pub ends_without_telling: bool,
    /// Treat every write as new, whatever its idempotency key.
    pub ignore_idempotency_keys: bool,
    /// Write change events without `origin`.
    pub omit_origin: bool,
    /// Apply a write whose key was used for another request as a new write.
    pub accept_reused_keys: bool,
    /// Close auth timeouts, refused origins and rate abuse with the one code 1008.
    pub shared_policy_close: bool,
    /// Leave `retry_after_ms` out of the rate-abuse close reason.
    pub close_without_delay: bool,
    /// Drop TCP without a close frame after a frame that breaks RFC 6455.
    pub drop_on_protocol_error: bool,
    /// Drop the socket on a client's close frame instead of answering it.
    pub no_close_reply: bool,
    /// Send no liveness pings and never close a silent peer.
    pub never_ping: bool,
    /// Send every message whole, whatever `max_message_bytes` the client stated.
    pub ignore_client_max: bool,
    /// In `required` mode, leave `auth` out of the served profiles.
    pub required_without_auth: bool,
    /// Leave the scopes and expiry out of `welcome.auth`.
    pub bare_welcome_auth: bool,
    /// Send no `token_expiring` notice.
    pub silent_expiry: bool,
    /// Count only data frames, not Pongs, as signs of life.
    pub deaf_to_pongs: bool,
    /// Ignore malformed session parameters instead of refusing the handshake.
    pub lax_session_params: bool,
    /// List every stated feature in `welcome.session.features`.
    pub session_echoes_all_features: bool,
    /// Send every message in parts to a client that stated `max_message_bytes`.
    pub parts_always: bool,
    /// Leave `welcome.features` out.
    pub no_features: bool,
    /// Leave `welcome.auth.expiry_notice_ms` out.
    pub unannounced_notice_lead: bool,
    /// Answer `read` with the position of the commit before the one it reflects.
    pub read_position_behind: bool,
    /// Honour positions of any epoch as if they were of the current one.
    pub ignore_position_epoch: bool,
    /// Send heartbeats without `progress`.
    pub no_heartbeat_progress: bool,
    /// Replay topic publications from the one at the position given, not after it.
    pub topic_replay_from_position: bool,
    /// Honour topic positions whose following publications are no longer kept.
    pub topic_recover_beyond_retention: bool,
    /// Start every stream in the same fixed epoch, with ids that repeat across runs.
    pub fixed_epoch: bool,
    /// Page room history from a position onwards including the message at it.
    pub history_after_inclusive: bool,
    /// Answer `document` with the position of the version before.
    pub document_position_behind: bool,
    /// Accept `watch` with both `resume_after` and `start_after`, using the token.
    pub both_resume_forms: bool,
    /// Announce one more entry of each stream's retention than is kept.
    pub retention_overstated: bool,
    /// Replay room messages from the one at the position given, not after it.
    pub room_replay_from_position: bool,
    /// Honour room positions of any epoch, head or age, replaying what is kept.
    pub room_accepts_any_position: bool,
    /// Say `has_more` false on every forward history page.
    pub forward_history_never_has_more: bool,
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
    /// Treat every `post` as new, whatever its idempotency key.
    pub ignore_post_keys: bool,
    /// Treat every `edit` as new, whatever its idempotency key.
    pub ignore_edit_keys: bool,
    /// Clamp `search` vector components beyond the bound instead of refusing them.
    pub clamp_vector_components: bool,
    /// Close a binary frame with 1007 instead of 1003.
    pub binary_closes_invalid_payload: bool,
    /// Decode frames one level deeper than `max_nesting_depth`.
    pub nesting_one_deeper: bool,
    /// Grant one subscription more than `max_subscriptions`.
    pub subscription_cap_one_over: bool,
    /// Close for rate abuse only beyond three times the rate, not twice.
    pub abuse_at_three_times: bool,
    /// Count only watches in `stats.server.subscriptions`, not topic subscriptions.
    pub stats_forget_topic_subscriptions: bool,
    /// Answer re-authentication with the new scopes but keep acting with the old ones.
    pub reauth_keeps_scopes: bool,
    /// Leave the first replayed change out of a resumed watch.
    pub resume_skips_first: bool,
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
    /// Time without a frame from the client after which a WebSocket Ping is sent.
    pub ping_interval: Duration,
    /// Time after a Ping within which some frame must arrive, or the
    /// connection is closed with 4006.
    pub ping_timeout: Duration,
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
    /// How long a write's idempotency key is remembered (`welcome.idempotency_window_ms`).
    pub idempotency_window: Duration,
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
    /// Serve the `vector` profile (similarity search).
    pub vector: bool,
    /// Further WebSocket endpoints, each binding a database or a collection.
    pub bound_endpoints: Vec<BoundEndpoint>,
    /// Publications kept per topic for resuming subscriptions.
    pub topic_history: usize,
    /// Which records each principal may see (section 8.5); `None`: every record.
    pub record_visibility: Option<Arc<dyn RecordVisibility>>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            path: "/v1".into(),
            heartbeat_interval: Duration::from_secs(15),
            ping_interval: Duration::from_secs(20),
            ping_timeout: Duration::from_secs(10),
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
            idempotency_window: Duration::from_secs(600),
            close_grace: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            seed: Vec::new(),
            faults: Faults::default(),
            variant: Variant::Usual,
            hooks: Vec::new(),
            outbound_filter: None,
            connect_rate: None,
            room_post_rate: None,
            vector: true,
            bound_endpoints: Vec::new(),
            topic_history: 1000,
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
                idempotency_window: Duration::from_secs(90),
                topic_history: 5000,
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
        // The welcome announces whole milliseconds, and its schema refuses 0.
        if self.heartbeat_interval < Duration::from_millis(1) {
            return invalid("heartbeat interval must be at least 1 ms");
        }
        if self.auth_timeout < Duration::from_millis(1) {
            return invalid("auth timeout must be at least 1 ms");
        }
        if self.max_subscriptions == 0 {
            return invalid("a connection must be allowed at least one subscription");
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
        for endpoint in &self.bound_endpoints {
            if let Err(why) = endpoint.validate() {
                return invalid(&why);
            }
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
            .field("idempotency_window", &self.idempotency_window)
            .field("close_grace", &self.close_grace)
            .field("seed", &self.seed.len())
            .field("faults", &self.faults)
            .field("variant", &self.variant)
            .field("hooks", &self.hooks.len())
            .field("outbound_filter", &self.outbound_filter.is_some())
            .field("vector", &self.vector)
            .field("bound_endpoints", &self.bound_endpoints)
            .field("topic_history", &self.topic_history)
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
    fn no_announced_bound_is_zero() {
        let zero_subscriptions = Config {
            max_subscriptions: 0,
            ..Config::default()
        };
        assert!(zero_subscriptions.validate().is_err());
        let sub_millisecond = Config {
            heartbeat_interval: Duration::from_micros(500),
            ..Config::default()
        };
        assert!(sub_millisecond.validate().is_err());
        let instant_auth = Config {
            auth_timeout: Duration::ZERO,
            ..Config::default()
        };
        assert!(instant_auth.validate().is_err());
    }

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
