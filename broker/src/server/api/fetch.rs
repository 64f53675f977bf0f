//! Fetch: whole batches from each requested partition, up to the partition
//! and response byte limits (the first batch of the first non-empty
//! partition is returned whole even when larger, as Kafka does). When less
//! than `min_bytes` is available the request waits, up to `max_wait_ms`, and
//! is woken as soon as a produce makes new data visible. Fetch sessions
//! (KIP-227) are not kept: every response carries session id 0, which tells
//! clients to send full requests.

use super::blocking;
use crate::context::Context;
use crate::log::LogError;
use crate::metrics;
use crate::security::authorization::{Operation, Resource};
use crate::server::request::{DispatchError, RequestMeta};
use crate::topics::Topic;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use relay_proto::batch::BatchHeader;
use std::sync::Arc;
use std::time::Duration;
// The runtime's clock, so a long-poll's deadline and its sleep agree (also under a paused test clock).
use tokio::time::Instant;

/// Longest a fetch waits for data: clients ask for 500 ms by default; a
/// larger request is cut so shutdown and idle detection stay prompt.
pub const FETCH_WAIT_MS_MAX: i32 = 30_000;

struct WantedTopic {
    name: TopicName,
    id: uuid::Uuid,
    topic: Option<Arc<Topic>>,
    partitions: Vec<FetchPartition>,
    /// The user may not consume this topic.
    denied: bool,
}

/// How much of a partition a fetch may take: up to `bytes`, and a first
/// batch larger than that only when `whole_first_batch` (the first
/// non-empty partition of the response, KIP-74).
#[derive(Debug, Clone, Copy)]
struct Budget {
    bytes: usize,
    whole_first_batch: bool,
}

