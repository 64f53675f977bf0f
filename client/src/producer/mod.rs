//! The producer: records are routed to a partition (explicit, murmur2 of the
//! key, or round robin), gathered per partition into batches closed by size
//! (`batch_bytes_max`, a hard cap on the encoded batch: only a record larger
//! than it on its own makes a larger batch, of one) or age (`linger`),
//! compressed, and sent by one task per partition with up to `in_flight_max`
//! requests outstanding on the leader's connection.
//!
//! Idempotence (default): the producer gets an id from InitProducerId and
//! numbers every record per partition; a failed batch is resent with the
//! batches after it, in order and with the same sequences, so the broker
//! de-duplicates what it already had and nothing is reordered. A real gap
//! (OUT_OF_ORDER_SEQUENCE_NUMBER or UNKNOWN_PRODUCER_ID on the oldest batch)
//! bumps the epoch and renumbers every waiting batch from 0, in order. A
//! batch of several records refused as too large (MESSAGE_TOO_LARGE,
//! RECORD_LIST_TOO_LARGE) is split in two halves that share its sequence
//! range and are sent in its place; a single record refused so fails with
//! [`ClientError::is_record_too_large`], and the batches behind it take over
//! its sequences (no epoch bump).
//! Retries go on with capped backoff
//! until `delivery_timeout` (forever when `None`), logging state changes, not
//! every retry. Memory is bounded by `buffer_bytes_max`: `send` waits.
//!
//! Two ways in: [`Producer::send`], a record at a time with its own
//! [`Delivery`], and [`Producer::send_batch`], many records of one topic
//! with one [`BatchDelivery`] for all of them (one budget share and one
//! answer per call; keyless records of a call stick to one partition, as
//! Kafka's sticky partitioner does, so they fill one batch). Both meet in
//! the same partition workers, so retries, splits and idempotence are the
//! same for both.
//!
//! This file owns the handle callers hold ([`Producer`]): routing, the
//! buffer budget, one worker per partition, `flush`. It never batches or
//! sends records itself.
//!
//! # Layout
//! - `config`: [`ProducerConfig`] and codec names.
//! - `record`: [`ProducerRecord`], [`BatchRecord`], [`Delivery`],
//!   [`BatchDelivery`], [`RecordMetadata`], and what answers a queued record.
//! - `inbox`: a worker's queue, runs of records taken one at a time.
//! - `worker`: one partition's batching, in-flight requests and retries.
//! - `open_batch`: the batch being filled, and the size rule that closes it.
//! - `batch_size`: the encoded size of a batch, counted as it fills.
//! - `sticky`: which headers go on the wire when `sticky_header_keys` lets
//!   a record leave a header equal to the previous record's to the consumer.
//! - `retry`: the retry policy as pure decisions.
//! - `batch`: a closed batch, its encoding and its split in two.
//! - `sequence`: producer id, epoch and per-partition sequences.
//! - `shared`: the state every worker shares (identity, unresolved count).

mod batch;
mod batch_size;
mod config;
mod inbox;
mod open_batch;
mod record;
mod retry;
mod sequence;
mod shared;
mod sticky;
mod worker;

pub use config::{parse_compression, ProducerConfig, BATCH_BYTES_MAX_DEFAULT, KAFKA_MESSAGE_BYTES_MAX_DEFAULT};
pub use record::{BatchDelivery, BatchRecord, Delivery, Header, ProducerRecord, RecordMetadata};
pub use retry::RETRIES_METRIC;

use crate::backoff::Backoff;
use crate::cluster::Cluster;
use crate::error::{ClientError, Result};
use crate::partitioner::partition_for_key;
use inbox::Inbox;
use parking_lot::Mutex;
use record::{BatchAnswers, Outgoing, Queued, Resolver, TIMESTAMP_UNSET};
use retry::BACKOFF_MIN;
use shared::Shared;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, Semaphore};
use worker::PartitionWorker;

/// Runs of records (one per `send`, one per partition of a `send_batch`)
/// queued per partition task before a send waits for it.
const PARTITION_QUEUE_RUNS_MAX: usize = 10_000;
/// Where runs of records go to one partition's worker.
type RunSender = mpsc::Sender<Vec<Queued>>;

