//! CreateTopics: creates each topic with its partition count (-1: the
//! broker default) and Kafka topic configs, each honoured, accepted as
//! already true, or refused with INVALID_CONFIG naming it
//! ([`crate::topics::kafka_configs`]); replication factor must be 1 or -1 on
//! this single broker, and an explicit replica assignment must put every
//! partition on it (its partitions then give the count). `validate_only`
//! checks everything without creating.

use super::{blocking, text};
use crate::context::{Context, NODE_ID};
use crate::security::authorization::{Operation, Resource};
use crate::server::errors::topic_error_code;
use crate::server::request::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{BrokerId, CreateTopicsRequest, CreateTopicsResponse};
use std::sync::Arc;

pub async fn handle(ctx: &Context, meta: &RequestMeta, request: CreateTopicsRequest) -> Result<Bytes, DispatchError> {
    let version = meta.version;
    let mut results = Vec::with_capacity(request.topics.len());
    let names: Vec<String> = request.topics.iter().map(|t| t.name.to_string()).collect();
    for wanted in request.topics {
        let name = wanted.name.to_string();
        let mut result = CreatableTopicResult::default().with_name(wanted.name.clone());
        if names.iter().filter(|n| **n == name).count() > 1 {
            result.error_code = ResponseError::InvalidRequest.code();
            result.error_message = Some(text("the topic appears more than once in the request"));
            results.push(result);
            continue;
        }
        if !meta.may(ctx, Operation::Create, Resource::Topic(&name)) {
            result.error_code = ResponseError::TopicAuthorizationFailed.code();
            result.error_message = Some(text(&format!("not authorized to create topic {name:?}")));
            results.push(result);
            continue;
        }
        let configs = match configs_of(&wanted.configs) {
            Ok(configs) => configs,
            Err(message) => {
                result.error_code = ResponseError::InvalidConfig.code();
                result.error_message = Some(text(&message));
                results.push(result);
                continue;
            }
        };
        let partitions = match assigned_partitions(&wanted) {
            Ok(assigned) => assigned.unwrap_or(wanted.num_partitions),
            Err((error, message)) => {
                result.error_code = error.code();
                result.error_message = Some(text(&message));
                results.push(result);
                continue;
            }
        };
        let (topics, replication) = (Arc::clone(&ctx.topics), wanted.replication_factor);
        let validate_only = request.validate_only;
        let creating = name.clone();
        match blocking(move || topics.create(&creating, partitions, replication, &configs, validate_only)).await {
            Ok(topic) => {
                if version >= 5 {
                    result.num_partitions = topic.settings.partitions.unwrap_or(1);
                    result.replication_factor = 1;
                }
                if version >= 7 {
                    result.topic_id = topic.id;
                }
            }
            Err(error) => {
                tracing::info!(peer = %meta.peer, topic = %name, %error, "create topic refused");
                result.error_code = topic_error_code(&error).code();
                result.error_message = Some(text(&error.to_string()));
            }
        }
        results.push(result);
    }
    meta.encode(&CreateTopicsResponse::default().with_topics(results))
}

/// The (name, value) of each config; a config without a value is refused,
/// as Kafka does, rather than dropped.
fn configs_of(configs: &[CreatableTopicConfig]) -> Result<Vec<(String, String)>, String> {
    configs
        .iter()
        .map(|config| match &config.value {
            Some(value) => Ok((config.name.to_string(), value.to_string())),
            None => Err(format!(
                "topic config {} has no value: null values are not supported",
                config.name.as_str()
            )),
        })
        .collect()
}

/// The partition count an explicit replica assignment gives, checked. As in
/// Kafka it comes instead of a count and a factor; here the one replica of
/// every partition is this broker's, and partitions are numbered 0..n.
fn assigned_partitions(topic: &CreatableTopic) -> Result<Option<i32>, (ResponseError, String)> {
    if topic.assignments.is_empty() {
        return Ok(None);
    }
    if topic.num_partitions != -1 || topic.replication_factor != -1 {
        return Err((
            ResponseError::InvalidRequest,
            "a replica assignment was given with a partition count or replication factor; give one or the other".into(),
        ));
    }
    let mut assignments: Vec<_> = topic.assignments.iter().collect();
    assignments.sort_by_key(|assignment| assignment.partition_index);
    for (expected, assignment) in (0..).zip(&assignments) {
        if assignment.partition_index != expected {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!("the replica assignment lacks partition {expected}: partitions are numbered 0..n"),
            ));
        }
        if assignment.broker_ids != [BrokerId(NODE_ID)] {
            let brokers: Vec<i32> = assignment.broker_ids.iter().map(|id| id.0).collect();
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "partition {expected} is assigned to brokers {brokers:?}: this single broker (node {NODE_ID}) \
                     holds the one replica of every partition"
                ),
            ));
        }
    }
    Ok(Some(assignments.len() as i32))
}
