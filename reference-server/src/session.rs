//! One connection's request processing: decoding, rate limit, the
//! authentication gate, hooks, and every operation. Requests of a connection
//! are handled one at a time, in arrival order, so replies keep that order.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::Value;
use tidewire_filter::{Filter, Pipeline};
use tidewire_protocol::{
    decode_client_message, Ack, AuthMode, Authenticated, ClientMessage, CloseCode, ConnectionStats,
    Created, Deleted, Document, EditApplied, ErrorBody, ErrorCode, ErrorMessage, HistoryPage,
    Joined, LeaveReason, Left, Pong, Posted, Published, RequestId, ServerMessage, Stats,
    Subscribed, Unsubscribed, Updated,
};
use tokio::time::Instant;

use crate::auth::{Action, Identity, Scopes};
use crate::hooks::OperationContext;
use crate::outbound::{CloseRequest, Conn, Outbound};
use crate::ratelimit::{RateWindow, Verdict};
use crate::state::State;
use crate::store::{record_id, Query, WatchSub};
use crate::topics::TopicSub;
use crate::util::{error, error_with, invalid_at, timestamp};

const DEFAULT_READ_LIMIT: u32 = 100;
const MAX_READ_LIMIT: u32 = 1000;
const DEFAULT_HISTORY_LIMIT: u32 = 50;
const MAX_HISTORY_LIMIT: u32 = 500;

enum Subscription {
    Watch(u64),
    Topic(String, u64),
}

/// A successful outcome: the reply, and whether the operation already queued
/// it (operations whose reply must precede their pushes queue it themselves).
struct Reply {
    message: ServerMessage,
    queued: bool,
}

impl From<ServerMessage> for Reply {
    fn from(message: ServerMessage) -> Reply {
        Reply {
            message,
            queued: false,
        }
    }
}

pub(crate) struct Session {
    state: Arc<State>,
    conn: Arc<Conn>,
    subscriptions: HashMap<String, Subscription>,
    next_subscription: u64,
    rooms: BTreeSet<String>,
    rate: Option<RateWindow>,
}

fn forbidden(what: &str) -> ErrorBody {
    error(
        ErrorCode::Forbidden,
        format!("missing the scope for {what}"),
    )
}

fn filter_error(prefix: &str, err: &tidewire_filter::FilterError) -> ErrorBody {
    let path = if err.path.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}.{}", err.path)
    };
    invalid_at(path, err.to_string())
}

fn parse_filter(filter: Option<&tidewire_protocol::Filter>) -> Result<Option<Filter>, ErrorBody> {
    filter
        .map(|f| Filter::parse(&Value::Object(f.0.clone())).map_err(|e| filter_error("filter", &e)))
        .transpose()
}

impl Session {
    pub fn new(state: Arc<State>, conn: Arc<Conn>) -> Session {
        let rate = match (
            state.config.rate_limit,
            state.config.faults.ignore_rate_limit,
        ) {
            (Some(rate), false) => Some(RateWindow::new(rate.messages, rate.window_ms)),
            _ => None,
        };
        Session {
            state,
            conn,
            subscriptions: HashMap::new(),
            next_subscription: 1,
            rooms: BTreeSet::new(),
            rate,
        }
    }

    /// Handles one text frame.
    pub fn handle_text(&mut self, text: &str) {
        self.conn.messages_in.fetch_add(1, Ordering::Relaxed);
        self.state.messages_in.fetch_add(1, Ordering::Relaxed);
        let depth = self.state.config.max_nesting_depth as usize;
        if let Some(rate) = &mut self.rate {
            match rate.check(Instant::now()) {
                Verdict::Allow => {}
                Verdict::Abuse => {
                    self.conn.request_close(CloseRequest::server(
                        CloseCode::PolicyViolation,
                        "rate limit abuse",
                    ));
                    return;
                }
                Verdict::Limited { retry_after_ms } => {
                    let id = match decode_client_message(text, depth) {
                        Ok(message) => Some(message.id().clone()),
                        Err(err) => err.id,
                    };
                    let body = error_with(
                        ErrorCode::RateLimited,
                        "too many messages; retry later",
                        "retry_after_ms",
                        retry_after_ms,
                    );
                    self.send(&ServerMessage::Error(ErrorMessage { id, error: body }));
                    return;
                }
            }
        }
        match decode_client_message(text, depth) {
            Ok(message) => self.handle(message),
            Err(err) => self.send(&ServerMessage::Error(err.to_error_message())),
        }
    }

    fn send(&self, message: &ServerMessage) {
        self.conn.reply(Outbound::message(message));
    }

