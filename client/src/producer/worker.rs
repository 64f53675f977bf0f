//! One partition's worker: it gathers queued records into a batch closed by
//! size (`batch_bytes_max`, see [`super::open_batch`]) or age (`linger`),
//! numbers it (see [`super::sequence`]), and keeps up to `in_flight_max`
//! Produce requests outstanding on the leader's connection. Answers are taken
//! oldest first; a failed batch is sent again with every batch behind it, in
//! order and with the same sequences, so the broker de-duplicates what it
//! already has and nothing is reordered (policy in [`super::retry`]). A batch
//! of several records refused as too large (or encoded past the cap) goes
//! back as two halves sharing its sequence range ([`Batch::split`]); one
//! record refused as too large fails alone, and the batches behind it take
//! over its sequences.
//!
//! Numbering invariant: the batches waiting and in flight are all of one
//! identity, in sequence order with no gap, and the queue order is the send
//! order. Renumbering keeps it: after a lost sequence every waiting batch is
//! numbered again, in order, in the (bumped) identity; after a record refused
//! as too large, from that record's sequence. A batch is renumbered only when
//! the broker refused it or refused one ahead of it (so it was not written),
//! which is why renumbering can neither duplicate nor reorder a record.
//!
//! A worker never reorders or drops a batch, and never resolves a record
//! twice: every record leaves through exactly one `Shared::resolve`.

use super::batch::{encode, record_offset, renumber, Batch};
use super::inbox::Inbox;
use super::open_batch::OpenBatch;
use super::record::{Queued, RecordMetadata};
use super::retry::{backoff_delay, resend_order, verdict, SentShape, Verdict, RETRIES_METRIC};
use super::sequence::{Identity, Sequencer};
use super::shared::Shared;
use crate::connection::{Connection, InFlight};
use crate::error::{ClientError, Result};
use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::{JoinError, JoinHandle};

/// How often a worker whose batches wait with none in flight (the leader
/// was unreachable) tries again, before its backoff.
const READY_RETRY_INTERVAL: Duration = Duration::from_millis(50);
/// The broker's time limit for a Produce request.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;

/// A batch written to the leader, and the task awaiting its answer.
struct Sent {
    batch: Batch,
    encoded_bytes: usize,
    response: JoinHandle<Result<ProduceResponse>>,
}

/// The answer to one Produce request, as its task ended.
type Answer = std::result::Result<Result<ProduceResponse>, JoinError>;

/// What becomes of the oldest in-flight batch once its answer is handled.
enum Next {
    /// Its records are resolved (acknowledged or failed).
    Resolved,
    /// Its one record failed as too large and its sequences were never
    /// written: the batches behind it take them over, at once.
    Skipped { identity: Identity, base_sequence: i32 },
    /// Send it again, ahead of everything behind it, after a backoff.
    Retry(Batch),
    /// The broker lost the producer's sequence: send it and everything
    /// behind it again, numbered afresh in the (bumped) identity.
    Renumber(Batch),
    /// Send these halves of it in its place, at once.
    Split(Batch, Batch),
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
    pub async fn run(mut self, mut queue: Inbox) {
        let config = self.shared.config.clone();
        let in_flight_max = config.in_flight_max.max(1);
        let mut open = OpenBatch::default();
        let mut ready: VecDeque<Batch> = VecDeque::new();
        let mut in_flight: VecDeque<Sent> = VecDeque::new();
        let mut closed = false;
        loop {
            if closed && open.is_empty() && ready.is_empty() && in_flight.is_empty() {
                return;
            }
            // Linger only matters while the batch could be sent at once; while
            // requests are backed up it keeps filling up to its size limit.
            let can_send_now = ready.is_empty() && in_flight.len() < in_flight_max;
            let linger_deadline = open.since().filter(|_| can_send_now).map(|since| since + config.linger);
            let linger_over = linger_deadline.is_some_and(|d| Instant::now() >= d);
            if !open.is_empty() && (open.is_full(config.batch_bytes_max) || linger_over || closed) {
                let records = open.take();
                let batch = self.close_batch(records, ready.len() + in_flight.len());
                ready.push_back(batch);
            }
            self.send_ready(&mut ready, &mut in_flight, in_flight_max).await;
            tokio::select! {
                received = queue.next(), if !closed && !open.is_full(config.batch_bytes_max) => match received {
                    Some(queued) => {
                        if let Some(records) = open.take_in(queued, &mut queue, config.batch_bytes_max, &config.sticky_header_keys) {
                            let batch = self.close_batch(records, ready.len() + in_flight.len());
                            ready.push_back(batch);
                        }
                    }
                    None => closed = true,
                },
                _ = sleep_until(linger_deadline), if linger_deadline.is_some() => {}
                answer = wait_front(&mut in_flight), if !in_flight.is_empty() => {
                    let sent = in_flight.pop_front().expect("front exists");
                    let next = self.handle(sent, answer).await;
                    self.follow(next, &mut ready, &mut in_flight).await;
                }
                _ = tokio::time::sleep(READY_RETRY_INTERVAL), if in_flight.is_empty() && !ready.is_empty() => {
                    self.backoff().await;
                    self.expire(&mut ready);
                }
            }
        }
    }

