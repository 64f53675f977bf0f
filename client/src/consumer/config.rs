//! The consumer's settings ([`ConsumerConfig`]). Plain data: nothing here
//! talks to a broker.

use crate::types::StartPosition;
use bytes::Bytes;

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub group: Option<String>,
    pub topics: Vec<String>,
    pub start: StartPosition,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub fetch_wait_ms_max: i32,
    pub fetch_bytes_max: i32,
    pub partition_bytes_max: i32,
    pub commit_on_rebalance: bool,
    /// Where a partition without a position starts: the group's committed
    /// offset when it has one, or always the start position (a consumer that
    /// keeps its positions elsewhere, like the loader in the warehouse).
    pub resume: Resume,
    /// Header keys the producer may write once per run of equal values in
    /// a batch (`ProducerConfig::sticky_header_keys`): a record without one
    /// gets the latest value before it in its batch. Empty by default.
    pub sticky_header_keys: Vec<Bytes>,
}

/// Whether the broker's committed offsets say where partitions start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// The committed offset, else the start position (Kafka's behaviour).
    FromCommitted,
    /// Always the start position: committed offsets are only a mirror.
    FromStartPosition,
}

impl ConsumerConfig {
    pub fn new(topics: Vec<String>, group: Option<String>) -> Self {
        Self {
            group,
            topics,
            start: StartPosition::Earliest,
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            fetch_wait_ms_max: 500,
            fetch_bytes_max: 50 * 1024 * 1024,
            partition_bytes_max: 1024 * 1024,
            commit_on_rebalance: true,
            resume: Resume::FromCommitted,
            sticky_header_keys: Vec::new(),
        }
    }
}