    fn handle(&mut self, request: ClientMessage) {
        let identity = self.conn.identity.read().clone();
        let conn = self.conn.clone();
        let id = request.id().clone();
        let gated = self.state.config.auth_mode == AuthMode::Required
            && !identity.authenticated
            && !matches!(request, ClientMessage::Auth(_) | ClientMessage::Ping(_));
        let ctx = OperationContext {
            connection_id: &conn.id,
            principal: &identity.principal,
            scopes: &identity.scopes.raw,
            request: &request,
        };
        let outcome = if self.state.config.auth_mode == AuthMode::Off
            && matches!(request, ClientMessage::Auth(_))
        {
            // `auth` is left out of welcome.profiles in this mode (TW-CORE-22).
            Err(error(
                ErrorCode::NotSupported,
                "authentication is off on this server",
            ))
        } else if gated {
            Err(error(
                ErrorCode::Unauthorized,
                "authenticate with `auth` first",
            ))
        } else {
            match self
                .state
                .config
                .hooks
                .iter()
                .try_for_each(|hook| hook.before(&ctx))
            {
                Err(body) => Err(body),
                Ok(()) => self.dispatch(&request, &identity),
            }
        };
        let reply = outcome.unwrap_or_else(|body| {
            Reply::from(ServerMessage::Error(ErrorMessage {
                id: Some(id),
                error: body,
            }))
        });
        for hook in &self.state.config.hooks {
            hook.after(&ctx, &reply.message);
        }
        if !reply.queued {
            self.send(&reply.message);
        }
    }

