//! relay-client: a Kafka-protocol client built on the `kafka-protocol`
//! crate. It talks to `relay broker` and to any Kafka or Redpanda cluster.
//!
//! # Layout
//! - [`connection`]: one TCP connection to one broker: pipelined requests,
//!   responses matched by correlation id, request timeouts, version choice.
//! - [`cluster`]: bootstrap, metadata (brokers, topics, leaders), one
//!   connection per broker with reconnects, the expected cluster id.
//! - [`producer`]: batching by size and linger, compression, idempotence
//!   (sequences, ordered retries), partitioning, `flush`. `producer/mod.rs`
//!   is the handle (routing, buffer budget, `flush`); `worker.rs` one
//!   partition's batching and in-flight requests; `retry.rs` the retry
//!   policy; `sequence.rs` producer id, epoch and sequences; `batch.rs` a
//!   closed batch, its encoding and its split when refused as too large;
//!   `open_batch.rs` the batch being filled, closed before it would pass
//!   `batch_bytes_max`; `batch_size.rs` its encoded size as it fills;
//!   `shared.rs` what the workers share.
//! - [`partitioner`]: Kafka's murmur2, so keys land where Java clients put them.
//! - [`consumer`]: group membership (range assignment, heartbeats), fetching,
//!   positions and commits; or manual assignment without a group.
//!   `consumer/mod.rs` is the handle (polling, assignment, commits);
//!   `group.rs` join, sync, heartbeat and leave; `fetch.rs` positions,
//!   Fetch requests and out-of-range resets.
//! - [`assignor`]: the consumer protocol messages and the range assignor.
//! - [`offsets`]: ListOffsets, OffsetFetch and OffsetCommit helpers.
//! - [`records`]: decoding fetched batches (every codec) into a poll's
//!   [`Records`](records::Records), which own the fetched buffers and lend
//!   [`RecordView`](records::RecordView)s; `records/view.rs` the views and
//!   the owned [`ConsumerRecord`](records::ConsumerRecord) made on request.
//! - [`admin`]: topics, groups, offsets.
//! - [`settings`]: [`ClientSettings`], the `[client]` section and its flags, and start positions.
//! - [`time`]: RFC 3339 timestamps for `--from time:...`.
//! - [`types`]: [`TopicPartition`] and [`StartPosition`], shared by the
//!   consumer, the admin client, the offsets helpers and the assignor.
//! - [`error`]: [`ClientError`], the one error type of this layer.
//! - [`backoff`]: [`Backoff`](backoff::Backoff), the capped doubling delay
//!   of every retry loop (this crate's, the sender's, the loader's).
//!
//! Layers look only down: producer/consumer/admin → offsets/assignor/records
//! → cluster → connection, all of them on types and error. Producer,
//! consumer and admin never use one another.

pub mod admin;
pub mod assignor;
pub mod backoff;
pub mod cluster;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod offsets;
pub mod partitioner;
pub mod permissions;
pub mod producer;
pub mod records;
pub mod security;
pub mod settings;
pub mod time;
pub mod types;

pub use cluster::{Cluster, ClusterConfig};
pub use error::{ClientError, Result};
pub use settings::ClientSettings;
pub use types::{StartPosition, TopicPartition};
