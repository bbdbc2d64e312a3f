//! `tidewire-server`: the reference server as a program.
//!
//! The first line on stdout is `listening on ws://HOST:PORT/PATH` (the bound
//! address, so `--listen 127.0.0.1:0` can be used by scripts); logs go to stderr.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, ValueEnum};
use tidewire_server::{
    AuthMode, BoundEndpoint, Config, ConnectRate, Faults, InjectedFault, RateLimit, Server, Variant,
};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Auth {
    /// Every connection is anonymous with every scope.
    Off,
    /// Anonymous connections get --anonymous-scopes; tokens grant their own scopes.
    Optional,
    /// Every request other than auth and ping needs authentication first.
    Required,
}

/// The Tidewire v1 reference server: every profile, in memory or durable with --data-dir.
///
/// Prints `listening on ws://HOST:PORT/PATH` as the first line on stdout once
/// bound; logs go to stderr (level from RUST_LOG, default info).
#[derive(Debug, Parser)]
#[command(name = "tidewire-server", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "TIDEWIRE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Path of the WebSocket endpoint.
    #[arg(long, env = "TIDEWIRE_PATH", default_value = "/v1")]
    path: String,
    /// Milliseconds without any server message after which a heartbeat is sent.
    #[arg(long, env = "TIDEWIRE_HEARTBEAT_MS")]
    heartbeat_ms: Option<u64>,
    /// Milliseconds without a frame from the client after which a WebSocket Ping is sent.
    #[arg(long, env = "TIDEWIRE_PING_INTERVAL_MS", value_parser = clap::value_parser!(u64).range(1..))]
    ping_interval_ms: Option<u64>,
    /// Milliseconds after a Ping within which a frame must arrive, or the connection closes with 4006.
    #[arg(long, env = "TIDEWIRE_PING_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..))]
    ping_timeout_ms: Option<u64>,
    /// Authentication mode.
    #[arg(long, env = "TIDEWIRE_AUTH", value_enum, default_value = "off")]
    auth: Auth,
    /// In required mode, milliseconds a connection may stay unauthenticated.
    #[arg(long, env = "TIDEWIRE_AUTH_TIMEOUT_MS")]
    auth_timeout_ms: Option<u64>,
    /// JSON file mapping each static token to {"principal": "...", "scopes": ["..."]}.
    #[arg(long, env = "TIDEWIRE_TOKENS_FILE")]
    tokens_file: Option<PathBuf>,
    /// Secret for HS256 JWTs (claims: sub, scope, exp). Without it JWTs are refused.
    #[arg(long, env = "TIDEWIRE_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Scopes of anonymous connections in optional mode (comma-separated).
    #[arg(
        long,
        env = "TIDEWIRE_ANONYMOUS_SCOPES",
        value_delimiter = ',',
        default_value = "*"
    )]
    anonymous_scopes: Vec<String>,
    /// Milliseconds before a token expires at which the token_expiring notice is sent.
    #[arg(long, env = "TIDEWIRE_TOKEN_EXPIRY_NOTICE_MS")]
    token_expiry_notice_ms: Option<u64>,
    /// Client messages allowed per window; 0 disables the rate limit.
    #[arg(long, env = "TIDEWIRE_RATE_MESSAGES")]
    rate_messages: Option<u32>,
    /// Length of the rate-limit window in milliseconds.
    #[arg(long, env = "TIDEWIRE_RATE_WINDOW_MS")]
    rate_window_ms: Option<u64>,
    /// Open connections beyond this are closed with 1013.
    #[arg(long, env = "TIDEWIRE_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Live subscriptions (watch and topic) per connection.
    #[arg(long, env = "TIDEWIRE_MAX_SUBSCRIPTIONS")]
    max_subscriptions: Option<u32>,
    /// Largest client frame in bytes; larger closes with 1009.
    #[arg(long, env = "TIDEWIRE_MAX_MESSAGE_BYTES")]
    max_message_bytes: Option<usize>,
    /// Deepest JSON nesting accepted in a client message.
    #[arg(long, env = "TIDEWIRE_MAX_NESTING_DEPTH")]
    max_nesting_depth: Option<u32>,
    /// Allowed Origin values (comma-separated); empty allows all. Requests
    /// without an Origin header are always allowed.
    #[arg(long, env = "TIDEWIRE_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// Server messages that may wait for one connection before it is closed as a slow consumer (4002).
    #[arg(long, env = "TIDEWIRE_OUTBOUND_QUEUE")]
    outbound_queue: Option<usize>,
    /// Bytes of server messages that may wait for one connection before it is closed as a slow consumer (4002).
    #[arg(long, env = "TIDEWIRE_OUTBOUND_QUEUE_BYTES")]
    outbound_queue_bytes: Option<usize>,
    /// Change events kept in the journal for resuming.
    #[arg(long, env = "TIDEWIRE_JOURNAL_RETENTION")]
    journal_retention: Option<usize>,
    /// Milliseconds a change event is kept in the journal for resuming; 0 keeps
    /// events until --journal-retention drops them.
    #[arg(long, env = "TIDEWIRE_JOURNAL_MAX_AGE_MS", default_value_t = 0)]
    journal_max_age_ms: u64,
    /// Directory where records, the journal and room history survive restarts
    /// (created if missing). Without it everything is kept in memory.
    #[arg(long, env = "TIDEWIRE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Messages kept per room for history. TW-ROOM-16 requires at least 1000;
    /// a smaller value makes the server non-conforming (useful to test clients).
    #[arg(long, env = "TIDEWIRE_ROOM_HISTORY")]
    room_history: Option<usize>,
    /// A further endpoint binding a database or collection, as a path template
    /// with `{database}` and/or `{collection}`, and `=DATABASE` when the template
    /// has no `{database}`, e.g. `/v1/libraries/{collection}=libraries` (repeatable).
    #[arg(long = "bound-endpoint", value_name = "TEMPLATE[=DATABASE]", value_parser = BoundEndpoint::parse)]
    bound_endpoints: Vec<BoundEndpoint>,
    /// Do not serve the `vector` profile (similarity search).
    #[arg(long, env = "TIDEWIRE_NO_VECTOR")]
    no_vector: bool,
    /// Milliseconds a write's idempotency key is remembered, announced in
    /// `welcome.idempotency_window_ms`.
    #[arg(long, env = "TIDEWIRE_IDEMPOTENCY_WINDOW_MS")]
    idempotency_window_ms: Option<u64>,
    /// Publications kept per topic for resuming subscriptions (`subscribe.start_after`).
    #[arg(long, env = "TIDEWIRE_TOPIC_HISTORY")]
    topic_history: Option<usize>,
    /// Never send heartbeats (fault injection).
    #[arg(long, env = "TIDEWIRE_FAULT_SKIP_HEARTBEATS")]
    fault_skip_heartbeats: bool,
    /// Announce the rate limit but do not enforce it (fault injection).
    #[arg(long, env = "TIDEWIRE_FAULT_IGNORE_RATE_LIMIT")]
    fault_ignore_rate_limit: bool,
    /// Misbehave in this named way, on every connection (fault injection;
    /// repeatable). See the reference server's README for what each does.
    #[arg(
        long = "fault",
        value_name = "NAME",
        value_parser = PossibleValuesParser::new(InjectedFault::names())
            .try_map(|name| name.parse::<InjectedFault>())
    )]
    faults: Vec<InjectedFault>,
    /// Which side of the specification's freedoms to take: `usual`, or
    /// `alternate` (other id, token and timestamp formats, extra unknown
    /// members, other wording and orders, the widest limits as defaults).
    /// Flags left unset take the variant's default.
    #[arg(
        long,
        env = "TIDEWIRE_VARIANT",
        default_value = "usual",
        value_parser = PossibleValuesParser::new(["usual", "alternate"])
            .try_map(|name| name.parse::<Variant>())
    )]
    variant: Variant,
    /// Handshakes accepted from one client address per window; 0 (the default) sets no limit.
    /// Further ones are refused with HTTP 429.
    #[arg(long, env = "TIDEWIRE_CONNECT_ATTEMPTS", default_value_t = 0)]
    connect_attempts: u32,
    /// Length of the connection-rate window in milliseconds.
    #[arg(long, env = "TIDEWIRE_CONNECT_WINDOW_MS", default_value_t = 60_000)]
    connect_window_ms: u64,
    /// Posts one room accepts per window; 0 (the default) sets no limit.
    #[arg(long, env = "TIDEWIRE_ROOM_POSTS", default_value_t = 0)]
    room_posts: u32,
    /// Length of the room post-rate window in milliseconds.
    #[arg(long, env = "TIDEWIRE_ROOM_POST_WINDOW_MS", default_value_t = 60_000)]
    room_post_window_ms: u64,
    /// Threads serving connections; by default one per core the process may run on.
    #[arg(long, env = "TIDEWIRE_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    worker_threads: Option<u16>,
}