    fn dispatch(
        &mut self,
        request: &ClientMessage,
        identity: &Identity,
    ) -> Result<Reply, ErrorBody> {
        let everything;
        let scopes = if self.state.config.faults.leak_across_scope {
            everything = Scopes::parse(&["*".to_string()]);
            &everything
        } else {
            &identity.scopes
        };
        let conn = self.conn.num;
        match request {
            ClientMessage::Ping(ping) => Ok(ServerMessage::Pong(Pong {
                id: ping.id.clone(),
                payload: ping.payload.clone().filter(|p| !p.is_null()),
            })
            .into()),
            ClientMessage::Auth(auth) => self.authenticate(&auth.id, &auth.token),
            ClientMessage::Create(create) => {
                let ns = format!("{}.{}", create.database, create.collection);
                // A non-string `_id` is reported before a missing scope (TW-CORE-23).
                record_id(&create.record)?;
                if !scopes.allows(Action::Write, &ns) {
                    return Err(forbidden(&format!("writing {ns}")));
                }
                let record = self.state.store.lock().create(
                    &create.database,
                    &create.collection,
                    create.record.clone(),
                )?;
                Ok(ServerMessage::Created(Created {
                    id: create.id.clone(),
                    record,
                })
                .into())
            }
            ClientMessage::Read(read) => {
                let ns = format!("{}.{}", read.database, read.collection);
                // An invalid filter or path is reported before a missing scope (TW-CORE-23).
                let filter = parse_filter(read.filter.as_ref())?;
                for (index, path) in read.fields.iter().flatten().enumerate() {
                    check_path(format!("fields[{index}]"), path)?;
                }
                for (index, key) in read.sort.iter().enumerate() {
                    check_path(format!("sort[{index}].field"), &key.field)?;
                }
                if !scopes.allows(Action::Read, &ns) {
                    return Err(forbidden(&format!("reading {ns}")));
                }
                let query = Query {
                    filter,
                    sort: read.sort.clone(),
                    offset: read.offset.unwrap_or(0) as usize,
                    limit: read.limit.unwrap_or(DEFAULT_READ_LIMIT).min(MAX_READ_LIMIT) as usize,
                    fields: read.fields.clone(),
                };
                let store = self.state.store.lock();
                let (records, total) = match &read.record_id {
                    Some(record_id) => {
                        let record = store
                            .read_one(
                                &read.database,
                                &read.collection,
                                record_id,
                                query.fields.as_deref(),
                            )
                            .ok_or_else(|| {
                                error(
                                    ErrorCode::NotFound,
                                    format!("no record with _id {record_id:?}"),
                                )
                            })?;
                        (vec![record], 1)
                    }
                    None => store.query(&read.database, &read.collection, &query),
                };
                Ok(ServerMessage::Records(tidewire_protocol::Records {
                    id: read.id.clone(),
                    count: records.len() as u64,
                    records,
                    total: total as u64,
                })
                .into())
            }
            ClientMessage::Update(update) => {
                let ns = format!("{}.{}", update.database, update.collection);
                if update.set.is_empty() && update.unset.is_empty() {
                    return Err(error(
                        ErrorCode::InvalidMessage,
                        "an update needs `set` or `unset`",
                    ));
                }
                for path in update.set.keys() {
                    check_update_path("set", path)?;
                }
                for (index, path) in update.unset.iter().enumerate() {
                    check_update_path(&format!("unset[{index}]"), path)?;
                    if update.set.contains_key(path) {
                        return Err(invalid_at(
                            format!("unset[{index}]"),
                            format!("`{path}` is both set and unset"),
                        ));
                    }
                }
                if !scopes.allows(Action::Write, &ns) {
                    return Err(forbidden(&format!("writing {ns}")));
                }
                let record = self.state.store.lock().update(
                    &update.database,
                    &update.collection,
                    &update.record_id,
                    &update.set,
                    &update.unset,
                )?;
                Ok(ServerMessage::Updated(Updated {
                    id: update.id.clone(),
                    record,
                })
                .into())
            }
            ClientMessage::Delete(delete) => {
                let ns = format!("{}.{}", delete.database, delete.collection);
                if !scopes.allows(Action::Write, &ns) {
                    return Err(forbidden(&format!("writing {ns}")));
                }
                self.state.store.lock().delete(
                    &delete.database,
                    &delete.collection,
                    &delete.record_id,
                )?;
                Ok(ServerMessage::Deleted(Deleted {
                    id: delete.id.clone(),
                    record_id: delete.record_id.clone(),
                })
                .into())
            }
            ClientMessage::Watch(watch) => {
                if watch.collection.is_some() && watch.database.is_none() {
                    return Err(invalid_at("collection", "`collection` requires `database`"));
                }
                let filter = parse_filter(watch.filter.as_ref())?;
                let pipeline = watch
                    .pipeline
                    .as_ref()
                    .map(|stages| {
                        let stages = stages.iter().cloned().map(Value::Object).collect();
                        Pipeline::parse(&Value::Array(stages))
                            .map_err(|e| filter_error("pipeline", &e))
                    })
                    .transpose()?;
                let (filter, pipeline) = if self.state.config.faults.leak_across_filter {
                    (None, None)
                } else {
                    (filter, pipeline)
                };
                let target = match (&watch.database, &watch.collection) {
                    (None, _) => "*".to_string(),
                    (Some(db), None) => format!("{db}.*"),
                    (Some(db), Some(coll)) => format!("{db}.{coll}"),
                };
                if !scopes.allows(Action::Read, &target) {
                    return Err(forbidden(&format!("watching {target}")));
                }
                self.check_subscription_limit()?;
                let (key, sub_id) = self.new_subscription_id();
                let sub = WatchSub {
                    conn: self.conn.clone(),
                    id: sub_id.as_str().into(),
                    database: watch.database.as_ref().map(ToString::to_string),
                    collection: watch.collection.as_ref().map(ToString::to_string),
                    filter,
                    pipeline,
                    full_document: watch.full_document,
                };
                let message = self.state.store.lock().watch(
                    (conn, key),
                    sub,
                    watch.id.clone(),
                    watch.resume_after.as_ref(),
                )?;
                self.subscriptions.insert(sub_id, Subscription::Watch(key));
                Ok(Reply {
                    message,
                    queued: true,
                })
            }
            ClientMessage::Subscribe(subscribe) => {
                // An invalid filter is reported before a missing scope (TW-CORE-23).
                let filter = parse_filter(subscribe.filter.as_ref())?
                    .filter(|_| !self.state.config.faults.leak_across_filter);
                if !scopes.allows(Action::Subscribe, &subscribe.topic) {
                    return Err(forbidden(&format!("subscribing to {}", subscribe.topic)));
                }
                self.check_subscription_limit()?;
                let (key, sub_id) = self.new_subscription_id();
                self.state.topics.lock().subscribe(
                    &subscribe.topic,
                    (conn, key),
                    TopicSub {
                        conn: self.conn.clone(),
                        id: sub_id.as_str().into(),
                        filter,
                    },
                );
                self.subscriptions.insert(
                    sub_id.clone(),
                    Subscription::Topic(subscribe.topic.to_string(), key),
                );
                Ok(ServerMessage::Subscribed(Subscribed {
                    id: subscribe.id.clone(),
                    subscription: sub_id,
                })
                .into())
            }
            ClientMessage::Unsubscribe(unsubscribe) => {
                let Some(sub) = self.subscriptions.remove(&unsubscribe.subscription) else {
                    return Err(error(
                        ErrorCode::NotFound,
                        format!("no subscription {:?}", unsubscribe.subscription),
                    ));
                };
                match sub {
                    Subscription::Watch(key) => {
                        self.state.store.lock().unwatch((conn, key));
                        self.conn.remove_position(&unsubscribe.subscription);
                    }
                    Subscription::Topic(topic, key) => {
                        self.state.topics.lock().unsubscribe(&topic, (conn, key));
                    }
                }
                Ok(ServerMessage::Unsubscribed(Unsubscribed {
                    id: unsubscribe.id.clone(),
                    subscription: unsubscribe.subscription.clone(),
                })
                .into())
            }
            ClientMessage::Publish(publish) => {
                if !scopes.allows(Action::Publish, &publish.topic) {
                    return Err(forbidden(&format!("publishing to {}", publish.topic)));
                }
                let (message_id, published_at) = self.state.topics.lock().publish(
                    &publish.topic,
                    &identity.principal,
                    &publish.data,
                );
                Ok(ServerMessage::Published(Published {
                    id: publish.id.clone(),
                    topic: publish.topic.clone(),
                    message_id,
                    published_at,
                })
                .into())
            }
            ClientMessage::Join(join) => {
                if !scopes.allows(Action::Join, &join.room) {
                    return Err(forbidden(&format!("joining {}", join.room)));
                }
                let members = self.state.rooms.lock().join(
                    &join.room,
                    &self.conn,
                    &identity.principal,
                    join.role,
                );
                self.rooms.insert(join.room.to_string());
                Ok(ServerMessage::Joined(Joined {
                    id: join.id.clone(),
                    room: join.room.clone(),
                    role: join.role,
                    members,
                })
                .into())
            }
            ClientMessage::Leave(leave) => {
                if !self
                    .state
                    .rooms
                    .lock()
                    .leave(&leave.room, conn, LeaveReason::Left)
                {
                    return Err(error(
                        ErrorCode::NotFound,
                        format!("not a member of room {:?}", leave.room.as_str()),
                    ));
                }
                self.rooms.remove(leave.room.as_str());
                Ok(ServerMessage::Left(Left {
                    id: leave.id.clone(),
                    room: leave.room.clone(),
                })
                .into())
            }
            ClientMessage::Post(post) => {
                if !scopes.allows(Action::Join, &post.room) {
                    return Err(forbidden(&format!("posting to {}", post.room)));
                }
                let mut reply = None;
                self.state.rooms.lock().post(
                    &post.room,
                    conn,
                    &post.body,
                    |message_id, sent_at| {
                        let message = ServerMessage::Posted(Posted {
                            id: post.id.clone(),
                            room: post.room.clone(),
                            message_id: message_id.to_string(),
                            sent_at: sent_at.clone(),
                        });
                        self.conn.reply(Outbound::message(&message));
                        reply = Some(message);
                    },
                )?;
                Ok(Reply {
                    message: reply.expect("post replies when it succeeds"),
                    queued: true,
                })
            }
            ClientMessage::Typing(typing) => {
                if !scopes.allows(Action::Join, &typing.room) {
                    return Err(forbidden(&format!("typing in {}", typing.room)));
                }
                self.state
                    .rooms
                    .lock()
                    .typing(&typing.room, conn, typing.active)?;
                Ok(ServerMessage::Ack(Ack {
                    id: typing.id.clone(),
                })
                .into())
            }
            ClientMessage::History(history) => {
                if !scopes.allows(Action::Join, &history.room) {
                    return Err(forbidden(&format!("reading {}", history.room)));
                }
                let limit = history
                    .limit
                    .unwrap_or(DEFAULT_HISTORY_LIMIT)
                    .min(MAX_HISTORY_LIMIT) as usize;
                let (messages, has_more) = self.state.rooms.lock().history(
                    &history.room,
                    conn,
                    limit,
                    history.before.as_deref(),
                )?;
                Ok(ServerMessage::HistoryPage(HistoryPage {
                    id: history.id.clone(),
                    room: history.room.clone(),
                    messages,
                    has_more,
                })
                .into())
            }
            ClientMessage::Edit(edit) => {
                // Invalid by the profile's rules comes before forbidden (section 4.4).
                if edit.ops.is_empty() {
                    return Err(invalid_at("ops", "an edit needs at least one operation"));
                }
                if !scopes.allows(Action::Join, &edit.room) {
                    return Err(forbidden(&format!("editing in {}", edit.room)));
                }
                let mut rooms = self.state.rooms.lock();
                let base = if self.state.config.faults.accept_stale_edit {
                    rooms
                        .document(&edit.room, conn, &edit.document)
                        .map_or(edit.version, |(current, _)| current)
                } else {
                    edit.version
                };
                let version = rooms.edit(&edit.room, conn, &edit.document, base, &edit.ops)?;
                drop(rooms);
                Ok(ServerMessage::EditApplied(EditApplied {
                    id: edit.id.clone(),
                    room: edit.room.clone(),
                    document: edit.document.clone(),
                    version,
                })
                .into())
            }
            ClientMessage::GetDocument(get) => {
                if !scopes.allows(Action::Join, &get.room) {
                    return Err(forbidden(&format!("reading {}", get.room)));
                }
                let (version, content) =
                    self.state
                        .rooms
                        .lock()
                        .document(&get.room, conn, &get.document)?;
                Ok(ServerMessage::Document(Document {
                    id: get.id.clone(),
                    room: get.room.clone(),
                    document: get.document.clone(),
                    version,
                    content,
                })
                .into())
            }
            ClientMessage::GetStats(get) => Ok(ServerMessage::Stats(Stats {
                id: get.id.clone(),
                server: self.state.stats(),
                connection: ConnectionStats {
                    subscriptions: self.subscriptions.len() as u64,
                    rooms: self.rooms.len() as u64,
                    messages_in: self.conn.messages_in.load(Ordering::Relaxed),
                    messages_out: self.conn.messages_out.load(Ordering::Relaxed),
                },
            })
            .into()),
        }
    }

