//! ListOffsets: the earliest (-2) or latest (-1) offset of a partition, or the
//! first offset whose record timestamp is at or after a given time (with that
//! record's timestamp; offset -1 when every record is older). The max-timestamp
//! query (-3) and the tiered-storage queries (-4, -5) are not served.

use super::blocking;
use crate::context::Context;
use crate::security::authorization::{Operation, Resource};
use crate::server::request::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use std::sync::Arc;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const EARLIEST_LOCAL: i64 = -4;

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
                timestamp if timestamp >= 0 => match blocking({
                    let log = Arc::clone(&log);
                    move || log.offset_for_time(timestamp)
                })
                .await
                {
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
                },
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