    /// Numbers a batch's records (idempotence). While `outstanding`
    /// batches wait or are in flight it numbers in their identity, so the
    /// queue is always one identity in sequence order; an epoch bumped by
    /// another partition is taken up once the queue is empty (a partition
    /// takes the old epoch until it sees the new one, and if it has fenced it
    /// the queue is renumbered as a whole).
    fn close_batch(&mut self, records: Vec<Queued>, outstanding: usize) -> Batch {
        let shared = *self.shared.identity.lock();
        let identity = match self.sequencer.numbered_in() {
            Some(current) if outstanding > 0 => current,
            _ => shared,
        };
        let base_sequence = self.sequencer.assign(identity, records.len());
        Batch {
            records,
            base_sequence,
            identity,
        }
    }

    /// Puts back what an answer left to send, so that the queue stays in
    /// sequence order: what was in flight behind the answered batch (and is
    /// refused by the broker for the gap) goes back in order behind it.
    async fn follow(&mut self, next: Next, ready: &mut VecDeque<Batch>, in_flight: &mut VecDeque<Sent>) {
        match next {
            Next::Resolved => {}
            Next::Split(first, second) if first.identity.producer_id < 0 => {
                // Without sequences the batches in flight behind may be
                // written already: they stand, and the halves follow them.
                ready.push_front(second);
                ready.push_front(first);
            }
            Next::Split(first, second) => requeue([first, second], in_flight, ready),
            Next::Skipped {
                identity,
                base_sequence,
            } => {
                requeue([], in_flight, ready);
                self.sequencer.rewind(identity, base_sequence);
                renumber(ready.iter_mut(), &mut self.sequencer, identity);
            }
            Next::Renumber(front) => {
                self.sequencer.rewind(front.identity, front.base_sequence);
                requeue([front], in_flight, ready);
                let identity = *self.shared.identity.lock();
                renumber(ready.iter_mut(), &mut self.sequencer, identity);
                self.backoff().await;
                self.expire(ready);
            }
            Next::Retry(failed) => {
                requeue([failed], in_flight, ready);
                self.backoff().await;
                self.expire(ready);
            }
        }
    }