    fn authenticate(&mut self, id: &RequestId, token: &str) -> Result<Reply, ErrorBody> {
        let verified = self
            .state
            .auth
            .verify(token)
            .map_err(|err| error(ErrorCode::Unauthorized, err.to_string()))?;
        let mut identity = self.conn.identity.write();
        if identity.authenticated && identity.principal != verified.principal {
            return Err(error(
                ErrorCode::Forbidden,
                format!(
                    "the connection is authenticated as {:?}; a token for another principal cannot replace it",
                    identity.principal
                ),
            ));
        }
        *identity = verified;
        Ok(ServerMessage::Authenticated(Authenticated {
            id: id.clone(),
            principal: identity.principal.clone(),
            scopes: identity.scopes.raw.clone(),
            expires_at: identity.expires_at.map(timestamp),
        })
        .into())
    }

    fn check_subscription_limit(&self) -> Result<(), ErrorBody> {
        let max = self.state.config.max_subscriptions as usize;
        if self.subscriptions.len() >= max {
            return Err(error_with(
                ErrorCode::LimitExceeded,
                format!("at most {max} subscriptions per connection"),
                "limit",
                "max_subscriptions",
            ));
        }
        Ok(())
    }

    fn new_subscription_id(&mut self) -> (u64, String) {
        let key = self.next_subscription;
        self.next_subscription += 1;
        (key, format!("s{key}"))
    }

