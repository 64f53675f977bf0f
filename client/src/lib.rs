//! relay-client: a Kafka-protocol client built on the `kafka-protocol`
//! crate. It talks to `relay broker` and to any Kafka or Redpanda cluster.
//!
//! # Layout
//! - [`connection`]: one TCP connection to one broker: pipelined requests,
//!   responses matched by correlation id, request timeouts, version choice.
//! - [`cluster`]: bootstrap, metadata (brokers, topics, leaders), one
//!   connection per broker with reconnects, the expected cluster id.
//! - [`producer`]: batching by size and linger, compression, idempotence
//!   (sequences, ordered retries), partitioning, `flush`.
//! - [`partitioner`]: Kafka's murmur2, so keys land where Java clients put them.
//! - [`consumer`]: group membership (range assignment, heartbeats), fetching,
//!   positions and commits; or manual assignment without a group.
//! - [`assignor`]: the consumer protocol messages and the range assignor.
//! - [`offsets`]: ListOffsets, OffsetFetch and OffsetCommit helpers.
//! - [`records`]: decoding fetched batches (every codec) into records.
//! - [`admin`]: topics, groups, offsets.
//! - [`sender`]: the file sender behind `relay send`.
//! - [`time`]: RFC 3339 timestamps for `--from time:...`.
//! - [`error`]: [`ClientError`], the one error type of this layer.
//!
//! Layers look only down: producer/consumer/admin → cluster → connection.

pub mod admin;
pub mod assignor;
pub mod cluster;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod offsets;
pub mod partitioner;
pub mod producer;
pub mod records;
pub mod security;
pub mod sender;
pub mod time;

pub use cluster::{Cluster, ClusterConfig};
pub use error::{ClientError, Result};
