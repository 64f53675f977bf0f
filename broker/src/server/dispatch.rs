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
use super::versions;
use crate::context::Context;
use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;
use std::net::SocketAddr;

fn decode<T: Decodable>(meta: &RequestMeta, body: &mut Bytes) -> Result<T, DispatchError> {
    T::decode(body, meta.version).map_err(|e| DispatchError::Malformed {
        api: meta.api,
        version: meta.version,
        reason: format!("{e:#}"),
    })
}

/// Handles one request frame from a connection in state `session`.
pub async fn dispatch(
    ctx: &Context,
    session: &mut Session,
    peer: SocketAddr,
    frame: Bytes,
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
    let mut body = frame;
    let header_version = api.request_header_version(version);
    let header = RequestHeader::decode(&mut body, header_version).map_err(|e| DispatchError::Malformed {
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
    let ready = |bytes: Result<Bytes, DispatchError>| bytes.map(Reply::Ready);
    match api {
        ApiKey::ApiVersions => ready(api::api_versions::handle(&meta, decode(&meta, &mut body)?)),
        ApiKey::Metadata => ready(api::metadata::handle(ctx, &meta, decode(&meta, &mut body)?).await),
        ApiKey::Produce => api::produce::handle(ctx, &meta, decode(&meta, &mut body)?).await,
        ApiKey::Fetch => ready(api::fetch::handle(ctx, &meta, decode(&meta, &mut body)?).await),
        ApiKey::ListOffsets => ready(api::list_offsets::handle(ctx, &meta, decode(&meta, &mut body)?).await),
        ApiKey::CreateTopics => ready(api::create_topics::handle(ctx, &meta, decode(&meta, &mut body)?).await),
        ApiKey::DeleteTopics => ready(api::delete_topics::handle(ctx, &meta, decode(&meta, &mut body)?).await),
        ApiKey::InitProducerId => ready(api::init_producer_id::handle(ctx, &meta, decode(&meta, &mut body)?).await),
        ApiKey::FindCoordinator => ready(api::find_coordinator::handle(ctx, &meta, decode(&meta, &mut body)?)),
        ApiKey::JoinGroup => ready(api::join_group::handle(ctx, &meta, decode(&meta, &mut body)?).await),
        ApiKey::SyncGroup => ready(api::sync_group::handle(ctx, &meta, decode(&meta, &mut body)?).await),
        ApiKey::Heartbeat => ready(api::heartbeat::handle(ctx, &meta, decode(&meta, &mut body)?)),
        ApiKey::LeaveGroup => ready(api::leave_group::handle(ctx, &meta, decode(&meta, &mut body)?)),
        ApiKey::OffsetCommit => ready(api::offset_commit::handle(ctx, &meta, decode(&meta, &mut body)?).await),
        ApiKey::OffsetFetch => ready(api::offset_fetch::handle(ctx, &meta, decode(&meta, &mut body)?)),
        ApiKey::ListGroups => ready(api::list_groups::handle(ctx, &meta, decode(&meta, &mut body)?)),
        ApiKey::DescribeGroups => ready(api::describe_groups::handle(ctx, &meta, decode(&meta, &mut body)?)),
        ApiKey::DeleteGroups => ready(api::delete_groups::handle(ctx, &meta, decode(&meta, &mut body)?).await),
        ApiKey::DescribeLogDirs => ready(api::describe_log_dirs::handle(ctx, &meta, decode(&meta, &mut body)?)),
        ApiKey::SaslHandshake => api::sasl_handshake::handle(ctx, session, &meta, decode(&meta, &mut body)?),
        ApiKey::SaslAuthenticate => {
            api::sasl_authenticate::handle(ctx, session, &meta, decode(&meta, &mut body)?).await
        }
        _ => Err(DispatchError::UnknownApi(api_key)),
    }
}
