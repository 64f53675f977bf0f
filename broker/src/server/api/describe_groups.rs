//! DescribeGroups: state, protocol and members (with subscriptions and
//! assignments as the clients sent them). Unknown groups are "Dead", as in Kafka.

use super::text;
use crate::context::Context;
use crate::security::authorization::{Operation, Resource};
use crate::server::request::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

pub fn handle(ctx: &Context, meta: &RequestMeta, request: DescribeGroupsRequest) -> Result<Bytes, DispatchError> {
    let version = meta.version;
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            if !meta.may(ctx, Operation::Describe, Resource::Group(group_id.as_str())) {
                return DescribedGroup::default()
                    .with_group_id(group_id)
                    .with_error_code(ResponseError::GroupAuthorizationFailed.code())
                    .with_group_state(text(""))
                    .with_protocol_type(text(""))
                    .with_protocol_data(text(""));
            }
            let authorized = (version >= 3 && request.include_authorized_operations)
                .then(|| meta.authorized_operations(ctx, Resource::Group(group_id.as_str())));
            let description = ctx.coordinator.describe(group_id.as_str());
            let members = description
                .members
                .into_iter()
                .map(
                    |(member_id, instance_id, client_id, client_host, metadata, assignment)| {
                        let mut member = DescribedGroupMember::default()
                            .with_member_id(text(&member_id))
                            .with_client_id(text(&client_id))
                            .with_client_host(text(&client_host))
                            .with_member_metadata(metadata)
                            .with_member_assignment(assignment);
                        if version >= 4 {
                            member.group_instance_id = instance_id.map(|i| text(&i));
                        }
                        member
                    },
                )
                .collect();
            let mut described = DescribedGroup::default()
                .with_group_id(group_id)
                .with_group_state(text(description.state))
                .with_protocol_type(text(&description.protocol_type))
                .with_protocol_data(text(&description.protocol_name))
                .with_members(members);
            if let Some(bits) = authorized {
                described.authorized_operations = bits;
            }
            described
        })
        .collect();
    meta.encode(&DescribeGroupsResponse::default().with_groups(groups))
}
