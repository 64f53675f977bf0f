//! Produce: appends each partition's record set in request order, then waits
//! for durability (per the partition's fsync policy) on its own task so the
//! connection can read the next request. `acks` 1 and -1 both answer after
//! the append is as durable as the policy promises (one node: the leader is
//! every replica); `acks = 0` gets no answer, but its data is still made
//! durable and visible. A retried idempotent batch gets its original offset.

use super::{blocking, text};
use crate::context::Context;
use crate::log::{AppendInfo, LogError, PartitionLog};
use crate::metrics;
use crate::security::authorization::{Operation, Resource};
use crate::server::errors::log_error_code;
use crate::server::request::{DispatchError, Durable, Reply, RequestMeta};
use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use std::sync::Arc;
use std::time::Instant;

type Outcome = Result<(AppendInfo, Arc<PartitionLog>), (ResponseError, String)>;

struct TopicOutcome {
    name: TopicName,
    id: uuid::Uuid,
    partitions: Vec<(i32, Outcome)>,
}

async fn append(meta: &RequestMeta, topic: &str, log: &Arc<PartitionLog>, records: Option<bytes::Bytes>) -> Outcome {
    let Some(records) = records else {
        metrics::produce_error(topic, format!("{:?}", ResponseError::InvalidRecord));
        return Err((ResponseError::InvalidRecord, "the partition's records are null".into()));
    };
    let bytes = records.len() as u64;
    // The batch is patched with its base offset, so it needs its own buffer.
    let mut buffer = BytesMut::from(&records[..]);
    // Appending is a write into the page cache (tens of microseconds for a
    // 100 KB batch); handing it to the blocking pool cost two thread switches
    // per batch, the broker's largest CPU cost. Only the fsync wait below
    // goes to the blocking pool.
    match log.append_unsynced(&mut buffer) {
        Ok(info) => {
            if !info.duplicate {
                metrics::produced(topic, (info.last_offset - info.base_offset + 1) as u64, bytes);
            }
            Ok((info, Arc::clone(log)))
        }
        Err(error) => {
            report(meta, log, &error);
            metrics::produce_error(topic, format!("{:?}", log_error_code(&error)));
            Err((log_error_code(&error), error.to_string()))
        }
    }
}

fn report(meta: &RequestMeta, log: &PartitionLog, error: &LogError) {
    match error {
        LogError::Io { .. } | LogError::Poisoned { .. } | LogError::Corrupt { .. } => {
            tracing::error!(peer = %meta.peer, partition = %log.dir().display(), %error, "produce failed")
        }
        _ => {
            tracing::info!(peer = %meta.peer, client = %meta.client_id, partition = %log.dir().display(), %error, "produce refused")
        }
    }
}

pub async fn handle(ctx: &Context, meta: &RequestMeta, request: ProduceRequest) -> Result<Reply, DispatchError> {
    let started = Instant::now();
    let refusal = if request.transactional_id.as_ref().is_some_and(|id| !id.is_empty()) {
        Some((
            ResponseError::TransactionalIdAuthorizationFailed,
            "transactions are not supported by Relay".to_owned(),
        ))
    } else if !matches!(request.acks, -1..=1) {
        Some((
            ResponseError::InvalidRequiredAcks,
            format!("acks = {} must be -1, 0 or 1", request.acks),
        ))
    } else {
        None
    };
    let mut outcomes = Vec::with_capacity(request.topic_data.len());
    for topic_data in request.topic_data {
        let topic = if meta.version >= 13 {
            ctx.topics.list().into_iter().find(|t| t.id == topic_data.topic_id)
        } else {
            ctx.topics.get(topic_data.name.as_str())
        };
        let name = topic
            .as_ref()
            .map_or_else(|| topic_data.name.to_string(), |t| t.name.clone());
        // An id that names no topic is UNKNOWN_TOPIC_ID, whoever asks (as Kafka).
        let unknown_id = meta.version >= 13 && topic.is_none();
        let allowed = unknown_id || meta.may(ctx, Operation::Produce, Resource::Topic(&name));
        let mut partitions = Vec::with_capacity(topic_data.partition_data.len());
        for partition in topic_data.partition_data {
            let outcome = match (&refusal, topic.as_ref().and_then(|t| t.partition(partition.index))) {
                (Some(refusal), _) => Err(refusal.clone()),
                (None, _) if !allowed => Err((
                    ResponseError::TopicAuthorizationFailed,
                    format!("not authorized to produce to topic {name:?}"),
                )),
                (None, None) if unknown_id => Err((ResponseError::UnknownTopicId, "no topic has this id".into())),
                (None, None) => Err((
                    ResponseError::UnknownTopicOrPartition,
                    "no such topic or partition".into(),
                )),
                (None, Some(log)) => {
                    let name = topic.as_ref().map_or("", |t| t.name.as_str());
                    append(meta, name, log, partition.records).await
                }
            };
            partitions.push((partition.index, outcome));
        }
        outcomes.push(TopicOutcome {
            name: topic_data.name,
            id: topic_data.topic_id,
            partitions,
        });
    }
    ctx.wake_fetchers();
    let (ctx, meta, acks) = (Arc::clone(ctx), meta.clone(), request.acks);
    let finish = tokio::spawn(async move {
        let outcomes = make_durable(outcomes).await;
        let durable = Instant::now();
        ctx.wake_fetchers();
        metrics::produce_latency(durable - started);
        let frame = meta.encode(&response(&meta, outcomes))?;
        Ok(Durable { frame, at: durable })
    });
    if acks == 0 {
        return Ok(Reply::Nothing);
    }
    Ok(Reply::Later(finish))
}

/// Waits for every appended partition's durability; a failure (a poisoned
/// partition) turns that partition's answer into a storage error.
async fn make_durable(mut outcomes: Vec<TopicOutcome>) -> Vec<TopicOutcome> {
    for topic in &mut outcomes {
        for (_, outcome) in &mut topic.partitions {
            let Ok((info, log)) = outcome else { continue };
            let (info_copy, log_copy) = (*info, Arc::clone(log));
            if let Err(error) = blocking(move || log_copy.make_durable(&info_copy)).await {
                tracing::error!(partition = %log.dir().display(), %error, "produce not durable");
                *outcome = Err((log_error_code(&error), error.to_string()));
            }
        }
    }
    outcomes
}

fn response(meta: &RequestMeta, outcomes: Vec<TopicOutcome>) -> ProduceResponse {
    let version = meta.version;
    let responses = outcomes
        .into_iter()
        .map(|topic| {
            let partition_responses = topic
                .partitions
                .into_iter()
                .map(|(index, outcome)| {
                    let mut response = PartitionProduceResponse::default()
                        .with_index(index)
                        .with_log_append_time_ms(-1);
                    match outcome {
                        Ok((info, _)) => {
                            response.base_offset = info.base_offset;
                            if version >= 5 {
                                response.log_start_offset = info.log_start_offset;
                            }
                        }
                        Err((error, message)) => {
                            response.error_code = error.code();
                            response.base_offset = -1;
                            if version >= 8 {
                                response.error_message = Some(text(&message));
                            }
                        }
                    }
                    response
                })
                .collect();
            let mut response = TopicProduceResponse::default().with_partition_responses(partition_responses);
            if version >= 13 {
                response.topic_id = topic.id;
            } else {
                response.name = topic.name;
            }
            response
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}
