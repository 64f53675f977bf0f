//! relay-broker: Relay's single-node, Kafka-protocol log broker, as a library
//! that the `relay` binary and the tests embed.
//!
//! # Layout
//! - [`log`]: the storage engine. A partition is a directory of segments of
//!   record batches exactly as producers sent them, with sparse offset and time
//!   indexes, group-committed fsyncs, crash recovery, retention and idempotent
//!   producer state. It knows nothing of the network.
//!
//! Layers look only down: the server (Kafka wire protocol) is built on `log`,
//! never the other way round.

pub mod config;
pub mod group;
pub mod log;
pub mod meta;
pub mod topics;
