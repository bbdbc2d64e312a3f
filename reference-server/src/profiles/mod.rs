//! The request handlers, one module per profile. [`Session::dispatch`] is the
//! one place that maps a request to its handler; whether the server serves the
//! request's profile at all, the authentication gate and the hooks are settled
//! before it, in `session.rs`.

mod auth;
mod collab;
mod core;
mod records;
mod rooms;
mod stats;
mod topics;
mod vector;
mod watch;

use serde_json::Value;
use tidewire_filter::Filter;
use tidewire_protocol::{ClientMessage, ErrorBody, ErrorCode, ServerMessage};

use crate::auth::{Action, Identity, Scopes};
use crate::session::Session;
use crate::util::{error, invalid_at};

/// A successful outcome: the reply, and whether the handler already queued
/// it (handlers whose reply must precede their pushes queue it themselves).
pub(crate) struct Reply {
    pub message: ServerMessage,
    pub queued: bool,
}

impl From<ServerMessage> for Reply {
    fn from(message: ServerMessage) -> Reply {
        Reply {
            message,
            queued: false,
        }
    }
}

/// Who a request runs as, as far as its handler needs to know.
pub(crate) struct Caller<'a> {
    pub principal: &'a str,
    scopes: &'a Scopes,
    /// The `leak_across_scope` fault: every scope check passes.
    unchecked: bool,
}

impl Caller<'_> {
    /// The authorization check of every handler: `doing` completes the
    /// message of the `forbidden` error, e.g. "writing" or "posting to".
    pub fn require(&self, action: Action, target: &str, doing: &str) -> Result<(), ErrorBody> {
        if self.unchecked || self.scopes.allows(action, target) {
            return Ok(());
        }
        Err(error(
            ErrorCode::Forbidden,
            format!("missing the scope for {doing} {target}"),
        ))
    }
}

impl Session {
    /// Runs a request of a served profile, admitted past the gate and the hooks.
    pub(crate) fn dispatch(
        &mut self,
        request: &ClientMessage,
        identity: &Identity,
    ) -> Result<Reply, ErrorBody> {
        let caller = Caller {
            principal: &identity.principal,
            scopes: &identity.scopes,
            unchecked: self.state.config.faults.leak_across_scope,
        };
        let caller = &caller;
        match request {
            ClientMessage::Ping(ping) => Ok(core::ping(ping)),
            ClientMessage::Unsubscribe(m) => core::unsubscribe(self, m),
            ClientMessage::Auth(auth) => auth::authenticate(self, auth),
            ClientMessage::Create(m) => records::create(self, caller, m),
            ClientMessage::Read(m) => records::read(self, caller, m),
            ClientMessage::Update(m) => records::update(self, caller, m),
            ClientMessage::Delete(m) => records::delete(self, caller, m),
            ClientMessage::Watch(m) => watch::watch(self, caller, m),
            ClientMessage::Subscribe(m) => topics::subscribe(self, caller, m),
            ClientMessage::Publish(m) => topics::publish(self, caller, m),
            ClientMessage::Join(m) => rooms::join(self, caller, m),
            ClientMessage::Leave(m) => rooms::leave(self, m),
            ClientMessage::Post(m) => rooms::post(self, caller, m),
            ClientMessage::Typing(m) => rooms::typing(self, caller, m),
            ClientMessage::History(m) => rooms::history(self, caller, m),
            ClientMessage::Edit(m) => collab::edit(self, caller, m),
            ClientMessage::GetDocument(m) => collab::get_document(self, caller, m),
            ClientMessage::GetStats(m) => Ok(stats::get_stats(self, m)),
            ClientMessage::Search(m) => vector::search(self, caller, m),
        }
    }
}

/// A filter error as an `invalid_message` whose `details.path` starts at
/// `prefix`, the request field that carries the filter.
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
