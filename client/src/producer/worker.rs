//! One partition's worker: it gathers queued records into a batch closed by
//! size (`batch_bytes_max`) or age (`linger`), numbers it (see
//! [`super::sequence`]), and keeps up to `in_flight_max` Produce requests
//! outstanding on the leader's connection. Answers are taken oldest first;
//! a failed batch is sent again with every batch behind it, in order and
//! with the same sequences, so the broker de-duplicates what it already
//! has and nothing is reordered (policy in [`super::retry`]).
//!
//! A worker never reorders, drops or renumbers a batch except after a lost
//! sequence, and never resolves a record twice: every record leaves through
//! exactly one `Shared::resolve`.

use super::batch::{encode, record_offset, Batch};
use super::record::{Queued, RecordMetadata, TIMESTAMP_UNSET};
use super::retry::{backoff_delay, resend_order, verdict, Verdict, RETRIES_METRIC};
use super::sequence::Sequencer;
use super::shared::Shared;
use crate::connection::{Connection, InFlight};
use crate::error::{ClientError, Result};
use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use relay_proto::clock::now_ms;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};

/// How often a worker whose batches wait with none in flight (the leader
/// was unreachable) tries again, before its backoff.
const READY_RETRY_INTERVAL: Duration = Duration::from_millis(50);
/// The broker's time limit for a Produce request.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;

/// A batch written to the leader, and the task awaiting its answer.
struct Sent {
    batch: Batch,
    response: JoinHandle<Result<ProduceResponse>>,
}

/// The answer to one Produce request, as its task ended.
type Answer = std::result::Result<Result<ProduceResponse>, JoinError>;

/// The records gathered into the next batch.
#[derive(Default)]
struct OpenBatch {
    records: Vec<Queued>,
    bytes: usize,
    since: Option<Instant>,
}

impl OpenBatch {
    /// Takes in `first` and everything already queued behind it, up to the
    /// batch size: one pass of the worker's loop per drain, not per record.
    /// Records without a timestamp get this drain's clock reading.
    fn take_in(&mut self, first: Queued, queue: &mut mpsc::Receiver<Queued>, batch_bytes_max: usize) {
        let now = now_ms();
        let mut next = Some(first);
        while let Some(mut queued) = next.take() {
            if queued.timestamp_ms == TIMESTAMP_UNSET {
                queued.timestamp_ms = now;
            }
            self.bytes += queued.bytes;
            self.records.push(queued);
            if self.bytes < batch_bytes_max {
                next = queue.try_recv().ok();
            }
        }
        self.since.get_or_insert_with(Instant::now);
    }

    fn take(&mut self) -> Vec<Queued> {
        std::mem::take(self).records
    }
}

pub(super) struct PartitionWorker {
    shared: Arc<Shared>,
    topic: String,
    partition: i32,
    sequencer: Sequencer,
    failing_since: Option<Instant>,
}

impl PartitionWorker {
    pub fn new(shared: Arc<Shared>, topic: String, partition: i32) -> Self {
        Self {
            shared,
            topic,
            partition,
            sequencer: Sequencer::default(),
            failing_since: None,
        }
    }

    /// Works until the queue is closed and every record is resolved.
    pub async fn run(mut self, mut queue: mpsc::Receiver<Queued>) {
        let config = self.shared.config.clone();
        let in_flight_max = config.in_flight_max.max(1);
        let mut open = OpenBatch::default();
        let mut ready: VecDeque<Batch> = VecDeque::new();
        let mut in_flight: VecDeque<Sent> = VecDeque::new();
        let mut closed = false;
        loop {
            if closed && open.records.is_empty() && ready.is_empty() && in_flight.is_empty() {
                return;
            }
            // Linger only matters while the batch could be sent at once; while
            // requests are backed up it keeps filling up to its size limit.
            let can_send_now = ready.is_empty() && in_flight.len() < in_flight_max;
            let linger_deadline = open.since.filter(|_| can_send_now).map(|since| since + config.linger);
            let linger_over = linger_deadline.is_some_and(|d| Instant::now() >= d);
            if !open.records.is_empty() && (open.bytes >= config.batch_bytes_max || linger_over || closed) {
                let records = open.take();
                ready.push_back(self.close_batch(records));
            }
            self.send_ready(&mut ready, &mut in_flight, in_flight_max).await;
            tokio::select! {
                received = queue.recv(), if !closed && open.bytes < config.batch_bytes_max => match received {
                    Some(queued) => open.take_in(queued, &mut queue, config.batch_bytes_max),
                    None => closed = true,
                },
                _ = sleep_until(linger_deadline), if linger_deadline.is_some() => {}
                answer = wait_front(&mut in_flight), if !in_flight.is_empty() => {
                    let sent = in_flight.pop_front().expect("front exists");
                    if let Some(failed) = self.handle(sent.batch, answer).await {
                        let behind = in_flight.drain(..).map(|sent| {
                            sent.response.abort();
                            sent.batch
                        });
                        ready = resend_order(failed, behind, std::mem::take(&mut ready));
                        self.backoff().await;
                        self.expire(&mut ready);
                    }
                }
                _ = tokio::time::sleep(READY_RETRY_INTERVAL), if in_flight.is_empty() && !ready.is_empty() => {
                    self.backoff().await;
                    self.expire(&mut ready);
                }
            }
        }
    }

