//! DeleteGroups: deletes groups without members, with their committed
//! offsets, durably (`crate::group::delete`). Each group needs DELETE on it,
//! as in Kafka; a refused group gets GROUP_AUTHORIZATION_FAILED, a group with
//! members NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.

use super::blocking;
use crate::context::Context;
use crate::security::authorization::{Operation, Resource};
use crate::server::request::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use std::sync::Arc;

pub async fn handle(ctx: &Context, meta: &RequestMeta, request: DeleteGroupsRequest) -> Result<Bytes, DispatchError> {
    let groups = request.groups_names;
    let allowed: Vec<bool> = groups
        .iter()
        .map(|group_id| meta.may(ctx, Operation::Delete, Resource::Group(group_id.as_str())))
        .collect();
    let names: Vec<String> = groups
        .iter()
        .zip(&allowed)
        .filter(|(_, allowed)| **allowed)
        .map(|(group_id, _)| group_id.to_string())
        .collect();
    let coordinator = Arc::clone(&ctx.coordinator);
    let mut answers = blocking(move || coordinator.delete_groups(&names)).await.into_iter();
    let results = groups
        .into_iter()
        .zip(allowed)
        .map(|(group_id, allowed)| {
            let error = match allowed {
                true => answers.next().expect("one answer per group allowed"),
                false => Some(ResponseError::GroupAuthorizationFailed),
            };
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(error.map_or(0, |e| e.code()))
        })
        .collect();
    meta.encode(&DeleteGroupsResponse::default().with_results(results))
}
