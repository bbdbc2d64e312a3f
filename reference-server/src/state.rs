//! Server-wide state shared by every connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use parking_lot::{Mutex, RwLock};
use tidewire_protocol::{
    session, AuthInfo, AuthMode, BoundScope, FilterLimits, Heartbeat, Limits, Liveness, Profile,
    Retention, ServerInfo, ServerMessage, ServerStats, SessionInfo, Welcome,
};

use crate::auth::{Authenticator, Identity};
use crate::config::Config;
use crate::http::SessionParams;
use crate::outbound::Conn;
use crate::persist::{Disk, StorageError};
use crate::quota::ConnectAttempts;
use crate::rooms::{RoomFaults, Rooms};
use crate::store::{Narrowing, Store};
use crate::topics::{TopicFaults, Topics};
use crate::util::timestamp;
use crate::variant::Choices;

pub(crate) struct State {
    pub config: Config,
    /// Ids, tokens and the shape of what is written, as `config.variant` has them.
    pub choices: Arc<dyn Choices>,
    pub epoch: String,
    pub auth: Authenticator,
    pub store: RwLock<Store>,
    pub topics: Mutex<Topics>,
    pub rooms: Mutex<Rooms>,
    pub connections: Mutex<HashMap<u64, Arc<Conn>>>,
    /// Open connection slots, reserved before the welcome.
    pub open: AtomicUsize,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    /// Connections that were sent a `welcome` since the start (stats `connections_total`).
    pub connections_total: AtomicU64,
    /// Handshakes per client address, when the configuration limits them.
    pub connect_attempts: Option<ConnectAttempts>,
    shutting_down: AtomicBool,
    next_connection: AtomicU64,
    started: Instant,
}

impl State {
    /// Also returns whether the data is new: an in-memory server, or a data
    /// directory this start created.
    pub fn new(config: Config) -> Result<(State, bool), StorageError> {
        // Every run names its own epoch, so nothing one run issues is issued
        // again by another (TW-POS-6); the `fixed-epoch` fault names the same one.
        let run_epoch = if config.faults.fixed_epoch {
            "0".repeat(32)
        } else {
            uuid::Uuid::new_v4().simple().to_string()
        };
        let choices = config.variant.choices();
        let store = Store::new(run_epoch.clone(), config.journal_retention)
            .with_max_age(config.journal_max_age)
            .with_idempotency_window(config.idempotency_window)
            .with_choices(choices.clone())
            .with_ignore_position_epoch(config.faults.ignore_position_epoch)
            .with_resume_skips_first(config.faults.resume_skips_first)
            .with_narrowing(
                config
                    .record_visibility
                    .clone()
                    .map(|visibility| Narrowing {
                        visibility,
                        count_hidden_records: config.faults.count_hidden_records,
                        leak_hidden_change: config.faults.leak_hidden_change,
                        hide_without_delete: config.faults.hide_without_delete,
                        reveal_as_update: config.faults.reveal_as_update,
                        read_hidden_by_id: config.faults.read_hidden_by_id,
                    }),
            );
        let room_post_rate = config
            .room_post_rate
            .filter(|_| !config.faults.ignore_room_post_rate);
        let rooms = Rooms::new(config.room_history, choices.clone())
            .with_post_rate(room_post_rate)
            .with_idempotency_window(config.idempotency_window);
        let (store, rooms, fresh) = match &config.data_dir {
            None => (store, rooms, true),
            Some(dir) => {
                let (disk, mut recovered) = Disk::open(dir)?;
                let store = store.recover(disk.clone(), &mut recovered)?;
                let rooms = rooms.recover(
                    disk,
                    std::mem::take(&mut recovered.rooms),
                    std::mem::take(&mut recovered.post_keys),
                )?;
                (store, rooms, recovered.fresh)
            }
        };
        let epoch = store.epoch().to_string();
        let faults = &config.faults;
        let rooms = rooms.with_epochs(
            &epoch,
            &run_epoch,
            RoomFaults {
                replay_from_position: faults.room_replay_from_position,
                accepts_any_position: faults.room_accepts_any_position,
                history_after_inclusive: faults.history_after_inclusive,
                document_position_behind: faults.document_position_behind,
                forward_history_never_has_more: faults.forward_history_never_has_more,
                accept_reused_keys: faults.accept_reused_keys,
            },
        );
        let topics = Topics::new(
            choices.clone(),
            &run_epoch,
            config.topic_history,
            TopicFaults {
                replay_from_position: faults.topic_replay_from_position,
                recover_beyond_retention: faults.topic_recover_beyond_retention,
            },
        );
        let state = State {
            auth: Authenticator {
                tokens: config.tokens.clone(),
                jwt_secret: config.jwt_secret.clone(),
            },
            store: RwLock::new(store),
            topics: Mutex::new(topics.with_idempotency_window(config.idempotency_window)),
            choices,
            rooms: Mutex::new(rooms),
            connections: Mutex::new(HashMap::new()),
            open: AtomicUsize::new(0),
            messages_in: AtomicU64::new(0),
            messages_out: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            connect_attempts: config
                .connect_rate
                .filter(|_| !config.faults.ignore_connect_rate)
                .map(ConnectAttempts::new),
            shutting_down: AtomicBool::new(false),
            next_connection: AtomicU64::new(1),
            started: Instant::now(),
            epoch,
            config,
        };
        Ok((state, fresh))
    }

