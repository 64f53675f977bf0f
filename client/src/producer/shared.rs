//! What one producer's partition workers share: the cluster, the config,
//! the producer id and epoch (got, and bumped after a lost sequence, with
//! InitProducerId as KIP-360 describes), and the count of records not yet
//! resolved that `flush` waits on. Never batches or sends records.

use super::config::ProducerConfig;
use super::record::{Queued, RecordMetadata};
use super::sequence::Identity;
use crate::cluster::Cluster;
use crate::error::Result;
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

pub(super) struct Shared {
    pub cluster: Arc<Cluster>,
    pub config: ProducerConfig,
    pub identity: Mutex<Identity>,
    /// Held while an InitProducerId is in flight, so one bump serves every
    /// partition that lost its sequence at the same time.
    identity_refresh: tokio::sync::Mutex<()>,
    pub unresolved: AtomicUsize,
    pub resolved: Notify,
}

impl Shared {
    pub fn new(cluster: Arc<Cluster>, config: ProducerConfig) -> Self {
        Self {
            cluster,
            config,
            identity: Mutex::new(Identity::NONE),
            identity_refresh: tokio::sync::Mutex::new(()),
            unresolved: AtomicUsize::new(0),
            resolved: Notify::new(),
        }
    }

    /// Gets a producer id, or bumps the epoch of `current` (KIP-360).
    pub async fn init_producer_id(&self, current: Option<Identity>) -> Result<()> {
        let _refreshing = self.identity_refresh.lock().await;
        if let Some(current) = current {
            if *self.identity.lock() != current {
                return Ok(()); // another partition already bumped it
            }
        }
        let connection = self.cluster.any_connection().await?;
        let version = connection.version(ApiKey::InitProducerId)?;
        let mut request = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000);
        if let (Some(current), true) = (current, version >= 3) {
            request.producer_id = ProducerId(current.producer_id);
            request.producer_epoch = current.epoch;
        }
        let response: InitProducerIdResponse = connection
            .start(ApiKey::InitProducerId, version, &request)
            .await?
            .response()
            .await?;
        crate::error::check(response.error_code, || "InitProducerId".to_owned())?;
        *self.identity.lock() = Identity {
            producer_id: response.producer_id.0,
            epoch: response.producer_epoch,
        };
        tracing::debug!(
            producer_id = response.producer_id.0,
            epoch = response.producer_epoch,
            "producer id"
        );
        Ok(())
    }

    /// Answers a record's `Delivery` (or its share of a `BatchDelivery`), and wakes `flush` after the last one.
    pub fn resolve(&self, queued: Queued, result: Result<RecordMetadata>) {
        queued.resolver.resolve(result);
        if self.unresolved.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.resolved.notify_waiters();
        }
    }
}
