//! One file per `relay` subcommand; `client` holds what the client-side
//! commands share (connecting, positions, error reporting).

pub mod broker;
pub mod client;
pub mod consume;
pub mod gen_events;
pub mod groups;
pub mod hash_password;
pub mod lag;
pub mod load;
pub mod produce;
pub mod send;
pub mod status;
pub mod topics;
pub mod up;
