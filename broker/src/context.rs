//! The broker's shared state, one per running broker behind an [`Arc`]:
//! the topics, the group coordinator, producer ids, the cluster identity,
//! the request-memory budget, security, and the signal that new data became
//! readable. The server's handlers, the metrics and the health check all read
//! it; the broker builds it at start and closes what it holds at shutdown.
//!
//! It holds state and hands it out; it never speaks the wire protocol and
//! never runs background work (that is [`crate::server`] and
//! [`crate::broker`], the layers above it). It is where groups meet topics:
//! the group offsets answer retention's question of how far protected groups
//! have read ([`CommittedOffsets`]), which neither layer may ask the other.

use crate::config::BrokerConfig;
use crate::group::coordinator::Coordinator;
use crate::group::offset_store::OffsetStore;
use crate::health::Health;
use crate::meta::ProducerIds;
use crate::security::Security;
use crate::topics::retention::CommittedOffsets;
use crate::topics::Topics;
use std::sync::Arc;
use tokio::sync::{Notify, Semaphore};

/// The single broker's node id; Relay's broker is one node.
pub const NODE_ID: i32 = 0;

pub struct BrokerContext {
    pub config: BrokerConfig,
    pub cluster_id: String,
    /// Host and port clients are told to connect to (Metadata, FindCoordinator).
    pub advertised_host: String,
    pub advertised_port: i32,
    pub topics: Arc<Topics>,
    pub coordinator: Arc<Coordinator>,
    pub producer_ids: Arc<ProducerIds>,
    /// Woken whenever a partition's readable end moves, for long-poll fetches.
    pub data_visible: Notify,
    /// The broker-wide budget of request bytes in flight
    /// (`requests_memory_bytes_max` permits, one per byte).
    pub request_memory: Arc<Semaphore>,
    /// TLS and SASL of the listener.
    pub security: Security,
}

impl BrokerContext {
    pub fn wake_fetchers(&self) {
        self.data_visible.notify_waiters();
    }

    /// Which partitions, if any, refuse writes after a failed fsync.
    pub fn health(&self) -> Health {
        Health::of(&self.topics)
    }
}

pub type Context = Arc<BrokerContext>;

impl CommittedOffsets for OffsetStore {
    fn committed_offset(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        self.committed(group, topic, partition)
            .map(|committed| committed.offset)
    }
}
