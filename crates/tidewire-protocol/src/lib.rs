//! The Tidewire v1 wire protocol: every message as a Rust type, the error
//! registry, the close-code table, and frame decoding.
//!
//! This crate is the single source of truth for message shapes. The JSON
//! Schemas in `spec/schema/` are generated from these types (see [`schema`]),
//! and the reference server and the conformance tooling use them as they are.
//!
//! ```
//! use tidewire_protocol::{decode_client_message, ClientMessage, Pong, RequestId, ServerMessage};
//!
//! let message = decode_client_message(r#"{"type":"ping","id":"42"}"#, 32).unwrap();
//! let ClientMessage::Ping(ping) = message else { unreachable!() };
//! let reply = ServerMessage::from(Pong { id: ping.id, payload: ping.payload });
//! assert_eq!(reply.to_json(), r#"{"type":"pong","id":"42"}"#);
//! ```

#[cfg(any(test, feature = "arbitrary"))]
pub mod arbitrary;
pub mod asyncapi;
mod decode;
mod error;
mod event_paths;
mod extension_code;
mod lenient;
mod member_info;
mod messages;
mod names;
mod profiles;
pub mod requirements;
pub mod schema;
pub mod session;
mod types;

#[cfg(test)]
mod tests;

pub use decode::{decode_client_message, nesting_depth, DecodeError, MAX_PARSER_NESTING_DEPTH};
pub use error::{close_code_allowed_on_wire, close_reason_delay, CloseCode, ErrorCode, Recovery};
pub use event_paths::{check_event_path, UnresolvablePath};
pub use extension_code::{AnyErrorCode, ExtensionCode};
pub use lenient::MAX_INTEGER;
pub use member_info::{DisplayName, InvalidMemberInfo, MemberMetadata};
pub use messages::*;
pub use names::{CollectionName, InvalidName, Name, RequestId};
pub use profiles::*;
pub use types::*;

/// The WebSocket subprotocol a Tidewire v1 server selects.
pub const SUBPROTOCOL: &str = "tidewire.v1";

/// The value of `welcome.protocol`.
pub const PROTOCOL_VERSION: &str = "tidewire.v1";
