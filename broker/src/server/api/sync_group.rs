//! SyncGroup: the leader hands in every member's assignment; each member
//! (leader included) gets its own back once the leader has synced.

use super::text;
use crate::context::Context;
use crate::group::static_member::MemberRef;
use crate::security::authorization::{Operation, Resource};
use crate::server::errors::code;
use crate::server::request::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

pub async fn handle(ctx: &Context, meta: &RequestMeta, request: SyncGroupRequest) -> Result<Bytes, DispatchError> {
    if !meta.may(ctx, Operation::Group, Resource::Group(request.group_id.as_str())) {
        return meta
            .encode(&SyncGroupResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code()));
    }
    let assignments = request
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let result = ctx
        .coordinator
        .sync(
            request.group_id.as_str(),
            request.generation_id,
            MemberRef {
                id: request.member_id.as_str(),
                instance: request.group_instance_id.as_deref(),
            },
            assignments,
        )
        .await;
    let mut response = SyncGroupResponse::default()
        .with_error_code(code(result.error))
        .with_assignment(result.assignment);
    if meta.version >= 5 && result.error.is_none() {
        response.protocol_type = result.protocol_type.map(|t| text(&t));
        response.protocol_name = result.protocol_name.map(|n| text(&n));
    }
    meta.encode(&response)
}