    /// Removes everything the connection holds; room members see it leave as disconnected.
    pub fn finish(&mut self) {
        let conn = self.conn.num;
        self.state.store.lock().drop_connection(conn);
        {
            let mut topics = self.state.topics.lock();
            for sub in self.subscriptions.values() {
                if let Subscription::Topic(topic, key) = sub {
                    topics.unsubscribe(topic, (conn, *key));
                }
            }
        }
        self.subscriptions.clear();
        if self.state.config.faults.keep_dropped_member {
            return;
        }
        let mut rooms = self.state.rooms.lock();
        for room in std::mem::take(&mut self.rooms) {
            if let Ok(name) = tidewire_protocol::Name::new(room) {
                rooms.leave(&name, conn, LeaveReason::Disconnected);
            }
        }
    }
}

/// A dotted path a request names outside a filter (`fields`, `sort`, `set`,
/// `unset`) is a path of section 15.1, checked by the filter crate like filter
/// keys; `location` is where the request carries it, for `details.path`.
fn check_path(location: impl Into<String>, path: &str) -> Result<(), ErrorBody> {
    tidewire_filter::check_path(path).map_err(|kind| invalid_at(location, kind.to_string()))
}

fn check_update_path(field: &str, path: &str) -> Result<(), ErrorBody> {
    let location = if field == "set" {
        format!("set.{path}")
    } else {
        field.to_string()
    };
    if path == "_id" || path.starts_with("_id.") {
        return Err(invalid_at(location, "`_id` cannot be changed"));
    }
    check_path(location, path)
}
