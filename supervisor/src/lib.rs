//! relay-supervisor: what turns the libraries into running roles. The
//! `relay` binary parses flags and calls this crate; `relay broker`, `relay
//! send`, `relay load` and `relay up` are one [`Supervisor`] each, with
//! different roles started.
//!
//! # Layout
//! - [`supervisor`]: [`Supervisor`]: starting the broker, senders, loaders and
//!   helper tasks; one stop policy ([`STOP_WAIT_MAX`]) for all of them.
//! - [`config`]: [`RelayConfig`], the TOML file, made of the libraries' own
//!   config types.
//! - [`observe`]: the Prometheus recorder, the hooks each role registers, and
//!   the HTTP endpoint serving `/metrics` and `/health`.
//! - [`scrape`]: the other side: reading a process's `/metrics` into samples
//!   (for `relay status`).
//! - [`generator`]: the event generator of `relay gen-events` and `relay up --gen-events`.
//! - [`signal`]: SIGTERM and SIGINT, the one way a long-running role is stopped.
//! - [`logging`]: log lines on stderr, text or JSON.
//! - [`error`]: [`SupervisorError`], the one error type of this layer.
//!
//! Layers look only down: this crate → relay-broker, relay-sender,
//! relay-loader → relay-client → relay-proto.

pub mod config;
pub mod error;
pub mod generator;
pub mod logging;
pub mod observe;
pub mod scrape;
pub mod signal;
pub mod supervisor;

pub use config::RelayConfig;
pub use error::{Result, SupervisorError};
pub use supervisor::{Supervisor, STOP_WAIT_MAX};
