//! What every API handler shares with the dispatcher above it: the decoded
//! request header and its sender ([`RequestMeta`], which also checks the
//! user's grants and encodes the response frame), what a request produces
//! ([`Reply`]), and why a request cannot be answered ([`DispatchError`]).
//! Below both [`super::dispatch`] and [`super::api`], so each looks only down.

use crate::context::Context;
use crate::security::authorization::{Operation, Resource};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::task::JoinHandle;

/// What a request produces, in request order.
pub enum Reply {
    /// Nothing is sent back (Produce with acks=0).
    Nothing,
    /// A complete response frame, length prefix included.
    Ready(Bytes),
    /// A response that completes later (Produce waiting for its fsync); the
    /// connection goes on reading requests meanwhile.
    Later(JoinHandle<Result<Durable, DispatchError>>),
    /// A response after which the connection closes (a failed login).
    Last(Bytes),
}

/// A late response frame, and when the wait it was late for (the fsync
/// policy) ended: the fsync_wait stage ends there and the response begins.
pub struct Durable {
    pub frame: Bytes,
    pub at: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("request too short for a header ({0} bytes)")]
    ShortHeader(usize),
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    #[error("{api:?} v{version} is not served (see proto-spec/PROTOCOL.md)")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed { api: ApiKey, version: i16, reason: String },
    #[error("{api:?} before SASL authentication (only ApiVersions, SaslHandshake and SaslAuthenticate are answered)")]
    Unauthenticated { api: ApiKey },
    #[error("could not encode {api:?} v{version} response: {reason}")]
    Encode { api: ApiKey, version: i16, reason: String },
}

/// The decoded header of the request being handled, and who sent it.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub api: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    pub client_id: String,
    pub peer: SocketAddr,
    /// The logged-in user; `None` on a listener without SASL.
    pub user: Option<std::sync::Arc<str>>,
}

impl RequestMeta {
    /// May this request's user do `operation` on `resource`? A denial is
    /// counted and logged (`security::authorization`).
    pub fn may(&self, ctx: &Context, operation: Operation, resource: Resource<'_>) -> bool {
        ctx.security.authorizer.check(self.user.as_deref(), operation, resource)
    }

    /// Kafka's authorized-operations bits of `resource` for this request's user.
    pub fn authorized_operations(&self, ctx: &Context, resource: Resource<'_>) -> i32 {
        ctx.security
            .authorizer
            .authorized_operations(self.user.as_deref(), resource)
    }

    /// Encodes `response` with this request's correlation id as a full frame.
    pub fn encode<R: Encodable>(&self, response: &R) -> Result<Bytes, DispatchError> {
        let mut buffer = BytesMut::with_capacity(64);
        buffer.put_i32(0);
        let header = ResponseHeader::default().with_correlation_id(self.correlation_id);
        header
            .encode(&mut buffer, self.api.response_header_version(self.version))
            .and_then(|()| response.encode(&mut buffer, self.version))
            .map_err(|e| DispatchError::Encode {
                api: self.api,
                version: self.version,
                reason: format!("{e:#}"),
            })?;
        let length = (buffer.len() - 4) as i32;
        buffer[..4].copy_from_slice(&length.to_be_bytes());
        Ok(buffer.freeze())
    }
}
