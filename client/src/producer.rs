//! The producer: records are routed to a partition (explicit, murmur2 of the
//! key, or round robin), gathered per partition into batches closed by size
//! (`batch_bytes_max`) or age (`linger`), compressed, and sent by one task per
//! partition with up to `in_flight_max` requests outstanding on the leader's
//! connection.
//!
//! Idempotence (default): the producer gets an id from InitProducerId and
//! numbers every record per partition; a failed batch is resent with the
//! batches after it, in order and with the same sequences, so the broker
//! de-duplicates what it already had and nothing is reordered. A real gap
//! (OUT_OF_ORDER_SEQUENCE_NUMBER or UNKNOWN_PRODUCER_ID on the oldest batch)
//! bumps the epoch and renumbers from 0. Retries go on with capped backoff
//! until `delivery_timeout` (forever when `None`), logging state changes, not
//! every retry. Memory is bounded by `buffer_bytes_max`: `send` waits.

use crate::cluster::Cluster;
use crate::connection::{Connection, InFlight};
use crate::error::{ClientError, Result};
use crate::partitioner::partition_for_key;
use crate::time::now_ms;
use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit, Semaphore};

/// Records queued per partition task before `send` waits for it.
const PARTITION_QUEUE_RECORDS_MAX: usize = 10_000;
/// A queued record's timestamp before its worker stamps it.
const TIMESTAMP_UNSET: i64 = i64::MIN;
/// Prometheus counter of produce attempts retried after a retriable error
/// (a batch retried, or a topic's metadata asked again), by topic.
pub const RETRIES_METRIC: &str = "relay_producer_retries_total";
/// Bytes charged per record beyond key and value: the record framing and a
/// share of the batch header, so tiny records still count.
const RECORD_OVERHEAD_BYTES: usize = 64;

#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub linger: Duration,
    pub batch_bytes_max: usize,
    pub compression: Compression,
    pub idempotent: bool,
    /// -1 (all), 1 (leader) or 0 (no answer).
    pub acks: i16,
    pub in_flight_max: usize,
    /// Unacknowledged bytes held before `send` waits.
    pub buffer_bytes_max: usize,
    pub retry_backoff_max: Duration,
    /// Give up on a record after this long; `None` retries forever.
    pub delivery_timeout: Option<Duration>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            linger: Duration::from_millis(5),
            batch_bytes_max: 1024 * 1024,
            compression: Compression::None,
            idempotent: true,
            acks: -1,
            in_flight_max: 5,
            buffer_bytes_max: 32 * 1024 * 1024,
            retry_backoff_max: Duration::from_secs(5),
            delivery_timeout: None,
        }
    }
}

/// A codec by its command-line name: none, gzip, snappy, lz4 or zstd.
pub fn parse_compression(name: &str) -> std::result::Result<Compression, String> {
    Ok(match name {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => {
            return Err(format!(
                "unknown compression {other:?}; use none, gzip, snappy, lz4 or zstd"
            ))
        }
    })
}

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
pub struct Delivery(oneshot::Receiver<Result<RecordMetadata>>);

impl Delivery {
    pub async fn wait(self) -> Result<RecordMetadata> {
        self.0
            .await
            .unwrap_or_else(|_| Err(ClientError::Invalid("the producer was dropped".into())))
    }
}

struct Queued {
    record: ProducerRecord,
    timestamp_ms: i64,
    bytes: usize,
    delivery: oneshot::Sender<Result<RecordMetadata>>,
    _permit: OwnedSemaphorePermit,
}

#[derive(Debug, Clone, Copy)]
struct Identity {
    producer_id: i64,
    epoch: i16,
}

struct Shared {
    cluster: Arc<Cluster>,
    config: ProducerConfig,
    identity: Mutex<Identity>,
    identity_refresh: tokio::sync::Mutex<()>,
    unresolved: AtomicUsize,
    resolved: Notify,
}

pub struct Producer {
    shared: Arc<Shared>,
    /// Each topic's partition workers, by partition index.
    partitions: Mutex<HashMap<String, Vec<Option<mpsc::Sender<Queued>>>>>,
    round_robin: AtomicUsize,
    budget: Arc<Semaphore>,
}

