//! The listener: accepting TCP connections, routing plain HTTP requests and
//! WebSocket upgrades, and the handle an embedding program holds.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tidewire_protocol::{
    AuthMode, BoundScope, CloseCode, CollectionName, ErrorBody, ErrorCode, Object, ServerStats,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, info, warn};

use crate::auth::Identity;
use crate::config::{Config, ConfigError};
use crate::connection;
use crate::http::{self, HeadError, RequestHead};
use crate::persist::StorageError;
use crate::state::State;
use crate::util::error;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot load seed data: {0:?}")]
    Seed(ErrorBody),
    #[error("cannot use the data directory: {0}")]
    Storage(#[from] StorageError),
}

/// Entry point: `Server::start(config).await` binds and serves in the background.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Binds the listener, loads the seed data and starts accepting. Returns
    /// once the address is bound, so `local_addr` is usable at once.
    pub async fn start(config: Config) -> Result<ServerHandle, ServerError> {
        config.validate()?;
        let addr = config.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        let seeds = config.seed.clone();
        let (state, fresh) = State::new(config)?;
        let state = Arc::new(state);
        // A data directory keeps what earlier starts seeded (and what clients
        // changed since), so seed data only fills a new one.
        for seed in seeds.into_iter().filter(|_| fresh) {
            seed_records(&state, &seed.database, &seed.collection, seed.records)
                .map_err(ServerError::Seed)?;
        }
        let (stop, stopped) = watch::channel(false);
        let tasks = Arc::new(Tasks::default());
        tokio::spawn(accept_loop(listener, state.clone(), stopped, tasks.clone()));
        info!(%local_addr, path = %state.config.path, epoch = %state.epoch, "listening");
        Ok(ServerHandle {
            state,
            local_addr,
            stop,
            tasks,
        })
    }
}

/// A running server. Dropping it stops accepting and closes every connection
/// (without waiting); `shutdown` does the same and waits for them to finish.
pub struct ServerHandle {
    state: Arc<State>,
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Arc<Tasks>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .field("epoch", &self.state.epoch)
            .finish()
    }
}

impl ServerHandle {
    /// The bound address (with the real port when the configured port was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `ws://ADDR/PATH`, the URL clients connect to.
    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.local_addr, self.state.config.path)
    }

    /// `http://ADDR` followed by `path`, e.g. `handle.http_url("/stats")`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.local_addr)
    }

    /// The journal epoch: resume tokens from other epochs are `history_lost`.
    pub fn epoch(&self) -> &str {
        &self.state.epoch
    }

    /// The same counters as `GET /stats`.
    pub fn stats(&self) -> ServerStats {
        self.state.stats()
    }

    /// Inserts records into `database.collection` as `create`s would: each is
    /// a commit that watches see. Returns the stored records (with `_id`).
    pub fn seed(
        &self,
        database: &str,
        collection: &str,
        records: impl IntoIterator<Item = Object>,
    ) -> Result<Vec<Object>, ErrorBody> {
        seed_records(&self.state, database, collection, records)
    }

    /// Stops accepting, sends `notice {reason: shutting_down}` and closes every
    /// connection with 1001, and waits (up to twice the close grace) for them to end.
    pub async fn shutdown(self) {
        self.begin_shutdown();
        let wait = self.tasks.idle();
        let limit = self.state.config.close_grace * 2 + Duration::from_millis(500);
        if tokio::time::timeout(limit, wait).await.is_err() {
            warn!("connections still open after the shutdown grace period");
        }
        info!("shut down");
    }

    fn begin_shutdown(&self) {
        let _ = self.stop.send(true);
        self.state.begin_shutdown();
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.begin_shutdown();
    }
}

fn seed_records(
    state: &State,
    database: &str,
    collection: &str,
    records: impl IntoIterator<Item = Object>,
) -> Result<Vec<Object>, ErrorBody> {
    for name in [database, collection] {
        CollectionName::new(name)
            .map_err(|err| error(ErrorCode::InvalidMessage, err.to_string()))?;
    }
    let mut store = state.store.write();
    records
        .into_iter()
        .map(|record| store.create(database, collection, record))
        .collect()
}

