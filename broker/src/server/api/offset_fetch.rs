//! OffsetFetch: a group's committed offsets for the requested partitions (or
//! all it has, when no topics are named); -1 where nothing was committed.
//! v1-7 ask for one group, v8+ for several.

use super::text;
use crate::context::Context;
use crate::server::dispatch::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use std::collections::BTreeMap;

/// (offset, leader epoch, metadata) per partition, by topic.
type Offsets = BTreeMap<String, Vec<(i32, i64, i32, String)>>;

fn lookup(ctx: &Context, group: &str, wanted: Option<Vec<(String, Vec<i32>)>>) -> Offsets {
    let store = ctx.coordinator.store();
    let mut found = Offsets::new();
    match wanted {
        None => {
            for (topic, partition, value) in store.group_offsets(group) {
                found
                    .entry(topic)
                    .or_default()
                    .push((partition, value.offset, value.leader_epoch, value.metadata));
            }
        }
        Some(topics) => {
            for (topic, partitions) in topics {
                let entry = found.entry(topic.clone()).or_default();
                for partition in partitions {
                    match store.committed(group, &topic, partition) {
                        Some(value) => entry.push((partition, value.offset, value.leader_epoch, value.metadata)),
                        None => entry.push((partition, -1, -1, String::new())),
                    }
                }
            }
        }
    }
    found
}

pub fn handle(ctx: &Context, meta: &RequestMeta, request: OffsetFetchRequest) -> Result<Bytes, DispatchError> {
    let version = meta.version;
    if version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|group| {
                let wanted = group.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.to_string(), t.partition_indexes))
                        .collect()
                });
                let topics = lookup(ctx, group.group_id.as_str(), wanted)
                    .into_iter()
                    .map(|(topic, partitions)| {
                        let partitions = partitions
                            .into_iter()
                            .map(|(index, offset, epoch, metadata)| {
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(index)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(Some(text(&metadata)))
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
            })
            .collect();
        return meta.encode(&OffsetFetchResponse::default().with_groups(groups));
    }
    let wanted = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.to_string(), t.partition_indexes))
            .collect()
    });
    let topics = lookup(ctx, request.group_id.as_str(), wanted)
        .into_iter()
        .map(|(topic, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, offset, epoch, metadata)| {
                    let mut partition = OffsetFetchResponsePartition::default()
                        .with_partition_index(index)
                        .with_committed_offset(offset)
                        .with_metadata(Some(text(&metadata)));
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
        .collect();
    meta.encode(&OffsetFetchResponse::default().with_topics(topics))
}
