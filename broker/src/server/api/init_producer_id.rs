//! InitProducerId: a fresh, never reused producer id (epoch 0) for an
//! idempotent producer, or the next epoch when a producer asks to bump its
//! own (KIP-360). Transactional ids are refused: Relay has no transactions.

use super::blocking;
use crate::context::Context;
use crate::security::authorization::Operation;
use crate::server::request::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use std::sync::Arc;

pub async fn handle(ctx: &Context, meta: &RequestMeta, request: InitProducerIdRequest) -> Result<Bytes, DispatchError> {
    let mut response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if request.transactional_id.as_ref().is_some_and(|id| !id.is_empty()) {
        tracing::info!(peer = %meta.peer, client = %meta.client_id, "refusing a transactional producer");
        response.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
        return meta.encode(&response);
    }
    if !ctx
        .security
        .authorizer
        .check_any_topic(meta.user.as_deref(), Operation::Produce)
    {
        return meta.encode(&response.with_error_code(ResponseError::ClusterAuthorizationFailed.code()));
    }
    let existing = (request.producer_id.0, request.producer_epoch);
    if existing.0 >= 0 && existing.1 >= 0 && existing.1 < i16::MAX - 1 {
        return meta.encode(
            &response
                .with_producer_id(ProducerId(existing.0))
                .with_producer_epoch(existing.1 + 1),
        );
    }
    let ids = Arc::clone(&ctx.producer_ids);
    match blocking(move || ids.allocate()).await {
        Ok(id) => meta.encode(&response.with_producer_id(ProducerId(id)).with_producer_epoch(0)),
        Err(error) => {
            tracing::error!(%error, "could not allocate a producer id");
            meta.encode(&response.with_error_code(ResponseError::KafkaStorageError.code()))
        }
    }
}