    pub fn next_connection_number(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Marks the server as shutting down and asks every open connection to close.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        let connections: Vec<Arc<Conn>> = self.connections.lock().values().cloned().collect();
        for conn in connections {
            conn.request_close(crate::connection::shutdown_request());
        }
    }

    /// Reserves a connection slot; false when the server is at capacity.
    pub fn reserve_slot(&self) -> bool {
        let max = self.config.max_connections;
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .is_ok()
    }

    pub fn release_slot(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn stats(&self) -> ServerStats {
        let topics = if self.config.faults.stats_forget_topic_subscriptions {
            0
        } else {
            self.topics.lock().count()
        };
        let subscriptions = self.store.read().watch_count() + topics;
        ServerStats {
            connections: self.connections.lock().len() as u64,
            subscriptions: subscriptions as u64,
            rooms: self.rooms.lock().active() as u64,
            messages_in: self.messages_in.load(Ordering::Relaxed),
            messages_out: self.messages_out.load(Ordering::Relaxed),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            connections_total: Some(self.connections_total.load(Ordering::Relaxed)),
            limits: Some(self.limits()),
            max_connections: Some(self.config.max_connections as u64),
        }
    }

    pub fn limits(&self) -> Limits {
        let config = &self.config;
        Limits {
            max_message_bytes: config.max_message_bytes as u64,
            max_nesting_depth: config.max_nesting_depth,
            max_subscriptions: config.max_subscriptions,
            rate: config.rate_limit,
            outbound_queue: u32::try_from(config.outbound_queue).unwrap_or(u32::MAX),
            outbound_queue_bytes: Some(config.outbound_queue_bytes as u64),
            filter: Some(filter_limits()),
            connect_rate: config.connect_rate,
            room_post_rate: config.room_post_rate,
        }
    }

    /// Why the server does not serve `profile`, when it does not: the profile
    /// is then left out of `welcome.profiles` and its requests are refused
    /// with `not_supported`.
    pub fn unserved(&self, profile: Profile) -> Option<&'static str> {
        match profile {
            // With authentication off the `auth` request is not served (TW-AUTH-1, TW-CORE-22).
            Profile::Auth if self.config.auth_mode == AuthMode::Off => {
                Some("authentication is off on this server")
            }
            Profile::Vector if !self.config.vector => {
                Some("similarity search is off on this server")
            }
            Profile::Auth
                if self.config.auth_mode == AuthMode::Required
                    && self.config.faults.required_without_auth =>
            {
                Some("authentication is not served")
            }
            _ => None,
        }
    }

