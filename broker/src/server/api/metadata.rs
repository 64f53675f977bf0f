//! Metadata: the one broker, and every requested topic with its partitions
//! (all led by this broker). Unknown topics are created here when
//! `auto_create_topics` is on and the client allows it, as Kafka does.
//!
//! With grants (`security::authorization`), as Kafka: a listing shows only
//! the topics the user may describe; a named topic it may not describe is
//! TOPIC_AUTHORIZATION_FAILED whether it exists or not; auto-creation needs
//! `create`. Asked for (v8+), each topic carries the user's authorized
//! operations, and the cluster its own (v8-v10).

use super::{blocking, text};
use crate::context::{Context, NODE_ID};
use crate::security::authorization::{Operation, Resource};
use crate::server::errors::topic_error_code;
use crate::server::request::{DispatchError, RequestMeta};
use crate::topics::{Topic, TopicError};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use std::sync::Arc;
use uuid::Uuid;

fn describe(topic: &Topic, version: i16) -> MetadataResponseTopic {
    let partitions = (0..topic.partitions.len() as i32)
        .map(|index| {
            let mut partition = MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(BrokerId(NODE_ID))
                .with_replica_nodes(vec![BrokerId(NODE_ID)])
                .with_isr_nodes(vec![BrokerId(NODE_ID)]);
            if version >= 7 {
                partition.leader_epoch = 0;
            }
            partition
        })
        .collect();
    let mut described = MetadataResponseTopic::default()
        .with_name(Some(TopicName(text(&topic.name))))
        .with_partitions(partitions);
    if version >= 10 {
        described.topic_id = topic.id;
    }
    described
}

fn failed(name: Option<TopicName>, error: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(name.unwrap_or_else(|| TopicName(text("")))))
        .with_error_code(error.code())
}

async fn find_or_create(
    ctx: &Context,
    meta: &RequestMeta,
    name: &str,
    auto_create: bool,
) -> Result<Arc<Topic>, ResponseError> {
    if !meta.may(ctx, Operation::Describe, Resource::Topic(name)) {
        return Err(ResponseError::TopicAuthorizationFailed);
    }
    if let Some(topic) = ctx.topics.get(name) {
        return Ok(topic);
    }
    if !auto_create || !meta.may(ctx, Operation::Create, Resource::Topic(name)) {
        return Err(ResponseError::UnknownTopicOrPartition);
    }
    let topics = Arc::clone(&ctx.topics);
    let owned = name.to_owned();
    match blocking(move || topics.create(&owned, -1, -1, &[], false)).await {
        Ok(topic) => Ok(topic),
        Err(TopicError::AlreadyExists(_)) => ctx.topics.get(name).ok_or(ResponseError::UnknownTopicOrPartition),
        Err(error) => {
            tracing::warn!(topic = name, %error, "could not auto-create topic");
            Err(topic_error_code(&error))
        }
    }
}

pub async fn handle(ctx: &Context, meta: &RequestMeta, request: MetadataRequest) -> Result<Bytes, DispatchError> {
    let version = meta.version;
    let auto_create = ctx.topics.auto_create_enabled() && (version < 4 || request.allow_auto_topic_creation);
    let wanted = match request.topics {
        None => None,
        Some(list) if version == 0 && list.is_empty() => None,
        Some(list) => Some(list),
    };
    let authorizer = &ctx.security.authorizer;
    let user = meta.user.as_deref();
    let mut topics: Vec<MetadataResponseTopic> = match wanted {
        None => ctx
            .topics
            .list()
            .iter()
            .filter(|topic| authorizer.allows(user, Operation::Describe, Resource::Topic(&topic.name)))
            .map(|topic| describe(topic, version))
            .collect(),
        Some(list) => {
            let mut described = Vec::with_capacity(list.len());
            for wanted in list {
                let entry = match &wanted.name {
                    Some(name) => match find_or_create(ctx, meta, name.as_str(), auto_create).await {
                        Ok(topic) => describe(&topic, version),
                        Err(error) => failed(Some(name.clone()), error),
                    },
                    None => described_by_id(ctx, meta, wanted.topic_id, version),
                };
                described.push(entry);
            }
            described
        }
    };
    if version >= 8 && request.include_topic_authorized_operations {
        for topic in topics.iter_mut().filter(|t| t.error_code == 0) {
            let name = topic.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
            topic.topic_authorized_operations = meta.authorized_operations(ctx, Resource::Topic(&name));
        }
    }
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(NODE_ID))
        .with_host(text(&ctx.advertised_host))
        .with_port(ctx.advertised_port);
    let mut response = MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_topics(topics);
    if version >= 1 {
        response.controller_id = BrokerId(NODE_ID);
    }
    if version >= 2 {
        response.cluster_id = Some(text(&ctx.cluster_id));
    }
    if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
        response.cluster_authorized_operations = meta.authorized_operations(ctx, Resource::Cluster);
    }
    meta.encode(&response)
}

/// A topic asked for by id: described, or UNKNOWN_TOPIC_ID, or refused
/// without revealing its name (as Kafka).
fn described_by_id(ctx: &Context, meta: &RequestMeta, topic_id: Uuid, version: i16) -> MetadataResponseTopic {
    match ctx.topics.list().into_iter().find(|t| t.id == topic_id) {
        Some(topic) if !meta.may(ctx, Operation::Describe, Resource::Topic(&topic.name)) => {
            let mut denied = failed(None, ResponseError::TopicAuthorizationFailed);
            denied.topic_id = topic_id;
            // Asked by id: the name is not revealed (as Kafka).
            denied.name = None;
            denied
        }
        Some(topic) => describe(&topic, version),
        None => {
            let mut topic = failed(None, ResponseError::UnknownTopicId);
            topic.topic_id = topic_id;
            topic
        }
    }
}
