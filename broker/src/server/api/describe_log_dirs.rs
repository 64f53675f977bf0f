//! DescribeLogDirs: the broker's one data directory with the size on disk of
//! each requested partition (all partitions when `topics` is null), and the
//! filesystem's total and usable bytes as unknown (-1, v4). `relay status` reads topic sizes
//! from it; Kafka's `kafka-log-dirs` tool does the same.

use super::text;
use crate::context::Context;
use crate::security::authorization::{Operation, Resource};
use crate::server::request::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

pub fn handle(ctx: &Context, meta: &RequestMeta, request: DescribeLogDirsRequest) -> Result<Bytes, DispatchError> {
    if !meta.may(ctx, Operation::Describe, Resource::Cluster) {
        // As Kafka: DESCRIBE of the cluster, or nothing (v3+ say why).
        let mut response = DescribeLogDirsResponse::default();
        if meta.version >= 3 {
            response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        }
        return meta.encode(&response);
    }
    let wanted: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.topic.to_string(), t.partitions))
            .collect()
    });
    let mut topics = Vec::new();
    for topic in ctx.topics.list() {
        let partitions: Vec<i32> = match &wanted {
            None => (0..topic.partitions.len() as i32).collect(),
            Some(wanted) => match wanted.iter().find(|(name, _)| *name == topic.name) {
                Some((_, partitions)) => partitions.clone(),
                None => continue,
            },
        };
        let partitions = partitions
            .into_iter()
            .filter_map(|index| {
                topic.partition(index).map(|log| {
                    DescribeLogDirsPartition::default()
                        .with_partition_index(index)
                        .with_partition_size(log.size_bytes() as i64)
                        .with_offset_lag(0)
                })
            })
            .collect();
        topics.push(
            DescribeLogDirsTopic::default()
                .with_name(TopicName(text(&topic.name)))
                .with_partitions(partitions),
        );
    }
    let data_dir = ctx.config.data_dir.display().to_string();
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(text(&data_dir))
        .with_topics(topics);
    if meta.version >= 4 {
        // Unknown, as Kafka reports it; watch the filesystem with node_exporter.
        result.total_bytes = -1;
        result.usable_bytes = -1;
    }
    meta.encode(&DescribeLogDirsResponse::default().with_results(vec![result]))
}