    /// The welcome of a connection whose handshake gave it `identity` and
    /// stated `params`, at an endpoint that binds `bound`.
    pub fn welcome(
        &self,
        connection_id: &str,
        identity: &Identity,
        params: Option<&SessionParams>,
        bound: Option<BoundScope>,
    ) -> Welcome {
        let config = &self.config;
        let bare = config.faults.bare_welcome_auth;
        let ttl_ms = identity.expires_at.map(|at| {
            at.duration_since(SystemTime::now()).map_or(0, |left| {
                u64::try_from(left.as_millis()).unwrap_or(u64::MAX)
            })
        });
        Welcome {
            connection_id: connection_id.to_string(),
            protocol: tidewire_protocol::PROTOCOL_VERSION.to_string(),
            server: ServerInfo {
                name: "tidewire-server".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            profiles: Profile::ALL
                .into_iter()
                .filter(|p| self.unserved(*p).is_none())
                .collect(),
            heartbeat_ms: config.heartbeat_interval.as_millis() as u64,
            limits: self.limits(),
            auth: AuthInfo {
                mode: config.auth_mode,
                principal: identity.authenticated.then(|| identity.principal.clone()),
                timeout_ms: (config.auth_mode == AuthMode::Required)
                    .then_some(config.auth_timeout.as_millis() as u64),
                scopes: (!bare).then(|| identity.scopes.raw.clone()),
                expires_at: identity.expires_at.filter(|_| !bare).map(timestamp),
                ttl_ms: ttl_ms.filter(|_| !bare),
                expiry_notice_ms: (config.auth_mode != AuthMode::Off
                    && !config.faults.unannounced_notice_lead)
                    .then(|| {
                        u64::try_from(config.token_expiry_notice.as_millis()).unwrap_or(u64::MAX)
                    }),
            },
            server_time: None,
            bound,
            idempotency_window_ms: Some(config.idempotency_window.as_millis() as u64),
            liveness: Some(Liveness {
                ping_interval_ms: millis_at_least_one(config.ping_interval),
                ping_timeout_ms: millis_at_least_one(config.ping_timeout),
            }),
            features: if config.faults.no_features {
                Vec::new()
            } else {
                session::FEATURES.iter().map(|f| f.to_string()).collect()
            },
            session: params.map(|params| SessionInfo {
                max_message_bytes: params.max_message_bytes.map(|n| n as u64),
                features: params
                    .features
                    .iter()
                    .filter(|f| {
                        config.faults.session_echoes_all_features
                            || session::FEATURES.contains(&f.as_str())
                    })
                    .cloned()
                    .collect(),
            }),
            retention: Some(self.retention()),
        }
    }

    /// How much of each stream is kept, as `welcome` announces it (TW-RECOVER-5).
    fn retention(&self) -> Retention {
        let config = &self.config;
        let extra = u64::from(config.faults.retention_overstated);
        let announced = |kept: usize| self.choices.retention_announced(kept as u64) + extra;
        Retention {
            journal: Some(announced(config.journal_retention)),
            topic: Some(announced(config.topic_history)),
            room: Some(announced(config.room_history)),
        }
    }

    /// Queues a heartbeat on `conn` carrying where each of its subscriptions
    /// stands (TW-POS-8), unless `only_with_progress` and it has none. Queued
    /// under the store and topics locks, so it follows every push its
    /// positions cover.
    pub fn queue_heartbeat(&self, conn: &Conn, only_with_progress: bool) {
        let store = self.store.read();
        let topics = self.topics.lock();
        let mut progress = store.progress(conn.num);
        progress.extend(topics.progress(conn.num));
        if only_with_progress && progress.is_empty() {
            return;
        }
        progress.sort_by_key(|(key, _)| *key);
        let progress = if self.config.faults.no_heartbeat_progress {
            Vec::new()
        } else {
            progress.into_iter().map(|(_, p)| p).collect()
        };
        let heartbeat = ServerMessage::Heartbeat(Heartbeat {
            at: crate::util::now_timestamp(),
            server_time: None,
            progress,
        });
        conn.reply(crate::outbound::Outbound::message(&heartbeat));
    }
}

fn millis_at_least_one(interval: std::time::Duration) -> u64 {
    u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// The filter crate's bounds, as `welcome` announces them.
fn filter_limits() -> FilterLimits {
    let bounds = tidewire_filter::BOUNDS;
    let announced = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    FilterLimits {
        max_conditions: announced(bounds.conditions),
        max_branches: announced(bounds.branches),
        max_in_values: announced(bounds.in_values),
        max_pattern_chars: announced(bounds.pattern_chars),
    }
}
