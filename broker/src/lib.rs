//! relay-broker: Relay's single-node, Kafka-protocol log broker, as a library
//! that the `relay` binary and the tests embed.
//!
//! # Layout
//! - [`broker`]: [`broker::Broker`], a running broker: start, background work, clean shutdown.
//! - [`server`]: the Kafka wire protocol: listener, connections, one handler per API.
//! - [`context`]: [`context::BrokerContext`], the shared state every layer
//!   above reads: topics, groups, producer ids, cluster identity, limits.
//! - [`data_dir_lock`]: one broker per data directory (a lock file).
//! - [`group`]: consumer group coordination and durable committed offsets.
//! - [`topics`]: which topics exist, creating and deleting them, per-partition
//!   upkeep, and retention that keeps what protected groups have not read.
//! - [`meta`]: the cluster id and producer id allocation, kept in the data directory.
//! - [`metrics`]: Prometheus metric names, and the state gauges computed at scrape time.
//! - [`health`]: [`health::Health`], the partitions that refuse writes after a failed fsync.
//! - [`security`]: the listener's TLS and the SASL users, loaded from config.
//! - [`config`]: the `[broker]` settings.
//! - [`log`]: the storage engine. A partition is a directory of segments of
//!   record batches exactly as producers sent them, with sparse offset and time
//!   indexes, group-committed fsyncs, crash recovery, retention and idempotent
//!   producer state. It knows nothing of the network.
//!
//! Layers look only down: `broker` → `server` → `metrics` → `context` →
//! `health` → (`group`, `topics`, `meta`, `security`) → `config` → `log`;
//! the wall clock is relay-proto's (`relay_proto::clock`).

pub mod broker;
pub mod config;
pub mod context;
pub mod data_dir_lock;
pub mod group;
pub mod health;
pub mod log;
pub mod meta;
pub mod metrics;
pub mod security;
pub mod server;
pub mod topics;