pub struct Producer {
    shared: Arc<Shared>,
    /// Each topic's partition workers, by partition index.
    partitions: Mutex<HashMap<String, Vec<Option<RunSender>>>>,
    round_robin: AtomicUsize,
    budget: Arc<Semaphore>,
}

impl Producer {
    /// A producer on `cluster`; with idempotence it first gets a producer id.
    pub async fn new(cluster: Arc<Cluster>, config: ProducerConfig) -> Result<Self> {
        let budget = Arc::new(Semaphore::new(config.buffer_bytes_max.max(config.batch_bytes_max)));
        let shared = Arc::new(Shared::new(cluster, config));
        if shared.config.idempotent {
            shared.init_producer_id(None).await?;
        }
        Ok(Self {
            shared,
            partitions: Mutex::new(HashMap::new()),
            round_robin: AtomicUsize::new(0),
            budget,
        })
    }

    /// Queues a record; waits while `buffer_bytes_max` is in use.
    pub async fn send(&self, record: ProducerRecord) -> Result<Delivery> {
        let partition = self.route(&record).await?;
        let sender = self.partition_sender(&record.topic, partition);
        let record = BatchRecord::from(record);
        let permit = self.reserve(record.budget_bytes()).await;
        let (delivery, receiver) = oneshot::channel();
        // Records without a timestamp get one when their partition worker
        // takes them in (one clock read per drain, not per record).
        let timestamp_ms = record.timestamp_ms.unwrap_or(TIMESTAMP_UNSET);
        self.shared.unresolved.fetch_add(1, Ordering::AcqRel);
        let queued = Queued {
            record: Outgoing::from(record),
            timestamp_ms,
            resolver: Resolver::One {
                delivery,
                _permit: permit,
            },
        };
        if sender.send(vec![queued]).await.is_err() {
            self.shared.unresolved.fetch_sub(1, Ordering::AcqRel);
            return Err(ClientError::Invalid("the producer is closed".into()));
        }
        Ok(Delivery(receiver))
    }

    /// Queues `records` for `topic` (to `partition`, or by key, or keyless
    /// ones all to the next partition in turn) and answers once for all of
    /// them: the [`BatchDelivery`] resolves when the last is acknowledged or
    /// finally failed, with one result per record in the order given. Waits
    /// while `buffer_bytes_max` is in use; the batch's share is held until
    /// its answer. Errors only when the topic cannot be produced to at all
    /// (unknown, no such partition, producer closed): then nothing is queued.
    pub async fn send_batch(
        &self,
        topic: &str,
        partition: Option<i32>,
        records: Vec<BatchRecord>,
    ) -> Result<BatchDelivery> {
        if records.is_empty() {
            return Ok(BatchDelivery { answers: None });
        }
        let partitions = self.partition_count(topic).await?;
        if partitions == 0 {
            return Err(ClientError::UnknownTopic(topic.to_owned()));
        }
        if let Some(partition) = partition.filter(|p| !(0..partitions as i32).contains(p)) {
            return Err(ClientError::Invalid(format!(
                "topic {topic} has no partition {partition}"
            )));
        }
        let sticky = (self.round_robin.fetch_add(1, Ordering::Relaxed) % partitions) as i32;
        let bytes = records.iter().map(BatchRecord::budget_bytes).sum();
        let permit = self.reserve(bytes).await;
        let (answers, delivery) = BatchAnswers::new(records.len(), permit);
        // Each partition's records, in the order given.
        let mut runs: Vec<(i32, Vec<Queued>)> = Vec::new();
        for (index, record) in records.into_iter().enumerate() {
            let target = match (partition, &record.key) {
                (Some(partition), _) => partition,
                (None, Some(key)) => partition_for_key(key, partitions),
                (None, None) => sticky,
            };
            let queued = Queued {
                timestamp_ms: record.timestamp_ms.unwrap_or(TIMESTAMP_UNSET),
                record: Outgoing::from(record),
                resolver: Resolver::Batch {
                    answers: Arc::clone(&answers),
                    index,
                },
            };
            match runs.iter_mut().find(|(p, _)| *p == target) {
                Some((_, run)) => run.push(queued),
                None => runs.push((target, vec![queued])),
            }
        }
        drop(answers);
        let queued: usize = runs.iter().map(|(_, run)| run.len()).sum();
        self.shared.unresolved.fetch_add(queued, Ordering::AcqRel);
        for (partition, run) in runs {
            let sender = self.partition_sender(topic, partition);
            if let Err(refused) = sender.send(run).await {
                // Only a worker that is gone refuses: answer its records
                // (and so the batch) with the error rather than never.
                for queued in refused.0 {
                    self.shared
                        .resolve(queued, Err(ClientError::Invalid("the producer is closed".into())));
                }
            }
        }
        Ok(delivery)
    }

