//! OffsetFetch: a group's committed offsets for the requested partitions (or
//! all it has, when no topics are named); -1 where nothing was committed.
//! v1-7 ask for one group, v8+ for several.

use super::text;
use crate::context::Context;
use crate::security::authorization::{Operation, Resource};
use crate::server::request::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use std::collections::BTreeMap;

/// (offset, leader epoch, metadata, error code) per partition, by topic.
type Offsets = BTreeMap<String, Vec<(i32, i64, i32, String, i16)>>;

/// The group's offsets, or GROUP_AUTHORIZATION_FAILED. As Kafka: a listing
/// leaves out topics the user may not describe; a named one gets
/// TOPIC_AUTHORIZATION_FAILED per partition.
fn lookup(
    ctx: &Context,
    meta: &RequestMeta,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Offsets, ResponseError> {
    if !meta.may(ctx, Operation::Describe, Resource::Group(group)) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    let authorizer = &ctx.security.authorizer;
    let describable =
        |topic: &str| authorizer.allows(meta.user.as_deref(), Operation::Describe, Resource::Topic(topic));
    let store = ctx.coordinator.store();
    let mut found = Offsets::new();
    match wanted {
        None => {
            for (topic, partition, value) in store.group_offsets(group) {
                if !describable(&topic) {
                    continue;
                }
                found
                    .entry(topic)
                    .or_default()
                    .push((partition, value.offset, value.leader_epoch, value.metadata, 0));
            }
        }
        Some(topics) => {
            for (topic, partitions) in topics {
                let allowed = meta.may(ctx, Operation::Describe, Resource::Topic(&topic));
                let entry = found.entry(topic.clone()).or_default();
                for partition in partitions {
                    if !allowed {
                        entry.push((
                            partition,
                            -1,
                            -1,
                            String::new(),
                            ResponseError::TopicAuthorizationFailed.code(),
                        ));
                        continue;
                    }
                    match store.committed(group, &topic, partition) {
                        Some(value) => entry.push((partition, value.offset, value.leader_epoch, value.metadata, 0)),
                        None => entry.push((partition, -1, -1, String::new(), 0)),
                    }
                }
            }
        }
    }
    Ok(found)
}

pub fn handle(ctx: &Context, meta: &RequestMeta, request: OffsetFetchRequest) -> Result<Bytes, DispatchError> {
    if meta.version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|group| group_offsets(ctx, meta, group))
            .collect();
        return meta.encode(&OffsetFetchResponse::default().with_groups(groups));
    }
    let wanted = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.to_string(), t.partition_indexes))
            .collect()
    });
    let requested = wanted.clone();
    match lookup(ctx, meta, request.group_id.as_str(), wanted) {
        Ok(found) => meta.encode(&OffsetFetchResponse::default().with_topics(topics_v0_to_v7(found, meta.version))),
        Err(error) => meta.encode(&refusal_v0_to_v7(requested, error, meta.version)),
    }
}

/// One group's answer of a v8+ request (which names several).
fn group_offsets(ctx: &Context, meta: &RequestMeta, group: OffsetFetchRequestGroup) -> OffsetFetchResponseGroup {
    let wanted = group.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.to_string(), t.partition_indexes))
            .collect()
    });
    let found = lookup(ctx, meta, group.group_id.as_str(), wanted);
    let error_code = found.as_ref().err().map_or(0, |e| e.code());
    let topics = found
        .unwrap_or_default()
        .into_iter()
        .map(|(topic, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, offset, epoch, metadata, error_code)| {
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(index)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(epoch)
                        .with_metadata(Some(text(&metadata)))
                        .with_error_code(error_code)
                })
                .collect();
            OffsetFetchResponseTopics::default()
                .with_name(TopicName(text(&topic)))
                .with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponseGroup::default()
        .with_group_id(group.group_id)
        .with_topics(topics)
        .with_error_code(error_code)
}

/// The answer of v0-v7 when the group may not be described: v2+ say so
/// once; v0-v1 have no top-level error, so each requested partition
/// carries it (as Kafka).
fn refusal_v0_to_v7(
    requested: Option<Vec<(String, Vec<i32>)>>,
    error: ResponseError,
    version: i16,
) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    if version >= 2 {
        response.error_code = error.code();
        return response;
    }
    response.topics = requested
        .unwrap_or_default()
        .into_iter()
        .map(|(topic, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|index| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(index)
                        .with_committed_offset(-1)
                        .with_metadata(Some(text("")))
                        .with_error_code(error.code())
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(text(&topic)))
                .with_partitions(partitions)
        })
        .collect();
    response
}

/// The found offsets as v0-v7 topics (the leader epoch from v5).
fn topics_v0_to_v7(found: Offsets, version: i16) -> Vec<OffsetFetchResponseTopic> {
    found
        .into_iter()
        .map(|(topic, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, offset, epoch, metadata, error_code)| {
                    let mut partition = OffsetFetchResponsePartition::default()
                        .with_partition_index(index)
                        .with_committed_offset(offset)
                        .with_metadata(Some(text(&metadata)))
                        .with_error_code(error_code);
                    if version >= 5 {
                        partition.committed_leader_epoch = epoch;
                    }
                    partition
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(text(&topic)))
                .with_partitions(partitions)
        })
        .collect()
}
