//! What a caller hands the producer ([`ProducerRecord`]) and gets back
//! ([`Delivery`], resolving to [`RecordMetadata`]), and [`Queued`], a record
//! on its way to a partition worker with the buffer budget it holds. Never
//! sends anything: workers do.

use crate::error::{ClientError, Result};
use bytes::Bytes;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

/// A queued record's timestamp before its worker stamps it.
pub(super) const TIMESTAMP_UNSET: i64 = i64::MIN;

/// A record to produce.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    pub timestamp_ms: Option<i64>,
}

/// Where an acknowledged record went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    pub partition: i32,
    /// -1 with acks = 0.
    pub offset: i64,
}

/// Resolves when the record is acknowledged (or finally failed).
pub struct Delivery(pub(super) oneshot::Receiver<Result<RecordMetadata>>);

impl Delivery {
    pub async fn wait(self) -> Result<RecordMetadata> {
        self.0
            .await
            .unwrap_or_else(|_| Err(ClientError::Invalid("the producer was dropped".into())))
    }
}

/// A record in a partition worker's hands: its answer channel and the share
/// of `buffer_bytes_max` it holds until it is resolved (dropped).
pub(super) struct Queued {
    pub record: ProducerRecord,
    pub timestamp_ms: i64,
    pub delivery: oneshot::Sender<Result<RecordMetadata>>,
    pub _permit: OwnedSemaphorePermit,
}

/// A queued record for unit tests: its own budget permit, a dropped answer channel.
#[cfg(test)]
pub(super) fn queued_for_test(record: ProducerRecord, timestamp_ms: i64) -> Queued {
    let budget = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
    Queued {
        record,
        timestamp_ms,
        delivery: oneshot::channel().0,
        _permit: budget.try_acquire_owned().expect("one permit"),
    }
}
