//! Administration: create, delete and describe topics; list, describe and
//! delete groups; committed offsets, lag, and resetting a group's offsets (only
//! while the group has no members, as Kafka's tools require). It stands
//! beside the producer and the consumer, never on them: it uses only the
//! cluster, the offsets helpers and the shared types.

use crate::cluster::Cluster;
use crate::error::{check, ClientError, Result};
use crate::offsets::{commit_offsets, committed_offsets, list_offset};
use crate::types::{StartPosition, TopicPartition, LIST_OFFSETS_EARLIEST, LIST_OFFSETS_LATEST};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// A partition's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub partition: i32,
    pub leader: i32,
    pub start_offset: i64,
    pub end_offset: i64,
}

#[derive(Debug, Clone)]
pub struct GroupSummary {
    pub group: String,
    pub protocol_type: String,
    pub state: String,
}

#[derive(Debug, Clone)]
pub struct GroupMember {
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    pub assigned: Vec<TopicPartition>,
}

#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: String,
    pub protocol: String,
    pub members: Vec<GroupMember>,
}

/// A group's position in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    pub end_offset: i64,
    pub lag: i64,
    /// The committer's metadata string ("" when none).
    pub metadata: String,
}

/// What DeleteGroups did with a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupDeletion {
    /// Gone, with its committed offsets.
    Deleted,
    /// Kept: it has members (NON_EMPTY_GROUP).
    HasMembers,
    /// The cluster does not know it (GROUP_ID_NOT_FOUND).
    Unknown,
}

pub struct Admin {
    cluster: Arc<Cluster>,
}

