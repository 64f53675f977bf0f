//! LeaveGroup: removes one member (v0-2) or several (v3+, static members by
//! their instance id) and rebalances the rest.

use crate::context::Context;
use crate::security::authorization::{Operation, Resource};
use crate::server::errors::code;
use crate::server::request::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

pub fn handle(ctx: &Context, meta: &RequestMeta, request: LeaveGroupRequest) -> Result<Bytes, DispatchError> {
    let group = request.group_id.as_str();
    if !meta.may(ctx, Operation::Group, Resource::Group(group)) {
        return meta
            .encode(&LeaveGroupResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code()));
    }
    if meta.version < 3 {
        let errors = ctx.coordinator.leave(group, &[(request.member_id.to_string(), None)]);
        return meta.encode(&LeaveGroupResponse::default().with_error_code(code(errors[0])));
    }
    let members: Vec<(String, Option<String>)> = request
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.group_instance_id.as_ref().map(|i| i.to_string()),
            )
        })
        .collect();
    let errors = ctx.coordinator.leave(group, &members);
    let members = request
        .members
        .into_iter()
        .zip(errors)
        .map(|(member, error)| {
            MemberResponse::default()
                .with_member_id(member.member_id)
                .with_group_instance_id(member.group_instance_id)
                .with_error_code(code(error))
        })
        .collect();
    meta.encode(&LeaveGroupResponse::default().with_members(members))
}
