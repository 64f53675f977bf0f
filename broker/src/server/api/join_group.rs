//! JoinGroup: waits until the group's rebalance completes, then answers with
//! the generation, the chosen protocol and (for the leader) every member's
//! subscription. A new member at v4+ first gets MEMBER_ID_REQUIRED with its id.

use super::text;
use crate::context::Context;
use crate::group::coordinator::JoinRequest;
use crate::security::authorization::{Operation, Resource};
use crate::server::errors::code;
use crate::server::request::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

pub async fn handle(ctx: &Context, meta: &RequestMeta, request: JoinGroupRequest) -> Result<Bytes, DispatchError> {
    let version = meta.version;
    if request.group_id.is_empty() {
        let response = JoinGroupResponse::default()
            .with_error_code(ResponseError::InvalidGroupId.code())
            .with_generation_id(-1)
            .with_protocol_name(Some(text("")));
        return meta.encode(&response);
    }
    if !meta.may(ctx, Operation::Group, Resource::Group(request.group_id.as_str())) {
        let response = JoinGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code())
            .with_generation_id(-1)
            .with_protocol_name(Some(text("")));
        return meta.encode(&response);
    }
    let join = JoinRequest {
        group_id: request.group_id.to_string(),
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: meta.client_id.clone(),
        client_host: format!("/{}", meta.peer.ip()),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let result = ctx.coordinator.join(join).await;
    let members = result
        .members
        .into_iter()
        .map(|(member_id, instance_id, metadata)| {
            let mut member = JoinGroupResponseMember::default()
                .with_member_id(text(&member_id))
                .with_metadata(metadata);
            if version >= 5 {
                member.group_instance_id = instance_id.map(|i| text(&i));
            }
            member
        })
        .collect();
    let mut response = JoinGroupResponse::default()
        .with_error_code(code(result.error))
        .with_generation_id(result.generation)
        .with_protocol_name(Some(text(result.protocol_name.as_deref().unwrap_or(""))))
        .with_leader(text(&result.leader))
        .with_member_id(text(&result.member_id))
        .with_members(members);
    if version >= 7 {
        response.protocol_type = result.protocol_type.map(|t| text(&t));
        if result.error.is_some() {
            response.protocol_name = None;
        }
    }
    meta.encode(&response)
}