impl Admin {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        Self { cluster }
    }

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Creates a topic; `configs` are Kafka topic configs (`retention.ms`, ...).
    pub async fn create_topic(&self, name: &str, partitions: i32, configs: &[(String, String)]) -> Result<()> {
        let connection = self.cluster.any_connection().await?;
        let topic = CreatableTopic::default()
            .with_name(TopicName(text(name)))
            .with_num_partitions(partitions)
            .with_replication_factor(-1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(text(k))
                            .with_value(Some(text(v)))
                    })
                    .collect(),
            );
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(30_000);
        let response: CreateTopicsResponse = connection.send(ApiKey::CreateTopics, &request).await?;
        let result = response
            .topics
            .first()
            .ok_or_else(|| ClientError::Invalid("empty CreateTopics response".into()))?;
        let detail = result
            .error_message
            .as_ref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        check(result.error_code, || format!("creating topic {name:?}{detail}"))?;
        self.cluster.invalidate(name);
        Ok(())
    }

    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let connection = self.cluster.any_connection().await?;
        let request = DeleteTopicsRequest::default()
            .with_topic_names(vec![TopicName(text(name))])
            .with_timeout_ms(30_000);
        let response: DeleteTopicsResponse = connection.send(ApiKey::DeleteTopics, &request).await?;
        let result = response
            .responses
            .first()
            .ok_or_else(|| ClientError::Invalid("empty DeleteTopics response".into()))?;
        check(result.error_code, || format!("deleting topic {name:?}"))?;
        self.cluster.invalidate(name);
        Ok(())
    }

    /// Every topic with its partition count.
    pub async fn list_topics(&self) -> Result<Vec<(String, usize)>> {
        Ok(self
            .cluster
            .refresh_all()
            .await?
            .into_iter()
            .map(|t| (t.name, t.leaders.len()))
            .collect())
    }

    /// A topic's partitions with their start and end offsets.
    pub async fn describe_topic(&self, name: &str) -> Result<Vec<PartitionOffsets>> {
        self.cluster.invalidate(name);
        let metadata = self.cluster.topic(name, false).await?;
        let mut partitions = Vec::with_capacity(metadata.leaders.len());
        for (index, leader) in metadata.leaders.iter().enumerate() {
            let tp = TopicPartition {
                topic: name.to_owned(),
                partition: index as i32,
            };
            partitions.push(PartitionOffsets {
                partition: index as i32,
                leader: *leader,
                start_offset: list_offset(&self.cluster, &tp, LIST_OFFSETS_EARLIEST).await?,
                end_offset: list_offset(&self.cluster, &tp, LIST_OFFSETS_LATEST).await?,
            });
        }
        Ok(partitions)
    }

    /// Bytes on disk of every partition, by (topic, partition), as one broker
    /// reports its log directories (DescribeLogDirs). Relay's broker holds every
    /// partition; against a Kafka cluster only that broker's replicas appear.
    pub async fn partition_sizes(&self) -> Result<Vec<(TopicPartition, i64)>> {
        let connection = self.cluster.any_connection().await?;
        let response: DescribeLogDirsResponse = connection
            .send(
                ApiKey::DescribeLogDirs,
                &DescribeLogDirsRequest::default().with_topics(None),
            )
            .await?;
        check(response.error_code, || "describing log directories".to_owned())?;
        let mut sizes: Vec<(TopicPartition, i64)> = Vec::new();
        for dir in response.results {
            check(dir.error_code, || format!("log directory {}", dir.log_dir))?;
            for topic in dir.topics {
                for partition in topic.partitions {
                    sizes.push((
                        TopicPartition {
                            topic: topic.name.to_string(),
                            partition: partition.partition_index,
                        },
                        partition.partition_size,
                    ));
                }
            }
        }
        sizes.sort();
        Ok(sizes)
    }

    pub async fn list_groups(&self) -> Result<Vec<GroupSummary>> {
        let connection = self.cluster.any_connection().await?;
        let response: ListGroupsResponse = connection
            .send(ApiKey::ListGroups, &ListGroupsRequest::default())
            .await?;
        check(response.error_code, || "listing groups".to_owned())?;
        let mut groups: Vec<GroupSummary> = response
            .groups
            .into_iter()
            .map(|g| GroupSummary {
                group: g.group_id.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
            })
            .collect();
        groups.sort_by(|a, b| a.group.cmp(&b.group));
        Ok(groups)
    }

    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let coordinator = self.cluster.coordinator(group).await?;
        let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(text(group))]);
        let response: DescribeGroupsResponse = coordinator.send(ApiKey::DescribeGroups, &request).await?;
        let described = response
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Invalid("empty DescribeGroups response".into()))?;
        check(described.error_code, || format!("describing group {group:?}"))?;
        let members = described
            .members
            .into_iter()
            .map(|m| GroupMember {
                member_id: m.member_id.to_string(),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assigned: decode_member_assignment(&m.member_assignment),
            })
            .collect();
        Ok(GroupDescription {
            state: described.group_state.to_string(),
            protocol: described.protocol_data.to_string(),
            members,
        })
    }

    /// Deletes a group without members, with its committed offsets (Kafka's
    /// DeleteGroups). A group with members, or one the cluster does not know,
    /// is an outcome, not an error: the caller tells the user what to do.
    pub async fn delete_group(&self, group: &str) -> Result<GroupDeletion> {
        let coordinator = self.cluster.coordinator(group).await?;
        let request = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text(group))]);
        let response: DeleteGroupsResponse = coordinator.send(ApiKey::DeleteGroups, &request).await?;
        let result = response
            .results
            .first()
            .ok_or_else(|| ClientError::Invalid("empty DeleteGroups response".into()))?;
        match ResponseError::try_from_code(result.error_code) {
            Some(ResponseError::NonEmptyGroup) => Ok(GroupDeletion::HasMembers),
            Some(ResponseError::GroupIdNotFound) => Ok(GroupDeletion::Unknown),
            _ => check(result.error_code, || format!("deleting group {group:?}")).map(|()| GroupDeletion::Deleted),
        }
    }

    /// Every committed offset of a group.
    pub async fn group_offsets(&self, group: &str) -> Result<Vec<(TopicPartition, i64)>> {
        Ok(self
            .group_offsets_with_metadata(group)
            .await?
            .into_iter()
            .map(|(tp, offset, _)| (tp, offset))
            .collect())
    }

    /// Committed offsets with their metadata strings.
    pub async fn group_offsets_with_metadata(&self, group: &str) -> Result<Vec<(TopicPartition, i64, String)>> {
        let coordinator = self.cluster.coordinator(group).await?;
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_topics(None);
        let response: OffsetFetchResponse = coordinator.send(ApiKey::OffsetFetch, &request).await?;
        check(response.error_code, || format!("fetching offsets of group {group:?}"))?;
        let mut offsets: Vec<(TopicPartition, i64, String)> = response
            .topics
            .into_iter()
            .flat_map(|t| {
                let topic = t.name.to_string();
                t.partitions.into_iter().map(move |p| {
                    (
                        TopicPartition {
                            topic: topic.clone(),
                            partition: p.partition_index,
                        },
                        p.committed_offset,
                        p.metadata.map(|m| m.to_string()).unwrap_or_default(),
                    )
                })
            })
            .filter(|(_, offset, _)| *offset >= 0)
            .collect();
        offsets.sort();
        Ok(offsets)
    }

    /// Whether the cluster knows `group`: it has members or committed
    /// offsets. (Kafka describes any name, known or not, as "Dead".)
    pub async fn group_exists(&self, group: &str) -> Result<bool> {
        if self.list_groups().await?.iter().any(|g| g.group == group) {
            return Ok(true);
        }
        Ok(!self.group_offsets(group).await?.is_empty())
    }

    /// Committed offset, end offset and lag of every partition the group committed.
    pub async fn lag(&self, group: &str) -> Result<Vec<PartitionLag>> {
        let mut lags = Vec::new();
        for (tp, committed, metadata) in self.group_offsets_with_metadata(group).await? {
            let end_offset = list_offset(&self.cluster, &tp, LIST_OFFSETS_LATEST).await?;
            lags.push(PartitionLag {
                topic: tp.topic,
                partition: tp.partition,
                committed,
                end_offset,
                lag: (end_offset - committed).max(0),
                metadata,
            });
        }
        Ok(lags)
    }

    /// Moves a group's committed offsets in `topic` to `to`; refuses while the
    /// group has members, whose commits would overwrite the reset.
    pub async fn reset_offsets(
        &self,
        group: &str,
        topic: &str,
        to: StartPosition,
    ) -> Result<Vec<(TopicPartition, i64)>> {
        let description = self.describe_group(group).await?;
        if !description.members.is_empty() {
            return Err(ClientError::Invalid(format!(
                "group {group:?} has {} active member(s) (state {}); stop its consumers before resetting offsets",
                description.members.len(),
                description.state
            )));
        }
        let metadata = self.cluster.topic(topic, false).await?;
        let mut offsets = Vec::new();
        for partition in 0..metadata.leaders.len() as i32 {
            let tp = TopicPartition {
                topic: topic.to_owned(),
                partition,
            };
            let offset = to
                .resolve(|timestamp| list_offset(&self.cluster, &tp, timestamp))
                .await?;
            offsets.push((tp, offset));
        }
        let coordinator = self.cluster.coordinator(group).await?;
        commit_offsets(&coordinator, group, -1, "", &offsets).await?;
        Ok(offsets)
    }

    /// The committed offsets of `partitions` (-1 for none).
    pub async fn committed(&self, group: &str, partitions: &[TopicPartition]) -> Result<Vec<(TopicPartition, i64)>> {
        let coordinator = self.cluster.coordinator(group).await?;
        let map = committed_offsets(&coordinator, group, partitions).await?;
        Ok(partitions
            .iter()
            .map(|tp| (tp.clone(), map.get(tp).copied().unwrap_or(-1)))
            .collect())
    }
}

fn decode_member_assignment(bytes: &bytes::Bytes) -> Vec<TopicPartition> {
    use kafka_protocol::protocol::Decodable;
    if bytes.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]).clamp(0, 3);
    let mut body = bytes.slice(2..);
    ConsumerProtocolAssignment::decode(&mut body, version)
        .map(|a| {
            a.assigned_partitions
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| TopicPartition {
                        topic: t.topic.to_string(),
                        partition: *p,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}
