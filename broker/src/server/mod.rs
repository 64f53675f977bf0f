//! The Kafka wire-protocol server: a tokio listener, one task pair per
//! connection (reader and in-order writer), and one handler file per API.
//!
//! # Layout
//! - [`listener`]: accepting, the connection limit, shutdown.
//! - [`connection`]: frames in, responses out in request order, pipelining.
//! - [`frame`]: the 4-byte length prefix and its limit.
//! - [`dispatch`]: request header decoding and routing to [`api`] handlers.
//! - [`request`]: what handlers share with dispatch: the request's header and
//!   sender, the reply, the dispatch error.
//! - [`versions`]: the APIs and versions served; ApiVersions advertises exactly this.
//! - [`errors`]: storage and topic errors as Kafka error codes.
//! - [`session`]: a connection's SASL state; what it may ask before authenticating.
//! - [`timing`]: each request's stages (queue, decode, handle or append and
//!   fsync wait, response) as histograms, and the slow-request log.
//!
//! Handlers look down only: `api/*` → [`crate::context`] (the state every
//! handler shares), `topics`, `group`, `log`. Bytes from the network are
//! never trusted: a malformed frame closes its own connection, never the
//! broker, and nothing here panics on input.

pub mod api;
pub mod connection;
pub mod dispatch;
pub mod errors;
pub mod frame;
pub mod listener;
pub mod request;
pub mod session;
pub mod timing;
pub mod versions;
