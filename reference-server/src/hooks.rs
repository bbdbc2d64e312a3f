//! Seams for embedding applications and fault-injection harnesses.
//!
//! * [`Hooks`] run before and after every client request. `before` may reject
//!   the request with any error body (authorization, validation, injected
//!   faults); `after` observes the reply.
//! * [`OutboundFilter`] sees every server message just before it is written to
//!   a connection and decides what is written instead: the message, nothing
//!   (drop), several messages (duplicate, or release held ones to reorder),
//!   altered messages (mutate), or messages after a pause (delay).

use std::time::Duration;

use tidewire_protocol::{ClientMessage, ErrorBody, Object, ServerMessage};

/// The request a hook is asked about, and who sent it.
#[derive(Debug)]
pub struct OperationContext<'a> {
    pub connection_id: &'a str,
    pub principal: &'a str,
    /// The scopes of the connection as granted (the raw strings).
    pub scopes: &'a [String],
    pub request: &'a ClientMessage,
}

/// Runs around every decoded client request, in registration order.
///
/// `before` runs after decoding, rate limiting and the authentication gate,
/// and before the server's own checks; returning `Err` sends that error as the
/// reply and skips the operation. `after` runs once the reply is known
/// (success or error), before it is queued for the client.
pub trait Hooks: Send + Sync + 'static {
    fn before(&self, ctx: &OperationContext<'_>) -> Result<(), ErrorBody> {
        let _ = ctx;
        Ok(())
    }

    fn after(&self, ctx: &OperationContext<'_>, outcome: &ServerMessage) {
        let _ = (ctx, outcome);
    }
}

/// A `before` hook made from a closure.
pub(crate) struct BeforeFn<F>(pub F);

impl<F> Hooks for BeforeFn<F>
where
    F: Fn(&OperationContext<'_>) -> Result<(), ErrorBody> + Send + Sync + 'static,
{
    fn before(&self, ctx: &OperationContext<'_>) -> Result<(), ErrorBody> {
        (self.0)(ctx)
    }
}

/// An `after` hook made from a closure.
pub(crate) struct AfterFn<F>(pub F);

impl<F> Hooks for AfterFn<F>
where
    F: Fn(&OperationContext<'_>, &ServerMessage) + Send + Sync + 'static,
{
    fn after(&self, ctx: &OperationContext<'_>, outcome: &ServerMessage) {
        (self.0)(ctx, outcome)
    }
}

/// One message an [`OutboundFilter`] wants written, optionally after a pause.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub message: ServerMessage,
    /// Wait this long before writing it. The connection's writer waits, so
    /// everything queued behind it waits too.
    pub delay: Duration,
}

impl Outgoing {
    pub fn now(message: ServerMessage) -> Outgoing {
        Outgoing {
            message,
            delay: Duration::ZERO,
        }
    }

    pub fn after(delay: Duration, message: ServerMessage) -> Outgoing {
        Outgoing { message, delay }
    }
}

/// Decides, per connection, what is written in place of each server message.
///
/// Called on the connection's writer task for every message, in queue order
/// (welcome, replies, pushes, heartbeats, notices). The close frame itself is
/// not a message and does not pass through here. Return `vec![Outgoing::now(message)]`
/// to pass it through unchanged and `vec![]` to drop it; keep state in the
/// filter (keyed by `connection_id`) to hold a message back and release it later.
pub trait OutboundFilter: Send + Sync + 'static {
    fn filter(&self, connection_id: &str, message: ServerMessage) -> Vec<Outgoing>;
}

impl<F> OutboundFilter for F
where
    F: Fn(&str, ServerMessage) -> Vec<Outgoing> + Send + Sync + 'static,
{
    fn filter(&self, connection_id: &str, message: ServerMessage) -> Vec<Outgoing> {
        self(connection_id, message)
    }
}

/// Row-level authorization (section 8.5 of the specification): which records
/// a principal may see. A record it may not see is treated as absent by
/// `read` and by every watch of that principal.
///
/// Called under the store lock, once per record a `read` considers and up to
/// twice per watch and change (the record before and after it), so it must
/// decide from its arguments alone and quickly, like a filter: no I/O, no
/// locks of its own that a request could hold.
pub trait RecordVisibility: Send + Sync + 'static {
    fn visible(&self, principal: &str, database: &str, collection: &str, record: &Object) -> bool;
}

impl<F> RecordVisibility for F
where
    F: Fn(&str, &str, &str, &Object) -> bool + Send + Sync + 'static,
{
    fn visible(&self, principal: &str, database: &str, collection: &str, record: &Object) -> bool {
        self(principal, database, collection, record)
    }
}
