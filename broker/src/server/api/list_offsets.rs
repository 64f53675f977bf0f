//! ListOffsets: the earliest (-2) or latest (-1) offset of a partition, or the
//! first offset whose record timestamp is at or after a given time (with that
//! record's timestamp; offset -1 when every record is older), or (v7+) the
//! first record with the largest timestamp (-3, MAX_TIMESTAMP: offset and
//! timestamp -1 for an empty partition). The local log start (-4) is the log
//! start, there being no tiered storage; the remote-storage query (-5) is
//! refused with INVALID_REQUEST, as is -3 below v7, where it was not defined.

use super::blocking;
use crate::context::Context;
use crate::log::PartitionLog;
use crate::security::authorization::{Operation, Resource};
use crate::server::request::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use std::sync::Arc;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
/// The first ListOffsets version that defines [`MAX_TIMESTAMP`] (KIP-734).
const MAX_TIMESTAMP_VERSION_MIN: i16 = 7;

/// What a partition is asked for.
enum Query {
    Time(i64),
    MaxTimestamp,
}

pub async fn handle(ctx: &Context, meta: &RequestMeta, request: ListOffsetsRequest) -> Result<Bytes, DispatchError> {
    let mut topics = Vec::with_capacity(request.topics.len());
    for wanted in request.topics {
        // Kafka asks DESCRIBE of the topic (which consume and produce imply).
        let allowed = meta.may(ctx, Operation::Describe, Resource::Topic(wanted.name.as_str()));
        let topic = ctx.topics.get(wanted.name.as_str());
        let mut partitions = Vec::with_capacity(wanted.partitions.len());
        for partition in wanted.partitions {
            let mut answer = ListOffsetsPartitionResponse::default()
                .with_partition_index(partition.partition_index)
                .with_timestamp(-1)
                .with_offset(-1);
            if !allowed {
                partitions.push(answer.with_error_code(ResponseError::TopicAuthorizationFailed.code()));
                continue;
            }
            let Some(log) = topic
                .as_ref()
                .and_then(|t| t.partition(partition.partition_index))
                .cloned()
            else {
                partitions.push(answer.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            };
            match partition.timestamp {
                LATEST => answer.offset = log.high_watermark(),
                EARLIEST | EARLIEST_LOCAL => answer.offset = log.log_start_offset(),
                MAX_TIMESTAMP if meta.version >= MAX_TIMESTAMP_VERSION_MIN => {
                    lookup(&log, Query::MaxTimestamp, &mut answer).await
                }
                timestamp if timestamp >= 0 => lookup(&log, Query::Time(timestamp), &mut answer).await,
                _ => answer.error_code = ResponseError::InvalidRequest.code(),
            }
            if meta.version >= 4 && answer.error_code == 0 {
                answer.leader_epoch = 0;
            }
            partitions.push(answer);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(wanted.name)
                .with_partitions(partitions),
        );
    }
    meta.encode(&ListOffsetsResponse::default().with_topics(topics))
}

/// Answers a lookup that reads the log: the offset and timestamp found, -1
/// and -1 when there is none, KAFKA_STORAGE_ERROR when the read fails.
async fn lookup(log: &Arc<PartitionLog>, query: Query, answer: &mut ListOffsetsPartitionResponse) {
    let found = blocking({
        let log = Arc::clone(log);
        move || match query {
            Query::Time(timestamp) => log.offset_for_time(timestamp),
            Query::MaxTimestamp => log.offset_for_max_timestamp(),
        }
    })
    .await;
    match found {
        Ok(Some((offset, found_timestamp))) => {
            answer.offset = offset;
            answer.timestamp = found_timestamp;
        }
        Ok(None) => {}
        Err(error) => {
            if let Some(unlogged) = log.read_failure_to_log() {
                tracing::error!(
                    partition = %log.dir().display(),
                    %error,
                    unlogged_since_last = unlogged,
                    "offset lookup by time failed (logged at most once a minute per partition)"
                );
            }
            answer.error_code = ResponseError::KafkaStorageError.code();
        }
    }
}
