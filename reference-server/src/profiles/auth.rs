//! The auth profile's request: `auth`, which verifies a token and sets the
//! connection's identity for the requests after it.

use tidewire_protocol::{Auth, Authenticated, ErrorBody, ErrorCode, ServerMessage};

use super::Reply;
use crate::outbound::Outbound;
use crate::session::Session;
use crate::util::{error, timestamp};

pub(super) fn authenticate(session: &mut Session, auth: &Auth) -> Result<Reply, ErrorBody> {
    let verified = session
        .state
        .auth
        .verify(&auth.token)
        .map_err(|err| error(ErrorCode::Unauthorized, err.to_string()))?;
    let mut identity = session.conn.identity_mut();
    if identity.authenticated && identity.principal != verified.principal {
        return Err(error(
            ErrorCode::Forbidden,
            format!(
                "the connection is authenticated as {:?}; a token for another principal cannot replace it",
                identity.principal
            ),
        ));
    }
    let previous_scopes = identity.scopes.clone();
    *identity = verified;
    let reply = ServerMessage::Authenticated(Authenticated {
        id: auth.id.clone(),
        principal: identity.principal.clone(),
        scopes: identity.scopes.raw.clone(),
        expires_at: identity.expires_at.map(timestamp),
        ttl_ms: identity.expires_at.map(|at| {
            at.duration_since(std::time::SystemTime::now())
                .map_or(0, |left| {
                    u64::try_from(left.as_millis()).unwrap_or(u64::MAX)
                })
        }),
    });
    if session.state.config.faults.reauth_keeps_scopes {
        identity.scopes = previous_scopes;
    }
    let scopes = identity.scopes.clone();
    drop(identity);
    // The reply goes first: the ends it causes follow it.
    session.conn.reply(Outbound::message(&reply));
    session.end_disallowed(&scopes);
    Ok(Reply {
        message: reply,
        queued: true,
    })
}
