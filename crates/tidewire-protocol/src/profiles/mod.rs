//! The message structs, one module per profile. Their `type` tags, profiles and
//! replies are registered in one table, in `messages.rs`.

mod auth;
mod collab;
mod core;
mod records;
mod rooms;
mod stats;
mod topics;
mod vector;
mod watch;

pub use self::auth::*;
pub use self::collab::*;
pub use self::core::*;
pub use self::records::*;
pub use self::rooms::*;
pub use self::stats::*;
pub use self::topics::*;
pub use self::vector::*;
pub use self::watch::*;