impl Producer {
    /// A producer on `cluster`; with idempotence it first gets a producer id.
    pub async fn new(cluster: Arc<Cluster>, config: ProducerConfig) -> Result<Self> {
        let budget = Arc::new(Semaphore::new(config.buffer_bytes_max.max(config.batch_bytes_max)));
        let shared = Arc::new(Shared {
            cluster,
            config,
            identity: Mutex::new(Identity {
                producer_id: -1,
                epoch: -1,
            }),
            identity_refresh: tokio::sync::Mutex::new(()),
            unresolved: AtomicUsize::new(0),
            resolved: Notify::new(),
        });
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
        let partitions = self.partition_count(&record.topic).await?;
        if partitions == 0 {
            return Err(ClientError::UnknownTopic(record.topic));
        }
        let partition = match (record.partition, &record.key) {
            (Some(partition), _) if (0..partitions as i32).contains(&partition) => partition,
            (Some(partition), _) => {
                return Err(ClientError::Invalid(format!(
                    "topic {} has no partition {partition}",
                    record.topic
                )))
            }
            (None, Some(key)) => partition_for_key(key, partitions),
            (None, None) => (self.round_robin.fetch_add(1, Ordering::Relaxed) % partitions) as i32,
        };
        let bytes = record.key.as_ref().map_or(0, Bytes::len)
            + record.value.as_ref().map_or(0, Bytes::len)
            + RECORD_OVERHEAD_BYTES;
        let permits = bytes.min(self.shared.config.buffer_bytes_max) as u32;
        let permit = Arc::clone(&self.budget)
            .acquire_many_owned(permits)
            .await
            .expect("the budget is never closed");
        let (delivery, receiver) = oneshot::channel();
        // Records without a timestamp get one when their partition worker
        // takes them in (one clock read per drain, not per record).
        let timestamp_ms = record.timestamp_ms.unwrap_or(TIMESTAMP_UNSET);
        let sender = self.partition_sender(&record.topic, partition);
        self.shared.unresolved.fetch_add(1, Ordering::AcqRel);
        let queued = Queued {
            record,
            timestamp_ms,
            bytes,
            delivery,
            _permit: permit,
        };
        if sender.send(queued).await.is_err() {
            self.shared.unresolved.fetch_sub(1, Ordering::AcqRel);
            return Err(ClientError::Invalid("the producer is closed".into()));
        }
        Ok(Delivery(receiver))
    }