    /// Numbers a batch's records (idempotence) in the current epoch.
    fn close_batch(&mut self, records: Vec<Queued>) -> Batch {
        let identity = *self.shared.identity.lock();
        let base_sequence = self.sequencer.assign(identity, records.len());
        Batch {
            records,
            base_sequence,
            identity,
        }
    }

    /// Sends waiting batches, oldest first, while fewer than `in_flight_max`
    /// are outstanding; stops at the first that cannot be sent yet.
    async fn send_ready(&mut self, ready: &mut VecDeque<Batch>, in_flight: &mut VecDeque<Sent>, in_flight_max: usize) {
        while in_flight.len() < in_flight_max {
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
    }

    /// Writes a batch to the leader. `Err(batch)` means "try again later".
    async fn send(&mut self, batch: Batch) -> std::result::Result<Option<Sent>, Batch> {
        let bytes = match encode(&batch, self.shared.config.compression, &self.topic, self.partition) {
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
                self.acknowledge(batch, -1);
                Ok(None)
            }
            Err(error) => {
                self.note_failure(&error);
                Err(batch)
            }
        }
    }

    /// Starts a Produce request; `None` with acks = 0, which has no answer.
    async fn write(&self, connection: &Arc<Connection>, records: Bytes) -> Result<Option<InFlight<ProduceResponse>>> {
        let version = connection.version(ApiKey::Produce)?;
        let request = ProduceRequest::default()
            .with_transactional_id(None)
            .with_acks(self.shared.config.acks)
            .with_timeout_ms(PRODUCE_TIMEOUT_MS)
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
    async fn handle(&mut self, batch: Batch, answer: Answer) -> Option<Batch> {
        match verdict(partition_answer(answer), &self.topic, self.partition) {
            Verdict::Acknowledged { base_offset } => {
                if self.failing_since.take().is_some() {
                    tracing::info!(topic = %self.topic, partition = self.partition, "producing again");
                }
                self.acknowledge(batch, base_offset);
                None
            }
            Verdict::SequenceLost(error) => {
                tracing::warn!(topic = %self.topic, partition = self.partition, %error, "sequence lost; bumping the producer epoch");
                if let Err(init_error) = self.shared.init_producer_id(Some(batch.identity)).await {
                    self.note_failure(&init_error);
                }
                Some(self.close_batch(batch.records))
            }
            Verdict::Retry(error) => {
                self.shared.cluster.invalidate(&self.topic);
                self.note_failure(&error);
                Some(batch)
            }
            Verdict::Fail(error) => {
                self.fail(batch, error);
                None
            }
        }
    }

    /// Resolves a written batch's records with their offsets.
    fn acknowledge(&self, batch: Batch, base_offset: i64) {
        for (index, queued) in batch.records.into_iter().enumerate() {
            let metadata = RecordMetadata {
                partition: self.partition,
                offset: record_offset(base_offset, index),
            };
            self.shared.resolve(queued, Ok(metadata));
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
        tokio::time::sleep(backoff_delay(failing_for, self.shared.config.retry_backoff_max)).await;
    }
}

/// The partition's `(error_code, base_offset)` from a Produce answer.
fn partition_answer(answer: Answer) -> Result<(i16, i64)> {
    match answer {
        Ok(Ok(response)) => response
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .map(|p| (p.error_code, p.base_offset))
            .ok_or_else(|| ClientError::Invalid("empty produce response".into())),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(ClientError::Invalid("produce task failed".into())),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

async fn wait_front(in_flight: &mut VecDeque<Sent>) -> Answer {
    match in_flight.front_mut() {
        Some(sent) => (&mut sent.response).await,
        None => std::future::pending().await,
    }
}