impl Args {
    fn into_config(self) -> Result<Config, tidewire_server::ConfigError> {
        let tokens = match &self.tokens_file {
            Some(path) => Config::load_tokens_file(path)?,
            None => Default::default(),
        };
        let defaults = Config::for_variant(self.variant);
        let millis =
            |given: Option<u64>, default: Duration| given.map_or(default, Duration::from_millis);
        let default_rate = defaults.rate_limit.unwrap_or(RateLimit {
            messages: 0,
            window_ms: 1000,
        });
        let rate_messages = self.rate_messages.unwrap_or(default_rate.messages);
        let config = Config {
            listen: self.listen,
            path: self.path,
            heartbeat_interval: millis(self.heartbeat_ms, defaults.heartbeat_interval),
            ping_interval: millis(self.ping_interval_ms, defaults.ping_interval),
            ping_timeout: millis(self.ping_timeout_ms, defaults.ping_timeout),
            auth_mode: match self.auth {
                Auth::Off => AuthMode::Off,
                Auth::Optional => AuthMode::Optional,
                Auth::Required => AuthMode::Required,
            },
            auth_timeout: millis(self.auth_timeout_ms, defaults.auth_timeout),
            tokens,
            jwt_secret: self.jwt_secret.map(String::into_bytes),
            anonymous_scopes: self
                .anonymous_scopes
                .into_iter()
                .filter(|s| !s.trim().is_empty())
                .collect(),
            token_expiry_notice: millis(self.token_expiry_notice_ms, defaults.token_expiry_notice),
            rate_limit: (rate_messages > 0).then_some(RateLimit {
                messages: rate_messages,
                window_ms: self.rate_window_ms.unwrap_or(default_rate.window_ms),
            }),
            max_connections: self.max_connections.unwrap_or(defaults.max_connections),
            max_subscriptions: self.max_subscriptions.unwrap_or(defaults.max_subscriptions),
            max_message_bytes: self.max_message_bytes.unwrap_or(defaults.max_message_bytes),
            max_nesting_depth: self.max_nesting_depth.unwrap_or(defaults.max_nesting_depth),
            allowed_origins: self
                .allowed_origins
                .into_iter()
                .filter(|s| !s.trim().is_empty())
                .collect(),
            outbound_queue: self.outbound_queue.unwrap_or(defaults.outbound_queue),
            outbound_queue_bytes: self
                .outbound_queue_bytes
                .unwrap_or(defaults.outbound_queue_bytes),
            journal_retention: self.journal_retention.unwrap_or(defaults.journal_retention),
            journal_max_age: (self.journal_max_age_ms > 0)
                .then(|| Duration::from_millis(self.journal_max_age_ms)),
            data_dir: self.data_dir,
            vector: !self.no_vector,
            bound_endpoints: self.bound_endpoints,
            room_history: self.room_history.unwrap_or(defaults.room_history),
            idempotency_window: self
                .idempotency_window_ms
                .map_or(defaults.idempotency_window, Duration::from_millis),
            topic_history: self.topic_history.unwrap_or(defaults.topic_history),
            faults: Faults {
                skip_heartbeats: self.fault_skip_heartbeats,
                ignore_rate_limit: self.fault_ignore_rate_limit,
                ..Faults::default()
            },
            connect_rate: (self.connect_attempts > 0).then_some(ConnectRate {
                attempts: self.connect_attempts,
                window_ms: self.connect_window_ms,
            }),
            room_post_rate: (self.room_posts > 0).then_some(RateLimit {
                messages: self.room_posts,
                window_ms: self.room_post_window_ms,
            }),
            ..defaults
        };
        Ok(self.faults.into_iter().fold(config, Config::with_fault))
    }
}