    /// Sends waiting batches, oldest first, while fewer than `in_flight_max`
    /// are outstanding; stops at the first that cannot be sent yet. A batch
    /// of several records that encodes past `batch_bytes_max` (compression
    /// can add a few bytes to incompressible values) is halved first, so no
    /// request carries a batch over the cap but a single record's.
    async fn send_ready(&mut self, ready: &mut VecDeque<Batch>, in_flight: &mut VecDeque<Sent>, in_flight_max: usize) {
        while in_flight.len() < in_flight_max {
            let Some(batch) = ready.pop_front() else { break };
            let records = match encode(
                &batch,
                self.shared.config.compression,
                &self.shared.config.sticky_header_keys,
                &self.topic,
                self.partition,
            ) {
                Ok(records) => records,
                Err(error) => {
                    self.fail(batch, error);
                    continue;
                }
            };
            if records.len() > self.shared.config.batch_bytes_max && batch.records.len() > 1 {
                let (first, second) = batch.split();
                ready.push_front(second);
                ready.push_front(first);
                continue;
            }
            match self.send(batch, records).await {
                Ok(Some(sent)) => in_flight.push_back(sent),
                Ok(None) => {}
                Err(batch) => {
                    ready.push_front(batch);
                    break;
                }
            }
        }
    }

    /// Writes a batch, encoded as `records`, to the leader. `Err(batch)`
    /// means "try again later".
    async fn send(&mut self, batch: Batch, records: Bytes) -> std::result::Result<Option<Sent>, Batch> {
        let connection = match self.shared.cluster.leader(&self.topic, self.partition).await {
            Ok(connection) => connection,
            Err(error) => {
                self.note_failure(&error);
                return Err(batch);
            }
        };
        let encoded_bytes = records.len();
        match self.write(&connection, records).await {
            Ok(Some(in_flight)) => {
                let response = tokio::spawn(in_flight.response());
                Ok(Some(Sent {
                    batch,
                    encoded_bytes,
                    response,
                }))
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

    /// Handles the oldest batch's answer.
    async fn handle(&mut self, sent: Sent, answer: Answer) -> Next {
        let shape = SentShape {
            records: sent.batch.records.len(),
            encoded_bytes: sent.encoded_bytes,
        };
        let batch = sent.batch;
        match verdict(partition_answer(answer), &self.topic, self.partition, shape) {
            Verdict::Acknowledged { base_offset } => {
                if self.failing_since.take().is_some() {
                    tracing::info!(topic = %self.topic, partition = self.partition, "producing again");
                }
                self.acknowledge(batch, base_offset);
                Next::Resolved
            }
            Verdict::Split(error) => {
                tracing::debug!(
                    topic = %self.topic,
                    partition = self.partition,
                    records = shape.records,
                    bytes = shape.encoded_bytes,
                    %error,
                    "the broker refused a batch as too large; sending it again in two halves"
                );
                let (first, second) = batch.split();
                Next::Split(first, second)
            }
            Verdict::SequenceLost(error) => {
                tracing::warn!(topic = %self.topic, partition = self.partition, %error, "sequence lost; bumping the producer epoch");
                if let Err(init_error) = self.shared.init_producer_id(Some(batch.identity)).await {
                    self.note_failure(&init_error);
                }
                Next::Renumber(batch)
            }
            Verdict::Retry(error) => {
                self.shared.cluster.invalidate(&self.topic);
                self.note_failure(&error);
                Next::Retry(batch)
            }
            Verdict::Fail(error) => {
                // A record refused as too large was not written; its
                // sequences go to the batches behind it (as Kafka's client
                // adjusts them), rather than leaving a gap to bump the epoch.
                let skipped = (error.is_record_too_large() && batch.identity.producer_id >= 0)
                    .then_some((batch.identity, batch.base_sequence));
                self.fail(batch, error);
                match skipped {
                    Some((identity, base_sequence)) => Next::Skipped {
                        identity,
                        base_sequence,
                    },
                    None => Next::Resolved,
                }
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
        for queued in batch.records {
            self.shared.resolve(queued, Err(error.copy_for_delivery()));
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

/// `front` (a failed batch, or its halves) ahead of the batches that were in
/// flight behind it, whose answers no longer matter, ahead of `ready`.
fn requeue<const N: usize>(front: [Batch; N], in_flight: &mut VecDeque<Sent>, ready: &mut VecDeque<Batch>) {
    let behind = in_flight.drain(..).map(|sent| {
        sent.response.abort();
        sent.batch
    });
    *ready = resend_order(front, behind, std::mem::take(ready));
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
