//! One connection's request processing: decoding, the rate limit, whether
//! the request's profile is served, the authentication gate and the hooks;
//! then [`Session::dispatch`] (in `profiles/`) runs the profile's handler.
//! Requests of a connection are handled one at a time, in arrival order, so
//! replies keep that order.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tidewire_protocol::{
    decode_client_message, AuthMode, BoundScope, ClientMessage, CloseCode, CollectionName,
    ErrorBody, ErrorCode, ErrorMessage, LeaveReason, ServerMessage,
};
use tokio::time::Instant;

use crate::auth::{Action, Identity};
use crate::hooks::OperationContext;
use crate::outbound::{CloseRequest, Conn, Outbound};
use crate::profiles::Reply;
use crate::ratelimit::{RateWindow, Verdict};
use crate::state::State;
use crate::util::{error, error_with, with_retry};

/// What a subscription id of the connection names, to end it on `unsubscribe`
/// or when the connection goes.
pub(crate) enum Subscription {
    Watch(u64),
    Topic(String, u64),
}

/// The state of one connection that its requests share.
pub(crate) struct Session {
    pub state: Arc<State>,
    pub conn: Arc<Conn>,
    pub subscriptions: HashMap<String, Subscription>,
    /// What each subscription needs the connection's scopes to allow, so that
    /// re-authentication can end those it no longer allows.
    pub targets: HashMap<String, (Action, String)>,
    next_subscription: u64,
    /// The rooms the connection has joined.
    pub rooms: BTreeSet<String>,
    rate: Option<RateWindow>,
    /// What the connection's endpoint binds (section 2.7).
    pub bound: Option<BoundScope>,
}

impl Session {
    pub fn new(state: Arc<State>, conn: Arc<Conn>) -> Session {
        let rate = match (
            state.config.rate_limit,
            state.config.faults.ignore_rate_limit,
        ) {
            (Some(rate), false) => {
                Some(RateWindow::new(rate.messages, rate.window_ms).abuse_after(
                    if state.config.faults.abuse_at_three_times {
                        3
                    } else {
                        2
                    },
                ))
            }
            _ => None,
        };
        Session {
            state,
            conn,
            subscriptions: HashMap::new(),
            targets: HashMap::new(),
            next_subscription: 1,
            rooms: BTreeSet::new(),
            rate,
            bound: None,
        }
    }

    /// Handles one text frame.
    pub fn handle_text(&mut self, text: &str) {
        self.conn.messages_in.fetch_add(1, Ordering::Relaxed);
        self.state.messages_in.fetch_add(1, Ordering::Relaxed);
        let depth = self.state.config.max_nesting_depth as usize
            + usize::from(self.state.config.faults.nesting_one_deeper);
        if let Some(rate) = &mut self.rate {
            match rate.check(Instant::now()) {
                Verdict::Allow => {}
                Verdict::Abuse => {
                    let faults = self.state.config.faults;
                    let code = if faults.shared_policy_close {
                        CloseCode::PolicyViolation
                    } else {
                        CloseCode::RateAbuse
                    };
                    // The abuse lasts a window: a client that waits one
                    // finds its rate whole again (section 18.1).
                    let window_ms = self
                        .state
                        .config
                        .rate_limit
                        .as_ref()
                        .map_or(1, |rate| rate.window_ms.max(1));
                    let reason = if faults.close_without_delay {
                        "rate limit abuse".to_string()
                    } else {
                        CloseCode::reason_with_delay(window_ms, "rate limit abuse")
                    };
                    self.conn
                        .request_close(CloseRequest::server(code, reason.as_str()));
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
                    self.send(&ServerMessage::Error(ErrorMessage {
                        id,
                        error: body,
                        server_time: None,
                    }));
                    return;
                }
            }
        }
        match crate::faults::decode_with_faults(&self.state.config.faults, text, depth) {
            Ok(message) => self.handle(message),
            Err(err) => {
                let lenient = self.state.config.faults.accept_oversized_member_info;
                match lenient
                    .then(|| crate::faults::join_without_member_info(text, depth, &err))
                    .flatten()
                {
                    Some(join) => self.handle(join),
                    None => self.send(&ServerMessage::Error(err.to_error_message())),
                }
            }
        }
    }

    fn send(&self, message: &ServerMessage) {
        self.conn.reply(Outbound::message(message));
    }

    fn handle(&mut self, request: ClientMessage) {
        let identity = self.conn.identity().clone();
        let conn = self.conn.clone();
        let ctx = OperationContext {
            connection_id: &conn.id,
            principal: &identity.principal,
            scopes: &identity.scopes.raw,
            request: &request,
        };
        let outcome = self
            .admit(&request, &identity)
            .and_then(|()| {
                self.state
                    .config
                    .hooks
                    .iter()
                    .try_for_each(|hook| hook.before(&ctx))
            })
            .and_then(|()| self.dispatch(&request, &identity));
        let reply = outcome.unwrap_or_else(|body| {
            Reply::from(ServerMessage::Error(ErrorMessage {
                id: Some(request.id().clone()),
                error: with_retry(body),
                server_time: None,
            }))
        });
        for hook in &self.state.config.hooks {
            hook.after(&ctx, &reply.message);
        }
        if !reply.queued {
            self.send(&reply.message);
        }
    }

    /// Refuses a request of a profile the server does not serve, and every
    /// request but `auth` and `ping` before a required authentication.
    fn admit(&self, request: &ClientMessage, identity: &Identity) -> Result<(), ErrorBody> {
        if let Some(reason) = self.state.unserved(request.profile()) {
            return Err(error(ErrorCode::NotSupported, reason));
        }
        let gated = self.state.config.auth_mode == AuthMode::Required
            && !identity.authenticated
            && !matches!(request, ClientMessage::Auth(_) | ClientMessage::Ping(_));
        if gated {
            return Err(error(
                ErrorCode::Unauthorized,
                "authenticate with `auth` first",
            ));
        }
        Ok(())
    }

    pub fn check_subscription_limit(&self) -> Result<(), ErrorBody> {
        let max = self.state.config.max_subscriptions as usize;
        let held = self.subscriptions.len().saturating_sub(usize::from(
            self.state.config.faults.subscription_cap_one_over,
        ));
        if held >= max {
            return Err(error_with(
                ErrorCode::LimitExceeded,
                format!("at most {max} subscriptions per connection"),
                "limit",
                "max_subscriptions",
            ));
        }
        Ok(())
    }

    /// The database and collection a records or vector request names, the
    /// connection's endpoint binding filling in what it omits (section 2.7).
    pub fn namespace(
        &self,
        database: &Option<CollectionName>,
        collection: &Option<CollectionName>,
    ) -> Result<(CollectionName, CollectionName), ErrorBody> {
        crate::endpoints::resolve(
            self.bound.as_ref(),
            &self.state.config.faults,
            database.as_ref(),
            collection.as_ref(),
        )
    }

    /// A fresh subscription: its key in the registries and its id on the wire.
    pub fn new_subscription_id(&mut self) -> (u64, String) {
        let key = self.next_subscription;
        self.next_subscription += 1;
        (key, self.state.choices.subscription_id(self.conn.num, key))
    }

    /// Removes everything the connection holds; room members see it leave as disconnected.
    pub fn finish(&mut self) {
        let conn = self.conn.num;
        self.state.store.write().drop_connection(conn);
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
