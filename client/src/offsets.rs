//! Offsets requests shared by the consumer and the admin client: ListOffsets
//! for one partition, and a group's OffsetFetch and OffsetCommit.

use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::error::{check, ClientError, Result};
use crate::types::TopicPartition;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, HashMap};

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// ListOffsets for one partition: -1 latest, -2 earliest, or a timestamp.
pub async fn list_offset(cluster: &Cluster, tp: &TopicPartition, timestamp: i64) -> Result<i64> {
    let connection = cluster.leader(&tp.topic, tp.partition).await?;
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(text(&tp.topic)))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(tp.partition)
                .with_timestamp(timestamp)])]);
    let response: ListOffsetsResponse = connection.send(ApiKey::ListOffsets, &request).await?;
    let partition = response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| ClientError::Invalid("empty ListOffsets response".into()))?;
    check(partition.error_code, || {
        format!("listing offsets of {}/{}", tp.topic, tp.partition)
    })?;
    Ok(partition.offset)
}

/// OffsetFetch of `partitions` for `group`.
pub async fn committed_offsets(
    coordinator: &Connection,
    group: &str,
    partitions: &[TopicPartition],
) -> Result<HashMap<TopicPartition, i64>> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_topics(Some(
            by_topic
                .into_iter()
                .map(|(t, p)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(text(t)))
                        .with_partition_indexes(p)
                })
                .collect(),
        ));
    let response: OffsetFetchResponse = coordinator.send(ApiKey::OffsetFetch, &request).await?;
    check(response.error_code, || {
        format!("fetching committed offsets of group {group:?}")
    })?;
    let mut offsets = HashMap::new();
    for topic in response.topics {
        for partition in topic.partitions {
            check(partition.error_code, || {
                format!(
                    "committed offset of {}/{}",
                    topic.name.as_str(),
                    partition.partition_index
                )
            })?;
            offsets.insert(
                TopicPartition {
                    topic: topic.name.to_string(),
                    partition: partition.partition_index,
                },
                partition.committed_offset,
            );
        }
    }
    Ok(offsets)
}

/// OffsetCommit; generation -1 and an empty member id commit as a simple consumer.
pub async fn commit_offsets(
    coordinator: &Connection,
    group: &str,
    generation: i32,
    member_id: &str,
    offsets: &[(TopicPartition, i64)],
) -> Result<()> {
    let no_metadata: Vec<(TopicPartition, i64, &str)> =
        offsets.iter().map(|(tp, offset)| (tp.clone(), *offset, "")).collect();
    commit_offsets_with_metadata(coordinator, group, generation, member_id, &no_metadata).await
}

/// As [`commit_offsets`], each offset with Kafka's per-partition metadata
/// string (what the committer wants readers of the offset to know).
pub async fn commit_offsets_with_metadata(
    coordinator: &Connection,
    group: &str,
    generation: i32,
    member_id: &str,
    offsets: &[(TopicPartition, i64, &str)],
) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (tp, offset, metadata) in offsets {
        by_topic.entry(&tp.topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(*offset)
                .with_committed_metadata(Some(text(metadata))),
        );
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(text(member_id))
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, p)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(text(t)))
                        .with_partitions(p)
                })
                .collect(),
        );
    let response: OffsetCommitResponse = coordinator.send(ApiKey::OffsetCommit, &request).await?;
    for topic in response.topics {
        for partition in topic.partitions {
            check(partition.error_code, || {
                format!(
                    "committing {}/{} for group {group:?}",
                    topic.name.as_str(),
                    partition.partition_index
                )
            })?;
        }
    }
    Ok(())
}