/// Counts running connection tasks so shutdown can wait for them.
#[derive(Default)]
struct Tasks {
    running: AtomicUsize,
    idle: Notify,
}

struct TaskGuard(Arc<Tasks>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Tasks {
    fn start(self: &Arc<Tasks>) -> TaskGuard {
        self.running.fetch_add(1, Ordering::AcqRel);
        TaskGuard(self.clone())
    }

    async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.running.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    mut stopped: watch::Receiver<bool>,
    tasks: Arc<Tasks>,
) {
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let guard = tasks.start();
                    let state = state.clone();
                    tokio::spawn(handle_tcp(state, stream, peer, guard));
                }
                Err(err) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Serves one accepted TCP connection; `guard` counts it as running until it
/// ends (for a WebSocket, until the connection task it hands over to ends).
async fn handle_tcp(state: Arc<State>, mut stream: TcpStream, peer: SocketAddr, guard: TaskGuard) {
    let _ = stream.set_nodelay(true);
    let (head, rest) = match http::read_head(&mut stream, state.config.handshake_timeout).await {
        Ok(read) => read,
        Err(HeadError::TooLarge) => {
            http::respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                &[],
                "request head too large\n",
            )
            .await;
            return;
        }
        Err(HeadError::Malformed) => {
            http::respond(
                &mut stream,
                "400 Bad Request",
                "text/plain",
                &[],
                "malformed request\n",
            )
            .await;
            return;
        }
        Err(HeadError::TimedOut) => {
            http::respond(
                &mut stream,
                "408 Request Timeout",
                "text/plain",
                &[],
                "request timeout\n",
            )
            .await;
            return;
        }
        Err(HeadError::Closed) => return,
    };
    let bound = state
        .config
        .bound_endpoints
        .iter()
        .find_map(|endpoint| endpoint.matches(&head.path));
    let endpoint = head.path == state.config.path || bound.is_some();
    if head.is_upgrade() && endpoint {
        upgrade(state, stream, peer, head, rest, bound, guard).await;
        return;
    }
    let (status, content_type, body) = match (head.method.as_str(), head.path.as_str()) {
        ("GET", "/healthz") => ("200 OK", "text/plain", "ok".to_string()),
        ("GET", "/stats") => (
            "200 OK",
            "application/json",
            serde_json::to_string(&state.stats()).unwrap_or_default(),
        ),
        ("GET", _) if endpoint => (
            "426 Upgrade Required",
            "text/plain",
            "this endpoint speaks WebSocket (subprotocol tidewire.v1)\n".to_string(),
        ),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET is served\n".to_string(),
        ),
    };
    let extra: &[(&str, &str)] = if status.starts_with("426") {
        &[("upgrade", "websocket")]
    } else {
        &[]
    };
    http::respond(&mut stream, status, content_type, extra, &body).await;
}

/// Bytes read from the socket per read call. The buffer is allocated for
/// every connection for its whole life and zero-filled on every read poll
/// (tungstenite's default is 128 KiB): 2 KiB holds any ordinary request, and
/// a larger frame is read in several calls.
const READ_BUFFER_BYTES: usize = 2 * 1024;
/// Frames written are gathered up to this size before a write call; the
/// writer flushes whenever its queue is empty anyway. Each write call pays
/// the kernel's send path and a wake of the reading peer, which in a
/// saturated fan-out is most of a push's cost: at 16 KiB a subscriber's
/// batch took two or three calls where one does now (README, Performance).
/// The buffer grows only as a batch needs it, so an idle connection holds
/// what its `welcome` took; one that once gathered a full batch keeps up to
/// twice this, small beside the outbound queue's byte bound.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

fn websocket_config(config: &Config) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(Some(config.max_message_bytes))
        .max_frame_size(Some(config.max_message_bytes))
}