    /// Takes `bytes` of the buffer budget (at most all of it), waiting
    /// while it is in use.
    async fn reserve(&self, bytes: usize) -> tokio::sync::OwnedSemaphorePermit {
        let permits = bytes.min(self.shared.config.buffer_bytes_max) as u32;
        Arc::clone(&self.budget)
            .acquire_many_owned(permits)
            .await
            .expect("the budget is never closed")
    }

    /// The record's partition: its own, else its key's, else the next in turn.
    async fn route(&self, record: &ProducerRecord) -> Result<i32> {
        let partitions = self.partition_count(&record.topic).await?;
        if partitions == 0 {
            return Err(ClientError::UnknownTopic(record.topic.clone()));
        }
        Ok(match (record.partition, &record.key) {
            (Some(partition), _) if (0..partitions as i32).contains(&partition) => partition,
            (Some(partition), _) => {
                return Err(ClientError::Invalid(format!(
                    "topic {} has no partition {partition}",
                    record.topic
                )))
            }
            (None, Some(key)) => partition_for_key(key, partitions),
            (None, None) => (self.round_robin.fetch_add(1, Ordering::Relaxed) % partitions) as i32,
        })
    }

    /// The topic's metadata; while the cluster is unreachable this waits and
    /// retries like every other send path (until the delivery timeout, or
    /// forever without one), so a record is never refused for a passing outage.
    async fn partition_count(&self, topic: &str) -> Result<usize> {
        if let Some(count) = self.shared.cluster.cached_partition_count(topic) {
            return Ok(count);
        }
        let started = Instant::now();
        let mut backoff = Backoff::new(BACKOFF_MIN, self.shared.config.retry_backoff_max);
        let mut logged = false;
        loop {
            match self.shared.cluster.topic(topic, true).await {
                Ok(metadata) => return Ok(metadata.leaders.len()),
                Err(error) if error.is_retriable() => {
                    if self
                        .shared
                        .config
                        .delivery_timeout
                        .is_some_and(|timeout| started.elapsed() >= timeout)
                    {
                        return Err(error);
                    }
                    metrics::counter!(RETRIES_METRIC, "topic" => topic.to_owned()).increment(1);
                    if !logged {
                        tracing::warn!(topic, %error, "no metadata for the topic; retrying with backoff");
                        logged = true;
                    }
                    backoff.sleep().await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn partition_sender(&self, topic: &str, partition: i32) -> RunSender {
        let mut partitions = self.partitions.lock();
        let index = partition as usize;
        if let Some(Some(sender)) = partitions.get(topic).and_then(|workers| workers.get(index)) {
            return sender.clone();
        }
        let workers = partitions.entry(topic.to_owned()).or_default();
        if workers.len() <= index {
            workers.resize(index + 1, None);
        }
        let (sender, receiver) = mpsc::channel(PARTITION_QUEUE_RUNS_MAX);
        let worker = PartitionWorker::new(Arc::clone(&self.shared), topic.to_owned(), partition);
        tokio::spawn(worker.run(Inbox::new(receiver)));
        workers[index] = Some(sender.clone());
        sender
    }

    /// Returns once every record sent so far is acknowledged or failed.
    pub async fn flush(&self) {
        loop {
            let notified = self.shared.resolved.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.unresolved.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Records sent but not yet acknowledged or failed.
    pub fn unresolved(&self) -> usize {
        self.shared.unresolved.load(Ordering::Acquire)
    }
}
