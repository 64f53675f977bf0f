//! ListGroups: every group with members or committed offsets, filtered by
//! state (v4+) and type (v5, only "classic" groups exist here).

use super::text;
use crate::context::Context;
use crate::security::authorization::{Operation, Resource};
use crate::server::request::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

pub fn handle(ctx: &Context, meta: &RequestMeta, request: ListGroupsRequest) -> Result<Bytes, DispatchError> {
    let version = meta.version;
    let states: Vec<String> = request.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = request.types_filter.iter().map(|s| s.to_lowercase()).collect();
    // As Kafka: DESCRIBE of the cluster lists every group, else only the
    // groups the user may describe.
    let authorizer = &ctx.security.authorizer;
    let user = meta.user.as_deref();
    let every = authorizer.allows(user, Operation::Describe, Resource::Cluster);
    let groups = ctx
        .coordinator
        .list()
        .into_iter()
        .filter(|(id, _, _)| every || authorizer.allows(user, Operation::Describe, Resource::Group(id)))
        .filter(|(_, _, state)| states.is_empty() || states.contains(&state.to_lowercase()))
        .filter(|_| types.is_empty() || types.iter().any(|t| t == "classic"))
        .map(|(id, protocol_type, state)| {
            let mut group = ListedGroup::default()
                .with_group_id(GroupId(text(&id)))
                .with_protocol_type(text(&protocol_type));
            if version >= 4 {
                group.group_state = text(state);
            }
            if version >= 5 {
                group.group_type = text("classic");
            }
            group
        })
        .collect();
    meta.encode(&ListGroupsResponse::default().with_groups(groups))
}
