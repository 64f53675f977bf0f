//! Metadata: the one broker, and every requested topic with its partitions
//! (all led by this broker). Unknown topics are created here when
//! `auto_create_topics` is on and the client allows it, as Kafka does.

use super::{blocking, text};
use crate::context::{Context, NODE_ID};
use crate::server::dispatch::{DispatchError, RequestMeta};
use crate::server::errors::topic_error_code;
use crate::topics::{Topic, TopicError};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use std::sync::Arc;

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

async fn find_or_create(ctx: &Context, name: &str, auto_create: bool) -> Result<Arc<Topic>, ResponseError> {
    if let Some(topic) = ctx.topics.get(name) {
        return Ok(topic);
    }
    if !auto_create {
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
    let topics = match wanted {
        None => ctx.topics.list().iter().map(|topic| describe(topic, version)).collect(),
        Some(list) => {
            let mut described = Vec::with_capacity(list.len());
            for wanted in list {
                let entry = match &wanted.name {
                    Some(name) => match find_or_create(ctx, name.as_str(), auto_create).await {
                        Ok(topic) => describe(&topic, version),
                        Err(error) => failed(Some(name.clone()), error),
                    },
                    None => match ctx.topics.list().into_iter().find(|t| t.id == wanted.topic_id) {
                        Some(topic) => describe(&topic, version),
                        None => {
                            let mut topic = failed(None, ResponseError::UnknownTopicId);
                            topic.topic_id = wanted.topic_id;
                            topic
                        }
                    },
                };
                described.push(entry);
            }
            described
        }
    };
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
    meta.encode(&response)
}
