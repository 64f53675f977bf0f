//! Heartbeat: keeps a member's session alive; REBALANCE_IN_PROGRESS tells it
//! to rejoin.

use crate::context::Context;
use crate::group::static_member::MemberRef;
use crate::security::authorization::{Operation, Resource};
use crate::server::errors::code;
use crate::server::request::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

pub fn handle(ctx: &Context, meta: &RequestMeta, request: HeartbeatRequest) -> Result<Bytes, DispatchError> {
    if !meta.may(ctx, Operation::Group, Resource::Group(request.group_id.as_str())) {
        return meta
            .encode(&HeartbeatResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code()));
    }
    let error = ctx.coordinator.heartbeat(
        request.group_id.as_str(),
        request.generation_id,
        MemberRef {
            id: request.member_id.as_str(),
            instance: request.group_instance_id.as_deref(),
        },
    );
    meta.encode(&HeartbeatResponse::default().with_error_code(code(error)))
}
