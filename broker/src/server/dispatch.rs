//! One request frame in, one reply out: decodes the request header (whose
//! version depends on the API and its version), checks the version against
//! [`super::versions`], decodes the body with the `kafka-protocol` crate
//! (trailing bytes, such as librdkafka's extra tagged fields, are ignored),
//! routes to the API's handler, and encodes the response with its header.
//!
//! Errors here mean the peer does not speak the protocol (or a version we
//! cannot decode): the connection is closed and the reason logged by the caller.

use super::api;
pub use super::request::{DispatchError, Reply, RequestMeta};
use super::session::Session;
pub use super::timing::Timing;
use super::versions;
use crate::context::Context;
use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;
use std::net::SocketAddr;

/// A request's body, decoded once by its handler's arm; marks the end of
/// the decode stage in the request's [`Timing`].
struct Body<'a> {
    bytes: Bytes,
    meta: &'a RequestMeta,
    timing: &'a mut Timing,
}

impl Body<'_> {
    fn decode<T: Decodable>(&mut self) -> Result<T, DispatchError> {
        let decoded = T::decode(&mut self.bytes, self.meta.version).map_err(|e| DispatchError::Malformed {
            api: self.meta.api,
            version: self.meta.version,
            reason: format!("{e:#}"),
        });
        self.timing.decoded();
        decoded
    }
}

/// Handles one request frame from a connection in state `session`, marking
/// in `timing` when its handler started, decoded and returned.
pub async fn dispatch(
    ctx: &Context,
    session: &mut Session,
    peer: SocketAddr,
    frame: Bytes,
    timing: &mut Timing,
) -> Result<Reply, DispatchError> {
    let reply = route(ctx, session, peer, frame, timing).await;
    timing.handled();
    reply
}

async fn route(
    ctx: &Context,
    session: &mut Session,
    peer: SocketAddr,
    frame: Bytes,
    timing: &mut Timing,
) -> Result<Reply, DispatchError> {
    if frame.len() < 4 {
        return Err(DispatchError::ShortHeader(frame.len()));
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api = ApiKey::try_from(api_key).map_err(|_| DispatchError::UnknownApi(api_key))?;
    if !versions::is_served(api) {
        return Err(DispatchError::UnknownApi(api_key));
    }
    timing.started(api);
    let mut bytes = frame;
    let header_version = api.request_header_version(version);
    let header = RequestHeader::decode(&mut bytes, header_version).map_err(|e| DispatchError::Malformed {
        api,
        version,
        reason: format!("request header: {e}"),
    })?;
    let meta = RequestMeta {
        api,
        version,
        correlation_id: header.correlation_id,
        client_id: header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default(),
        peer,
        user: session.user(),
    };
    if !session.admits(api) {
        return Err(DispatchError::Unauthenticated { api });
    }
    if !versions::accepts(api, version) {
        if api == ApiKey::ApiVersions {
            return api::api_versions::unsupported_version(&meta).map(Reply::Ready);
        }
        return Err(DispatchError::UnsupportedVersion { api, version });
    }
    crate::metrics::request(api);
    let body = &mut Body {
        bytes,
        meta: &meta,
        timing,
    };
    handle(ctx, session, &meta, body).await
}

/// Decodes the body and calls the API's handler.
async fn handle(
    ctx: &Context,
    session: &mut Session,
    meta: &RequestMeta,
    body: &mut Body<'_>,
) -> Result<Reply, DispatchError> {
    let ready = |bytes: Result<Bytes, DispatchError>| bytes.map(Reply::Ready);
    match meta.api {
        ApiKey::ApiVersions => ready(api::api_versions::handle(meta, body.decode()?)),
        ApiKey::Metadata => ready(api::metadata::handle(ctx, meta, body.decode()?).await),
        ApiKey::Produce => api::produce::handle(ctx, meta, body.decode()?).await,
        ApiKey::Fetch => ready(api::fetch::handle(ctx, meta, body.decode()?).await),
        ApiKey::ListOffsets => ready(api::list_offsets::handle(ctx, meta, body.decode()?).await),
        ApiKey::CreateTopics => ready(api::create_topics::handle(ctx, meta, body.decode()?).await),
        ApiKey::DeleteTopics => ready(api::delete_topics::handle(ctx, meta, body.decode()?).await),
        ApiKey::InitProducerId => ready(api::init_producer_id::handle(ctx, meta, body.decode()?).await),
        ApiKey::FindCoordinator => ready(api::find_coordinator::handle(ctx, meta, body.decode()?)),
        ApiKey::JoinGroup => ready(api::join_group::handle(ctx, meta, body.decode()?).await),
        ApiKey::SyncGroup => ready(api::sync_group::handle(ctx, meta, body.decode()?).await),
        ApiKey::Heartbeat => ready(api::heartbeat::handle(ctx, meta, body.decode()?)),
        ApiKey::LeaveGroup => ready(api::leave_group::handle(ctx, meta, body.decode()?)),
        ApiKey::OffsetCommit => ready(api::offset_commit::handle(ctx, meta, body.decode()?).await),
        ApiKey::OffsetFetch => ready(api::offset_fetch::handle(ctx, meta, body.decode()?)),
        ApiKey::ListGroups => ready(api::list_groups::handle(ctx, meta, body.decode()?)),
        ApiKey::DescribeGroups => ready(api::describe_groups::handle(ctx, meta, body.decode()?)),
        ApiKey::DeleteGroups => ready(api::delete_groups::handle(ctx, meta, body.decode()?).await),
        ApiKey::DescribeLogDirs => ready(api::describe_log_dirs::handle(ctx, meta, body.decode()?)),
        ApiKey::SaslHandshake => api::sasl_handshake::handle(ctx, session, meta, body.decode()?),
        ApiKey::SaslAuthenticate => api::sasl_authenticate::handle(ctx, session, meta, body.decode()?).await,
        api => Err(DispatchError::UnknownApi(api as i16)),
    }
}