/// The runtime serving connections. With one thread it is tokio's
/// single-threaded runtime: a multi-thread runtime with one worker only
/// reorders tasks. A fan-out wakes hundreds of writers at once; they overflow
/// that worker's local run queue (256 tasks) into the shared queue, which the
/// worker visits only now and then, and tasks woken later run before them:
/// some subscribers wait several rounds for a push the others got at once
/// (fan-out p99 at 1,000 subscribers and 640/s: 110-147 ms against 34-53 ms
/// on the single-threaded runtime, README "Performance").
fn runtime(worker_threads: Option<u16>) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = worker_threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        usize::from,
    );
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    builder.enable_all().build()
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let worker_threads = args.worker_threads;
    let config = match args.into_config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("tidewire-server: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match runtime(worker_threads) {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tidewire-server: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> ExitCode {
    let server = match Server::start(config).await {
        Ok(server) => server,
        Err(err) => {
            eprintln!("tidewire-server: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {}", server.ws_url());
    let _ = std::io::stdout().flush();
    wait_for_signal().await;
    server.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use tokio::runtime::RuntimeFlavor;

    use super::runtime;

    #[test]
    fn one_thread_runs_the_single_threaded_runtime() {
        let flavor = |threads| runtime(Some(threads)).unwrap().handle().runtime_flavor();
        assert_eq!(flavor(1), RuntimeFlavor::CurrentThread);
        assert_eq!(flavor(2), RuntimeFlavor::MultiThread);
    }
}
