//! What every handler shares: topics, the group coordinator, producer ids,
//! the cluster identity, and the signal that new data became readable.

use crate::config::BrokerConfig;
use crate::group::coordinator::Coordinator;
use crate::meta::ProducerIds;
use crate::security::Security;
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
}

pub type Context = Arc<BrokerContext>;
