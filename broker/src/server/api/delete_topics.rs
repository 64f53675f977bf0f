//! DeleteTopics: deletes topics by name (or, from v6, by id), with their
//! data and every committed offset that pointed into them.

use super::{blocking, text};
use crate::context::Context;
use crate::security::authorization::{Operation, Resource};
use crate::server::errors::topic_error_code;
use crate::server::request::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use std::sync::Arc;

pub async fn handle(ctx: &Context, meta: &RequestMeta, request: DeleteTopicsRequest) -> Result<Bytes, DispatchError> {
    let version = meta.version;
    let wanted: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let mut results = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let name = name.or_else(|| {
            ctx.topics
                .list()
                .into_iter()
                .find(|t| t.id == id)
                .map(|t| t.name.clone())
        });
        let mut result = DeletableTopicResult::default();
        if version >= 6 {
            result.topic_id = id;
        }
        let Some(name) = name else {
            result.error_code = ResponseError::UnknownTopicId.code();
            results.push(result);
            continue;
        };
        let by_id = version >= 6 && !id.is_nil();
        if !meta.may(ctx, Operation::Delete, Resource::Topic(&name)) {
            // Asked by id, the name is not revealed to a user refused it (as Kafka).
            result.name = (!by_id).then(|| TopicName(text(&name)));
            result.error_code = ResponseError::TopicAuthorizationFailed.code();
            if version >= 5 {
                let what = if by_id {
                    "this topic".to_owned()
                } else {
                    format!("topic {name:?}")
                };
                result.error_message = Some(text(&format!("not authorized to delete {what}")));
            }
            results.push(result);
            continue;
        }
        result.name = Some(TopicName(text(&name)));
        let (topics, store, deleting) = (
            Arc::clone(&ctx.topics),
            Arc::clone(ctx.coordinator.store()),
            name.clone(),
        );
        let outcome = blocking(move || {
            topics.delete(&deleting)?;
            store.forget_topic(&deleting).map_err(crate::topics::TopicError::from)
        })
        .await;
        if let Err(error) = outcome {
            result.error_code = topic_error_code(&error).code();
            if version >= 5 {
                result.error_message = Some(text(&error.to_string()));
            }
        }
        results.push(result);
    }
    meta.encode(&DeleteTopicsResponse::default().with_responses(results))
}
