//! ApiVersions: advertises exactly [`crate::server::versions::SUPPORTED`]. A
//! version we do not serve is answered in v0 with UNSUPPORTED_VERSION and the
//! list, so the client can pick one (KIP-511).

use crate::server::request::{DispatchError, RequestMeta};
use crate::server::versions::SUPPORTED;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

fn response(error_code: i16) -> ApiVersionsResponse {
    let api_keys = SUPPORTED
        .iter()
        .map(|(api, advertised_min, _, max)| {
            ApiVersion::default()
                .with_api_key(*api as i16)
                .with_min_version(*advertised_min)
                .with_max_version(*max)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_keys)
}

pub fn handle(meta: &RequestMeta, _request: ApiVersionsRequest) -> Result<Bytes, DispatchError> {
    meta.encode(&response(0))
}

pub fn unsupported_version(meta: &RequestMeta) -> Result<Bytes, DispatchError> {
    let v0 = RequestMeta {
        version: 0,
        ..meta.clone()
    };
    v0.encode(&response(ResponseError::UnsupportedVersion.code()))
}