async fn upgrade(
    state: Arc<State>,
    mut stream: TcpStream,
    peer: SocketAddr,
    head: RequestHead,
    rest: Vec<u8>,
    bound: Option<BoundScope>,
    guard: TaskGuard,
) {
    if let Some(attempts) = &state.connect_attempts {
        if let Err(wait) = attempts.attempt(peer.ip(), std::time::Instant::now()) {
            info!(%peer, "refused: connection rate");
            let seconds = crate::quota::retry_after_secs(wait).to_string();
            http::respond(
                &mut stream,
                "429 Too Many Requests",
                "text/plain",
                &[("retry-after", &seconds)],
                "too many connection attempts from this address\n",
            )
            .await;
            return;
        }
    }
    let upgrade = match http::check_upgrade(&head) {
        Ok(upgrade) => upgrade,
        Err(refusal) => {
            debug!(%peer, status = refusal.status, "upgrade refused");
            let extra: Vec<(&str, &str)> = refusal.extra_header.into_iter().collect();
            http::respond(
                &mut stream,
                refusal.status,
                "text/plain",
                &extra,
                &format!("{}\n", refusal.message),
            )
            .await;
            return;
        }
    };
    // Session parameters are checked with the rest of the handshake: a
    // client that states a bound the server cannot honour learns it before
    // any message could exceed it.
    let params = match head.session_params() {
        Ok(params) => params,
        Err(_) if state.config.faults.lax_session_params => None,
        Err(message) => {
            debug!(%peer, %message, "upgrade refused: session parameters");
            http::respond(
                &mut stream,
                "400 Bad Request",
                "text/plain",
                &[],
                &format!("{message}\n"),
            )
            .await;
            return;
        }
    };
    let extensions = crate::faults::extensions_answer(&state.config.faults, &upgrade);
    if http::accept_upgrade(&mut stream, &upgrade, extensions)
        .await
        .is_err()
    {
        return;
    }
    let ws_config = websocket_config(&state.config);
    let ws =
        WebSocketStream::from_partially_read(stream, rest, Role::Server, Some(ws_config)).await;

    // Policy failures close after the upgrade so browsers can see the code.
    let origin_allowed = state.config.allowed_origins.is_empty()
        || head.header("origin").is_none_or(|origin| {
            state
                .config
                .allowed_origins
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(origin.trim()))
        });
    if !origin_allowed {
        info!(%peer, origin = head.header("origin").unwrap_or(""), "refused: origin not allowed");
        let code = if state.config.faults.shared_policy_close {
            CloseCode::PolicyViolation
        } else {
            CloseCode::OriginNotAllowed
        };
        connection::refuse(&state, ws, code, "origin not allowed").await;
        return;
    }
    // With authentication off, tokens are not examined (section 6.1).
    let token = head
        .token()
        .filter(|_| state.config.auth_mode != AuthMode::Off);
    let identity = match token {
        Some(token) => match state.auth.verify(&token) {
            Ok(identity) => identity,
            Err(err) => {
                info!(%peer, %err, "refused: invalid token");
                connection::refuse(&state, ws, CloseCode::PolicyViolation, "invalid token").await;
                return;
            }
        },
        None => match state.config.auth_mode {
            AuthMode::Off => Identity::anonymous(&["*".to_string()]),
            AuthMode::Optional => Identity::anonymous(&state.config.anonymous_scopes),
            AuthMode::Required => Identity::anonymous(&[]),
        },
    };
    if state.is_shutting_down() {
        connection::refuse(&state, ws, CloseCode::GoingAway, "server shutting down").await;
        return;
    }
    if !state.reserve_slot() {
        info!(%peer, "refused: at capacity");
        connection::refuse(&state, ws, CloseCode::TryAgainLater, "at capacity").await;
        return;
    }
    // A task of its own: the HTTP and upgrade states of this task would
    // otherwise stay allocated for the connection's whole life.
    tokio::spawn(async move {
        connection::serve(state, ws, peer.to_string(), identity, bound, params).await;
        drop(guard);
    });
}
