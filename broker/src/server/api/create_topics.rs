//! CreateTopics: creates each topic with its partition count (-1: the
//! broker default) and Kafka topic configs, each honoured, accepted as
//! already true, or refused with INVALID_CONFIG naming it
//! ([`crate::topics::kafka_configs`]); replication factor must be 1 or -1 on
//! this single broker. `validate_only` checks everything without creating.

use super::{blocking, text};
use crate::context::Context;
use crate::security::authorization::{Operation, Resource};
use crate::server::errors::topic_error_code;
use crate::server::request::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopicConfig;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
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
        let (topics, partitions, replication) = (
            Arc::clone(&ctx.topics),
            wanted.num_partitions,
            wanted.replication_factor,
        );
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
