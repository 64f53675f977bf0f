//! relay-broker: Relay's single-node, Kafka-protocol log broker, as a library
//! that the `relay` binary and the tests embed.
//!
//! # Layout
//! - [`broker`]: [`broker::Broker`], a running broker: start, background work, clean shutdown.
//! - [`server`]: the Kafka wire protocol: listener, connections, one handler per API.
//! - [`context`]: [`context::BrokerContext`], the shared state every layer
//!   above reads: topics, groups, producer ids, cluster identity, limits.
//! - [`error`]: [`error::BrokerError`], what can stop the broker from starting.
//! - [`data_dir_lock`]: one broker per data directory (a lock file).
//! - [`group`]: consumer group coordination and durable committed offsets.
//! - [`topics`]: which topics exist, creating and deleting them, per-partition
//!   upkeep, and retention that keeps what protected groups have not read.
//! - [`meta`]: the cluster id and producer id allocation, kept in the data directory.
//! - [`metrics`]: the state gauges computed at scrape time from the context
//!   (and every name of [`metric_names`], re-exported).
//! - [`health`]: [`health::Health`], the partitions that refuse writes after a failed fsync.
//! - [`security`]: the listener's TLS and the SASL users, loaded from config.
//! - [`metric_names`]: Prometheus metric names and help texts, and the
//!   helpers that record counters and histograms where the work happens.
//! - [`config`]: the `[broker]` settings, the grants among them.
//! - [`log`]: the storage engine. A partition is a directory of segments of
//!   record batches exactly as producers sent them, with sparse offset and time
//!   indexes, group-committed fsyncs, crash recovery, retention and idempotent
//!   producer state. It knows nothing of the network.
//!
//! Layers look only down: `broker` → `server` → `metrics` → `context` →
//! `health` → (`group`, `topics`, `meta`, `security`) → `metric_names`,
//! `config` → `log`; `broker` and `data_dir_lock` → `error`; the wall clock
//! is relay-proto's (`relay_proto::clock`).

pub mod broker;
pub mod config;
pub mod context;
pub mod data_dir_lock;
pub mod error;
pub mod group;
pub mod health;
pub mod log;
pub mod meta;
pub mod metric_names;
pub mod metrics;
pub mod security;
pub mod server;
pub mod topics;