fn read_partition(topic: Option<&Topic>, wanted: &FetchPartition, budget: Budget, version: i16) -> PartitionData {
    let mut data = PartitionData::default().with_partition_index(wanted.partition);
    let Some(log) = topic.and_then(|t| t.partition(wanted.partition)) else {
        let error = if topic.is_none() && version >= 13 {
            ResponseError::UnknownTopicId
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        return data
            .with_error_code(error.code())
            .with_high_watermark(-1)
            .with_last_stable_offset(-1);
    };
    let read = if budget.whole_first_batch {
        log.read(wanted.fetch_offset, budget.bytes.max(1))
    } else {
        log.read_within(wanted.fetch_offset, budget.bytes)
    };
    let result = read.map(|read| (Bytes::from(read.bytes), read.high_watermark, read.log_start_offset));
    let (records, high_watermark, log_start_offset, error) = match result {
        Ok((records, high_watermark, log_start)) => (records, high_watermark, log_start, None),
        Err(LogError::OffsetOutOfRange {
            high_watermark,
            log_start_offset,
            ..
        }) => (
            Bytes::new(),
            high_watermark,
            log_start_offset,
            Some(ResponseError::OffsetOutOfRange),
        ),
        Err(error) => {
            if let Some(unlogged) = log.read_failure_to_log() {
                tracing::error!(
                    partition = %log.dir().display(),
                    %error,
                    unlogged_since_last = unlogged,
                    "fetch failed (logged at most once a minute per partition)"
                );
            }
            (
                Bytes::new(),
                log.high_watermark(),
                log.log_start_offset(),
                Some(ResponseError::KafkaStorageError),
            )
        }
    };
    data.error_code = error.map_or(0, |e| e.code());
    data.high_watermark = high_watermark;
    data.last_stable_offset = high_watermark;
    if version >= 5 {
        data.log_start_offset = log_start_offset;
    }
    data.aborted_transactions = Some(Vec::new());
    data.records = Some(records);
    data
}

/// One pass over every wanted partition; returns the topics and the bytes found.
fn read_all(wanted: &[WantedTopic], response_bytes_max: usize, version: i16) -> (Vec<FetchableTopicResponse>, usize) {
    let mut total = 0usize;
    let mut responses = Vec::with_capacity(wanted.len());
    for topic in wanted {
        let partitions = topic
            .partitions
            .iter()
            .map(|partition| {
                let partition_max = partition.partition_max_bytes.max(0) as usize;
                // Only the first non-empty partition may go over the limits,
                // by its first batch (KIP-74); every later one gets what is left.
                let budget = Budget {
                    bytes: partition_max.min(response_bytes_max.saturating_sub(total)),
                    whole_first_batch: total == 0 && partition_max > 0,
                };
                if topic.denied {
                    return PartitionData::default()
                        .with_partition_index(partition.partition)
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                        .with_high_watermark(-1)
                        .with_last_stable_offset(-1);
                }
                let data = read_partition(topic.topic.as_deref(), partition, budget, version);
                total += data.records.as_ref().map_or(0, Bytes::len);
                data
            })
            .collect();
        let mut response = FetchableTopicResponse::default().with_partitions(partitions);
        if version >= 13 {
            response.topic_id = topic.id;
        } else {
            response.topic = topic.name.clone();
        }
        responses.push(response);
    }
    (responses, total)
}

/// Records in whole batches, from their headers alone (the CRCs were checked by the read).
fn record_count(mut bytes: &[u8]) -> u64 {
    let mut records = 0;
    while let Ok(Some(header)) = BatchHeader::parse(bytes) {
        records += header.record_count().max(0) as u64;
        bytes = &bytes[header.total_bytes().min(bytes.len())..];
    }
    records
}

/// Counts the records and bytes of each topic's answer; the record count is
/// read from the batch headers (whole batches, as sent).
fn count_sent(wanted: &[WantedTopic], responses: &[FetchableTopicResponse]) {
    for (topic, response) in wanted.iter().zip(responses) {
        let Some(known) = &topic.topic else { continue };
        let (mut records, mut bytes) = (0u64, 0u64);
        for partition in &response.partitions {
            let Some(data) = &partition.records else { continue };
            bytes += data.len() as u64;
            records += record_count(data);
        }
        metrics::fetched(&known.name, records, bytes);
    }
}

pub async fn handle(ctx: &Context, meta: &RequestMeta, request: FetchRequest) -> Result<Bytes, DispatchError> {
    let started = Instant::now();
    let version = meta.version;
    let wait = Duration::from_millis(request.max_wait_ms.clamp(0, FETCH_WAIT_MS_MAX) as u64);
    let deadline = Instant::now() + wait;
    let min_bytes = request.min_bytes.max(0) as usize;
    let response_bytes_max = (request.max_bytes.max(0) as usize).min(ctx.config.fetch_response_bytes_max);
    let wanted: Arc<Vec<WantedTopic>> = Arc::new(
        request
            .topics
            .into_iter()
            .map(|t| {
                let topic = if version >= 13 {
                    ctx.topics.list().into_iter().find(|known| known.id == t.topic_id)
                } else {
                    ctx.topics.get(t.topic.as_str())
                };
                let name = topic
                    .as_ref()
                    .map_or_else(|| t.topic.to_string(), |known| known.name.clone());
                // An id that names no topic is UNKNOWN_TOPIC_ID, whoever asks (as Kafka).
                let unknown_id = version >= 13 && topic.is_none();
                WantedTopic {
                    denied: !unknown_id && !meta.may(ctx, Operation::Consume, Resource::Topic(&name)),
                    name: t.topic,
                    id: t.topic_id,
                    topic,
                    partitions: t.partitions,
                }
            })
            .collect(),
    );
    let session_unknown = version >= 7 && request.session_id != 0;
    loop {
        let notified = ctx.data_visible.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let pass = Arc::clone(&wanted);
        let (responses, total) = blocking(move || read_all(&pass, response_bytes_max, version)).await;
        let any_error = responses.iter().flat_map(|t| &t.partitions).any(|p| p.error_code != 0);
        if session_unknown || total >= min_bytes || any_error || Instant::now() >= deadline {
            let mut response = FetchResponse::default().with_responses(responses);
            if session_unknown {
                response.error_code = ResponseError::FetchSessionIdNotFound.code();
                response.responses = Vec::new();
            }
            count_sent(&wanted, &response.responses);
            metrics::fetch_latency(started.elapsed());
            return meta.encode(&response);
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}
