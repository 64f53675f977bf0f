//! OffsetCommit: stores a group's offsets durably, all partitions of a
//! request in one write. Members of an active group must name their current
//! generation; a simple consumer (generation -1, no member id) may commit
//! while the group has no members.

use super::blocking;
use crate::context::Context;
use crate::group::coordinator::OFFSET_METADATA_BYTES_MAX;
use crate::group::records::CommittedOffset;
use crate::security::authorization::{Operation, Resource};
use crate::server::request::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use relay_proto::clock::now_ms;
use std::sync::Arc;

pub async fn handle(ctx: &Context, meta: &RequestMeta, request: OffsetCommitRequest) -> Result<Bytes, DispatchError> {
    let group = request.group_id.to_string();
    let group_error = if group.is_empty() {
        Some(ResponseError::InvalidGroupId)
    } else if !meta.may(ctx, Operation::Group, Resource::Group(&group)) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        ctx.coordinator.check_commit(
            &group,
            request.generation_id_or_member_epoch,
            request.member_id.as_str(),
        )
    };
    let timestamp_ms = now_ms();
    let mut accepted = Vec::new();
    let mut answers: Vec<(usize, usize, Option<ResponseError>)> = Vec::new();
    for (t, topic) in request.topics.iter().enumerate() {
        let known = ctx.topics.get(topic.name.as_str());
        // Kafka asks READ of the topic too: committing is part of consuming it.
        let topic_allowed =
            group_error.is_some() || meta.may(ctx, Operation::Consume, Resource::Topic(topic.name.as_str()));
        for (p, partition) in topic.partitions.iter().enumerate() {
            let metadata = partition
                .committed_metadata
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            let error = if group_error.is_some() {
                group_error
            } else if !topic_allowed {
                Some(ResponseError::TopicAuthorizationFailed)
            } else if known
                .as_ref()
                .and_then(|k| k.partition(partition.partition_index))
                .is_none()
            {
                Some(ResponseError::UnknownTopicOrPartition)
            } else if metadata.len() > OFFSET_METADATA_BYTES_MAX {
                Some(ResponseError::OffsetMetadataTooLarge)
            } else {
                let leader_epoch = if meta.version >= 6 {
                    partition.committed_leader_epoch
                } else {
                    -1
                };
                let value = CommittedOffset {
                    offset: partition.committed_offset,
                    leader_epoch,
                    commit_timestamp_ms: timestamp_ms,
                    metadata,
                };
                accepted.push((topic.name.to_string(), partition.partition_index, value));
                None
            };
            answers.push((t, p, error));
        }
    }
    if !accepted.is_empty() {
        let (coordinator, committing) = (Arc::clone(&ctx.coordinator), group.clone());
        if let Err(error) = blocking(move || coordinator.commit_blocking(&committing, &accepted)).await {
            tracing::error!(group = %group, %error, "could not store committed offsets");
            for answer in answers.iter_mut().filter(|a| a.2.is_none()) {
                answer.2 = Some(ResponseError::CoordinatorNotAvailable);
            }
        }
    }
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
    meta.encode(&OffsetCommitResponse::default().with_topics(topics))
}