    /// The topic's metadata; while the cluster is unreachable this waits and
    /// retries like every other send path (until the delivery timeout, or
    /// forever without one), so a record is never refused for a passing outage.
    async fn partition_count(&self, topic: &str) -> Result<usize> {
        if let Some(count) = self.shared.cluster.cached_partition_count(topic) {
            return Ok(count);
        }
        let started = Instant::now();
        let mut backoff = Duration::from_millis(100);
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
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.shared.config.retry_backoff_max);
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn partition_sender(&self, topic: &str, partition: i32) -> mpsc::Sender<Queued> {
        let mut partitions = self.partitions.lock();
        let index = partition as usize;
        if let Some(Some(sender)) = partitions.get(topic).and_then(|workers| workers.get(index)) {
            return sender.clone();
        }
        let workers = partitions.entry(topic.to_owned()).or_default();
        if workers.len() <= index {
            workers.resize(index + 1, None);
        }
        let (sender, receiver) = mpsc::channel(PARTITION_QUEUE_RECORDS_MAX);
        let worker = PartitionWorker::new(Arc::clone(&self.shared), topic.to_owned(), partition);
        tokio::spawn(worker.run(receiver));
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

impl Shared {
    /// Gets a producer id, or bumps the epoch of `current` (KIP-360).
    async fn init_producer_id(&self, current: Option<Identity>) -> Result<()> {
        let _refreshing = self.identity_refresh.lock().await;
        if let Some(current) = current {
            let now = *self.identity.lock();
            if now.producer_id != current.producer_id || now.epoch != current.epoch {
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

    fn resolve(&self, queued: Queued, result: Result<RecordMetadata>) {
        let _ = queued.delivery.send(result);
        if self.unresolved.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.resolved.notify_waiters();
        }
    }
}

/// A closed batch: its records, and the sequence numbering it was given.
struct Batch {
    records: Vec<Queued>,
    base_sequence: i32,
    identity: Identity,
}

struct Sent {
    batch: Batch,
    response: tokio::task::JoinHandle<Result<ProduceResponse>>,
}

struct PartitionWorker {
    shared: Arc<Shared>,
    topic: String,
    partition: i32,
    next_sequence: i32,
    sequence_identity: Option<(i64, i16)>,
    failing_since: Option<Instant>,
}

impl PartitionWorker {
    fn new(shared: Arc<Shared>, topic: String, partition: i32) -> Self {
        Self {
            shared,
            topic,
            partition,
            next_sequence: 0,
            sequence_identity: None,
            failing_since: None,
        }
    }

    async fn run(mut self, mut queue: mpsc::Receiver<Queued>) {
        let config = self.shared.config.clone();
        let mut open: Vec<Queued> = Vec::new();
        let mut open_bytes = 0usize;
        let mut ready: VecDeque<Batch> = VecDeque::new();
        let mut in_flight: VecDeque<Sent> = VecDeque::new();
        let mut closed = false;
        let mut open_since: Option<Instant> = None;
        loop {
            if closed && open.is_empty() && ready.is_empty() && in_flight.is_empty() {
                return;
            }
            // Linger only matters while the batch could be sent at once; while
            // requests are backed up it keeps filling up to its size limit.
            let can_send_now = ready.is_empty() && in_flight.len() < config.in_flight_max.max(1);
            let linger_deadline = open_since.filter(|_| can_send_now).map(|since| since + config.linger);
            let linger_over = linger_deadline.is_some_and(|d| Instant::now() >= d);
            if !open.is_empty() && (open_bytes >= config.batch_bytes_max || linger_over || closed) {
                ready.push_back(self.close_batch(std::mem::take(&mut open)));
                open_bytes = 0;
                open_since = None;
            }
            while in_flight.len() < config.in_flight_max.max(1) {
                let Some(batch) = ready.pop_front() else { break };
                match self.send(batch).await {
                    Ok(Some(sent)) => in_flight.push_back(sent),
                    Ok(None) => {}
                    Err(batch) => {
                        ready.push_front(batch);
                        break;
                    }
                }
            }
            tokio::select! {
                received = queue.recv(), if !closed && open_bytes < config.batch_bytes_max => match received {
                    Some(queued) => {
                        // Take in everything already queued, up to the batch size:
                        // one pass of this loop per drain, not per record.
                        let now = now_ms();
                        let mut next = Some(queued);
                        while let Some(mut queued) = next.take() {
                            if queued.timestamp_ms == TIMESTAMP_UNSET {
                                queued.timestamp_ms = now;
                            }
                            open_bytes += queued.bytes;
                            open.push(queued);
                            if open_bytes < config.batch_bytes_max {
                                next = queue.try_recv().ok();
                            }
                        }
                        open_since.get_or_insert_with(Instant::now);
                    }
                    None => closed = true,
                },
                _ = sleep_until(linger_deadline), if linger_deadline.is_some() => {}
                response = wait_front(&mut in_flight), if !in_flight.is_empty() => {
                    let sent = in_flight.pop_front().expect("front exists");
                    if let Some(retry) = self.handle(sent.batch, response).await {
                        // Resend the failed batch and everything after it, in order.
                        let mut again: VecDeque<Batch> = in_flight.drain(..).map(|s| { s.response.abort(); s.batch }).collect();
                        again.push_front(retry);
                        again.extend(ready.drain(..));
                        ready = again;
                        self.backoff().await;
                        self.expire(&mut ready);
                    }
                }
                _ = tokio::time::sleep(Duration::from_millis(50)), if in_flight.is_empty() && !ready.is_empty() => {
                    self.backoff().await;
                    self.expire(&mut ready);
                }
            }
        }
    }

    /// Numbers a batch's records (idempotence) in the current epoch.
    fn close_batch(&mut self, records: Vec<Queued>) -> Batch {
        let identity = *self.shared.identity.lock();
        let key = (identity.producer_id, identity.epoch);
        if self.sequence_identity != Some(key) {
            self.sequence_identity = Some(key);
            self.next_sequence = 0;
        }
        let base_sequence = if identity.producer_id >= 0 {
            self.next_sequence
        } else {
            -1
        };
        if identity.producer_id >= 0 {
            self.next_sequence =
                ((i64::from(self.next_sequence) + records.len() as i64) % (i64::from(i32::MAX) + 1)) as i32;
        }
        Batch {
            records,
            base_sequence,
            identity,
        }
    }

    /// Renumbers batches after an epoch bump.
    fn renumber(&mut self, batch: Batch) -> Batch {
        let Batch { records, .. } = batch;
        self.close_batch(records)
    }

    fn encode(&self, batch: &Batch) -> Result<Bytes> {
        let first_timestamp = batch.records.iter().map(|q| q.timestamp_ms).min().unwrap_or(0);
        let records: Vec<KafkaRecord> = batch
            .records
            .iter()
            .enumerate()
            .map(|(index, queued)| KafkaRecord {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: batch.identity.producer_id,
                producer_epoch: batch.identity.epoch,
                timestamp_type: TimestampType::Creation,
                offset: index as i64,
                sequence: batch.base_sequence.wrapping_add(index as i32),
                timestamp: queued.timestamp_ms.max(first_timestamp),
                key: queued.record.key.clone(),
                value: queued.record.value.clone(),
                headers: queued
                    .record
                    .headers
                    .iter()
                    .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                    .collect::<IndexMap<_, _>>(),
            })
            .collect();
        let mut out = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: self.shared.config.compression,
        };
        RecordBatchEncoder::encode(&mut out, &records, &options).map_err(|e| {
            ClientError::Invalid(format!("encoding a batch for {}/{}: {e:#}", self.topic, self.partition))
        })?;
        Ok(out.freeze())
    }

    /// Writes a batch to the leader. `Err(batch)` means "try again later".
    async fn send(&mut self, batch: Batch) -> std::result::Result<Option<Sent>, Batch> {
        let bytes = match self.encode(&batch) {
            Ok(bytes) => bytes,
            Err(error) => {
                self.fail(batch, error);
                return Ok(None);
            }
        };
        let connection = match self.shared.cluster.leader(&self.topic, self.partition).await {
            Ok(connection) => connection,
            Err(error) => {
                self.note_failure(&error);
                return Err(batch);
            }
        };
        match self.write(&connection, bytes).await {
            Ok(Some(in_flight)) => {
                let response = tokio::spawn(in_flight.response());
                Ok(Some(Sent { batch, response }))
            }
            Ok(None) => {
                for queued in batch.records {
                    self.shared.resolve(
                        queued,
                        Ok(RecordMetadata {
                            partition: self.partition,
                            offset: -1,
                        }),
                    );
                }
                Ok(None)
            }
            Err(error) => {
                self.note_failure(&error);
                Err(batch)
            }
        }
    }

    async fn write(&self, connection: &Arc<Connection>, records: Bytes) -> Result<Option<InFlight<ProduceResponse>>> {
        let version = connection.version(ApiKey::Produce)?;
        let request = ProduceRequest::default()
            .with_transactional_id(None)
            .with_acks(self.shared.config.acks)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(self.topic.clone())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(self.partition)
                    .with_records(Some(records))])]);
        if self.shared.config.acks == 0 {
            connection
                .send_without_response(ApiKey::Produce, version, &request)
                .await?;
            return Ok(None);
        }
        Ok(Some(connection.start(ApiKey::Produce, version, &request).await?))
    }

    /// Handles the oldest batch's answer; returns the batch when it must be resent.
    async fn handle(
        &mut self,
        batch: Batch,
        response: std::result::Result<Result<ProduceResponse>, tokio::task::JoinError>,
    ) -> Option<Batch> {
        let outcome = match response {
            Ok(Ok(response)) => response
                .responses
                .first()
                .and_then(|t| t.partition_responses.first())
                .map(|p| (p.error_code, p.base_offset))
                .ok_or_else(|| ClientError::Invalid("empty produce response".into())),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(ClientError::Invalid("produce task failed".into())),
        };
        match outcome {
            Ok((0, base_offset)) | Ok((46, base_offset)) => {
                if self.failing_since.take().is_some() {
                    tracing::info!(topic = %self.topic, partition = self.partition, "producing again");
                }
                for (index, queued) in batch.records.into_iter().enumerate() {
                    let offset = if base_offset >= 0 {
                        base_offset + index as i64
                    } else {
                        -1
                    };
                    self.shared.resolve(
                        queued,
                        Ok(RecordMetadata {
                            partition: self.partition,
                            offset,
                        }),
                    );
                }
                None
            }
            Ok((code, _)) => {
                let error = ResponseError::try_from_code(code).expect("non-zero code");
                let broker_error =
                    ClientError::broker(format!("producing to {}/{}", self.topic, self.partition), error);
                match error {
                    ResponseError::OutOfOrderSequenceNumber
                    | ResponseError::UnknownProducerId
                    | ResponseError::InvalidProducerEpoch => {
                        tracing::warn!(topic = %self.topic, partition = self.partition, %error, "sequence lost; bumping the producer epoch");
                        if let Err(init_error) = self.shared.init_producer_id(Some(batch.identity)).await {
                            self.note_failure(&init_error);
                        }
                        Some(self.renumber(batch))
                    }
                    _ if broker_error.is_retriable() => {
                        self.shared.cluster.invalidate(&self.topic);
                        self.note_failure(&broker_error);
                        Some(batch)
                    }
                    _ => {
                        self.fail(batch, broker_error);
                        None
                    }
                }
            }
            Err(error) if error.is_retriable() => {
                self.note_failure(&error);
                self.shared.cluster.invalidate(&self.topic);
                Some(batch)
            }
            Err(error) => {
                self.fail(batch, error);
                None
            }
        }
    }

    fn note_failure(&mut self, error: &ClientError) {
        metrics::counter!(RETRIES_METRIC, "topic" => self.topic.clone()).increment(1);
        if self.failing_since.is_none() {
            tracing::warn!(topic = %self.topic, partition = self.partition, %error, "cannot produce; retrying with backoff");
            self.failing_since = Some(Instant::now());
        }
    }

    fn fail(&self, batch: Batch, error: ClientError) {
        let message = error.to_string();
        for queued in batch.records {
            self.shared.resolve(queued, Err(ClientError::Invalid(message.clone())));
        }
    }

    /// Fails every waiting batch once the partition has failed for longer
    /// than the delivery timeout (never, without one).
    fn expire(&mut self, ready: &mut VecDeque<Batch>) {
        let (Some(timeout), Some(since)) = (self.shared.config.delivery_timeout, self.failing_since) else {
            return;
        };
        if since.elapsed() < timeout {
            return;
        }
        for batch in ready.drain(..) {
            let error = ClientError::Invalid(format!(
                "gave up producing to {}/{} after {} s of failures",
                self.topic,
                self.partition,
                timeout.as_secs()
            ));
            self.fail(batch, error);
        }
    }

    /// Sleeps with capped exponential backoff.
    async fn backoff(&mut self) {
        let failing_for = self.failing_since.map_or(Duration::ZERO, |s| s.elapsed());
        let delay = Duration::from_millis(100)
            .max(failing_for / 2)
            .min(self.shared.config.retry_backoff_max);
        tokio::time::sleep(delay).await;
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

async fn wait_front(
    in_flight: &mut VecDeque<Sent>,
) -> std::result::Result<Result<ProduceResponse>, tokio::task::JoinError> {
    match in_flight.front_mut() {
        Some(sent) => (&mut sent.response).await,
        None => std::future::pending().await,
    }
}
