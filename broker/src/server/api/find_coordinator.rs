//! FindCoordinator: this broker coordinates every group. Transaction
//! coordinators do not exist here (COORDINATOR_NOT_AVAILABLE).

use super::text;
use crate::context::{Context, NODE_ID};
use crate::security::authorization::{Operation, Resource};
use crate::server::request::{DispatchError, RequestMeta};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

const KEY_TYPE_GROUP: i8 = 0;

pub fn handle(ctx: &Context, meta: &RequestMeta, request: FindCoordinatorRequest) -> Result<Bytes, DispatchError> {
    let available = request.key_type == KEY_TYPE_GROUP;
    let (node, host, port, error) = if available {
        (NODE_ID, ctx.advertised_host.as_str(), ctx.advertised_port, None)
    } else {
        (-1, "", -1, Some(ResponseError::CoordinatorNotAvailable))
    };
    // Kafka asks DESCRIBE of the group (which `group` implies).
    let allowed = |key: &str| !available || meta.may(ctx, Operation::Describe, Resource::Group(key));
    let answer = |key: &str| match allowed(key) {
        true => (node, host, port, error.map_or(0, |e| e.code())),
        false => (-1, "", -1, ResponseError::GroupAuthorizationFailed.code()),
    };
    let mut response = FindCoordinatorResponse::default();
    if meta.version >= 4 {
        response.coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let (node, host, port, error_code) = answer(key.as_str());
                Coordinator::default()
                    .with_key(key.clone())
                    .with_node_id(BrokerId(node))
                    .with_host(text(host))
                    .with_port(port)
                    .with_error_code(error_code)
            })
            .collect();
    } else {
        let (node, host, port, error_code) = answer(request.key.as_str());
        response.node_id = BrokerId(node);
        response.host = text(host);
        response.port = port;
        response.error_code = error_code;
    }
    meta.encode(&response)
}
