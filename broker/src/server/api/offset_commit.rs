//! OffsetCommit: stores a group's offsets durably, all partitions of a
//! request in one write. Members of an active group must name their current
//! generation; a simple consumer (generation -1, no member id) may commit
//! while the group has no members.

use super::blocking;
use crate::context::Context;
use crate::group::coordinator::OFFSET_METADATA_BYTES_MAX;
use crate::group::records::CommittedOffset;
use crate::group::static_member::MemberRef;
use crate::security::authorization::{Operation, Resource};
use crate::server::request::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use relay_proto::clock::now_ms;
use std::sync::Arc;

/// Offsets to store: (topic, partition, value).
type Accepted = Vec<(String, i32, CommittedOffset)>;
/// Each requested partition's answer, by (topic index, partition index) in
/// the request; `None` is success.
type Answers = Vec<(usize, usize, Option<ResponseError>)>;

pub async fn handle(ctx: &Context, meta: &RequestMeta, request: OffsetCommitRequest) -> Result<Bytes, DispatchError> {
    let group = request.group_id.to_string();
    let group_error = group_error(ctx, meta, &request, &group);
    let (accepted, mut answers) = check_partitions(ctx, meta, &request, group_error);
    if !accepted.is_empty() {
        store(ctx, group, accepted, &mut answers).await;
    }
    meta.encode(&response(&request, &answers))
}

/// Why the whole request is refused, if it is: no group id, no grant on
/// the group, or a member or generation the group does not know.
fn group_error(ctx: &Context, meta: &RequestMeta, request: &OffsetCommitRequest, group: &str) -> Option<ResponseError> {
    if group.is_empty() {
        Some(ResponseError::InvalidGroupId)
    } else if !meta.may(ctx, Operation::Group, Resource::Group(group)) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        let member = MemberRef {
            id: request.member_id.as_str(),
            instance: request.group_instance_id.as_deref(),
        };
        ctx.coordinator
            .check_commit(group, request.generation_id_or_member_epoch, member)
    }
}

/// Every requested partition either accepted (its offset to store) or
/// answered with its error.
fn check_partitions(
    ctx: &Context,
    meta: &RequestMeta,
    request: &OffsetCommitRequest,
    group_error: Option<ResponseError>,
) -> (Accepted, Answers) {
    let timestamp_ms = now_ms();
    let mut accepted = Vec::new();
    let mut answers = Vec::new();
    for (t, topic) in request.topics.iter().enumerate() {
        let known = ctx.topics.get(topic.name.as_str());
        // Kafka asks READ of the topic too: committing is part of consuming it.
        let topic_allowed =
            group_error.is_some() || meta.may(ctx, Operation::Consume, Resource::Topic(topic.name.as_str()));
        for (p, partition) in topic.partitions.iter().enumerate() {
            let exists = known
                .as_ref()
                .and_then(|k| k.partition(partition.partition_index))
                .is_some();
            let error = match group_error {
                Some(error) => Some(error),
                None if !topic_allowed => Some(ResponseError::TopicAuthorizationFailed),
                None if !exists => Some(ResponseError::UnknownTopicOrPartition),
                None => match committed_value(partition, meta.version, timestamp_ms) {
                    Ok(value) => {
                        accepted.push((topic.name.to_string(), partition.partition_index, value));
                        None
                    }
                    Err(error) => Some(error),
                },
            };
            answers.push((t, p, error));
        }
    }
    (accepted, answers)
}

/// The value to store for a partition the request may commit, or
/// OFFSET_METADATA_TOO_LARGE.
fn committed_value(
    partition: &OffsetCommitRequestPartition,
    version: i16,
    timestamp_ms: i64,
) -> Result<CommittedOffset, ResponseError> {
    let metadata = partition
        .committed_metadata
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_default();
    if metadata.len() > OFFSET_METADATA_BYTES_MAX {
        return Err(ResponseError::OffsetMetadataTooLarge);
    }
    let leader_epoch = if version >= 6 {
        partition.committed_leader_epoch
    } else {
        -1
    };
    Ok(CommittedOffset {
        offset: partition.committed_offset,
        leader_epoch,
        commit_timestamp_ms: timestamp_ms,
        metadata,
    })
}

/// Stores the accepted offsets in one durable write; if it fails, every
/// accepted partition answers COORDINATOR_NOT_AVAILABLE.
async fn store(ctx: &Context, group: String, accepted: Accepted, answers: &mut Answers) {
    let (coordinator, committing) = (Arc::clone(&ctx.coordinator), group.clone());
    if let Err(error) = blocking(move || coordinator.commit_blocking(&committing, &accepted)).await {
        tracing::error!(group = %group, %error, "could not store committed offsets");
        for answer in answers.iter_mut().filter(|a| a.2.is_none()) {
            answer.2 = Some(ResponseError::CoordinatorNotAvailable);
        }
    }
}

fn response(request: &OffsetCommitRequest, answers: &Answers) -> OffsetCommitResponse {
    let topics = request
        .topics
        .iter()
        .enumerate()
        .map(|(t, topic)| {
            let partitions = topic
                .partitions
                .iter()
                .enumerate()
                .map(|(p, partition)| {
                    let error = answers.iter().find(|a| a.0 == t && a.1 == p).and_then(|a| a.2);
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(partition.partition_index)
                        .with_error_code(error.map_or(0, |e| e.code()))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
