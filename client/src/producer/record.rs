//! What a caller hands the producer and gets back: one record at a time
//! ([`ProducerRecord`] → [`Delivery`]) or a batch of records for one topic
//! ([`BatchRecord`]s → one [`BatchDelivery`] for all of them), both
//! resolving to [`RecordMetadata`]. Also [`Queued`], a record on its way to a
//! partition worker with what answers it ([`Resolver`]). Never sends
//! anything: workers do.
//!
//! The batch path exists for callers that produce many small records (the
//! sender: one per log line): one answer per batch instead of one channel per
//! record, one share of the byte budget taken per batch, header names as
//! shared bytes (a `&'static` name costs nothing per record).

use crate::error::{ClientError, Result};
use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

/// A queued record's timestamp before its worker stamps it.
pub(super) const TIMESTAMP_UNSET: i64 = i64::MIN;

/// A record header: its name and its value (null allowed).
pub type Header = (Bytes, Option<Bytes>);

/// A record to produce, one at a time.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    pub timestamp_ms: Option<i64>,
}

/// A record of a batch handed to [`super::Producer::send_batch`]: the topic
/// and the partition rule are the batch's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Names as bytes: `Bytes::from_static(b"name")` costs nothing per record.
    pub headers: Vec<Header>,
    pub timestamp_ms: Option<i64>,
}

impl From<ProducerRecord> for BatchRecord {
    fn from(record: ProducerRecord) -> Self {
        Self {
            key: record.key,
            value: record.value,
            headers: record
                .headers
                .into_iter()
                .map(|(name, value)| (Bytes::from(name), value))
                .collect(),
            timestamp_ms: record.timestamp_ms,
        }
    }
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

/// Resolves when every record of a batch is acknowledged or finally failed:
/// one result per record, in the order they were given.
pub struct BatchDelivery {
    pub(super) answers: Option<oneshot::Receiver<Vec<Result<RecordMetadata>>>>,
}

impl BatchDelivery {
    pub async fn wait(self) -> Vec<Result<RecordMetadata>> {
        let Some(answers) = self.answers else {
            return Vec::new();
        };
        answers
            .await
            .unwrap_or_else(|_| vec![Err(ClientError::Invalid("the producer was dropped".into()))])
    }
}

/// The answers of one batch as its records resolve, across partitions; the
/// last one sends them all. Holds the batch's share of the byte budget until
/// then.
pub(super) struct BatchAnswers {
    state: Mutex<BatchState>,
    _permit: OwnedSemaphorePermit,
}

struct BatchState {
    results: Vec<Option<Result<RecordMetadata>>>,
    unresolved: usize,
    answer: Option<oneshot::Sender<Vec<Result<RecordMetadata>>>>,
}

impl BatchAnswers {
    pub fn new(records: usize, permit: OwnedSemaphorePermit) -> (Arc<Self>, BatchDelivery) {
        let (answer, receiver) = oneshot::channel();
        let answers = Arc::new(Self {
            state: Mutex::new(BatchState {
                results: (0..records).map(|_| None).collect(),
                unresolved: records,
                answer: Some(answer),
            }),
            _permit: permit,
        });
        let delivery = BatchDelivery {
            answers: Some(receiver),
        };
        (answers, delivery)
    }

    fn resolve(&self, index: usize, result: Result<RecordMetadata>) {
        let mut state = self.state.lock();
        let slot = &mut state.results[index];
        debug_assert!(slot.is_none(), "a record is resolved once");
        if slot.replace(result).is_none() {
            state.unresolved -= 1;
        }
        if state.unresolved == 0 {
            let results = std::mem::take(&mut state.results)
                .into_iter()
                .map(|result| result.expect("every record resolved"))
                .collect();
            if let Some(answer) = state.answer.take() {
                let _ = answer.send(results);
            }
        }
    }
}

/// Who hears how a queued record ended.
pub(super) enum Resolver {
    /// A record sent alone: its own channel and budget share.
    One {
        delivery: oneshot::Sender<Result<RecordMetadata>>,
        _permit: OwnedSemaphorePermit,
    },
    /// Record `index` of a batch.
    Batch { answers: Arc<BatchAnswers>, index: usize },
}

impl Resolver {
    pub fn resolve(self, result: Result<RecordMetadata>) {
        match self {
            Resolver::One { delivery, .. } => {
                let _ = delivery.send(result);
            }
            Resolver::Batch { answers, index } => answers.resolve(index, result),
        }
    }
}

/// What a partition worker encodes of a record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Outgoing {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

impl From<BatchRecord> for Outgoing {
    fn from(record: BatchRecord) -> Self {
        Self {
            key: record.key,
            value: record.value,
            headers: record.headers,
        }
    }
}

impl BatchRecord {
    /// Its charge against the producer's byte budget: key, value, headers
    /// and the structures that hold them, so tiny records still count
    /// (measured: a sender's RSS followed the budget only once these were
    /// charged).
    pub(super) fn budget_bytes(&self) -> usize {
        self.key.as_ref().map_or(0, Bytes::len)
            + self.value.as_ref().map_or(0, Bytes::len)
            + self
                .headers
                .iter()
                .map(|(name, value)| name.len() + value.as_ref().map_or(0, Bytes::len) + HEADER_OVERHEAD_BYTES)
                .sum::<usize>()
            + RECORD_OVERHEAD_BYTES
    }
}

/// Bytes charged per record beyond key, value and headers: the queued
/// record's own structures, its framing and a share of the batch header.
const RECORD_OVERHEAD_BYTES: usize = 160;
/// Bytes charged per header beyond its name and value: its slot in the
/// record's header list.
const HEADER_OVERHEAD_BYTES: usize = 64;

/// A record in a partition worker's hands, and who hears how it ended.
pub(super) struct Queued {
    pub record: Outgoing,
    pub timestamp_ms: i64,
    pub resolver: Resolver,
}

/// A queued record for unit tests: its own budget permit, a dropped answer channel.
#[cfg(test)]
pub(super) fn queued_for_test(record: ProducerRecord, timestamp_ms: i64) -> Queued {
    let budget = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
    Queued {
        record: Outgoing::from(BatchRecord::from(record)),
        timestamp_ms,
        resolver: Resolver::One {
            delivery: oneshot::channel().0,
            _permit: budget.try_acquire_owned().expect("one permit"),
        },
    }
}
