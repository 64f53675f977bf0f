//! Request frames as the broker reads them: framing (length prefix, limits),
//! the request header (whose version depends on the API and its version),
//! the version table, and the body of every served API.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};
use relay_broker::server::frame::read_frame;
use relay_broker::server::versions;
use std::fmt::Debug;

/// Largest frame the target reads (the broker's limit is configurable).
const FRAME_BYTES_MAX: usize = 1 << 20;

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
}

pub fn request_frame(data: &[u8]) {
    let frames = RUNTIME.with(|runtime| {
        runtime.block_on(async {
            let mut reader = data;
            let mut frames = Vec::new();
            while let Ok(Some(frame)) = read_frame(&mut reader, FRAME_BYTES_MAX).await {
                assert!(frame.len() <= FRAME_BYTES_MAX);
                frames.push(frame);
            }
            frames
        })
    });
    // Also the whole input as one frame body, as if its prefix were right.
    for frame in frames.into_iter().chain(std::iter::once(Bytes::copy_from_slice(data))) {
        request(frame);
    }
}

/// Decodes a request like dispatch does; a body that decodes must re-encode
/// and decode to an equal request.
fn request(frame: Bytes) {
    if frame.len() < 4 {
        return;
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let Ok(api) = ApiKey::try_from(api_key) else { return };
    if !versions::is_served(api) {
        return;
    }
    let mut body = frame;
    if RequestHeader::decode(&mut body, api.request_header_version(version)).is_err() {
        return;
    }
    if !versions::accepts(api, version) {
        return;
    }
    match api {
        ApiKey::ApiVersions => round_trip::<ApiVersionsRequest>(body, version),
        ApiKey::Metadata => round_trip::<MetadataRequest>(body, version),
        ApiKey::Produce => round_trip::<ProduceRequest>(body, version),
        ApiKey::Fetch => round_trip::<FetchRequest>(body, version),
        ApiKey::ListOffsets => round_trip::<ListOffsetsRequest>(body, version),
        ApiKey::CreateTopics => round_trip::<CreateTopicsRequest>(body, version),
        ApiKey::DeleteTopics => round_trip::<DeleteTopicsRequest>(body, version),
        ApiKey::InitProducerId => round_trip::<InitProducerIdRequest>(body, version),
        ApiKey::FindCoordinator => round_trip::<FindCoordinatorRequest>(body, version),
        ApiKey::JoinGroup => round_trip::<JoinGroupRequest>(body, version),
        ApiKey::SyncGroup => round_trip::<SyncGroupRequest>(body, version),
        ApiKey::Heartbeat => round_trip::<HeartbeatRequest>(body, version),
        ApiKey::LeaveGroup => round_trip::<LeaveGroupRequest>(body, version),
        ApiKey::OffsetCommit => round_trip::<OffsetCommitRequest>(body, version),
        ApiKey::OffsetFetch => round_trip::<OffsetFetchRequest>(body, version),
        ApiKey::ListGroups => round_trip::<ListGroupsRequest>(body, version),
        ApiKey::DescribeGroups => round_trip::<DescribeGroupsRequest>(body, version),
        ApiKey::DescribeLogDirs => round_trip::<DescribeLogDirsRequest>(body, version),
        _ => {}
    }
}

fn round_trip<T: Decodable + Encodable + PartialEq + Debug>(mut body: Bytes, version: i16) {
    let Ok(decoded) = T::decode(&mut body, version) else {
        return;
    };
    let mut encoded = bytes::BytesMut::new();
    if decoded.encode(&mut encoded, version).is_err() {
        return;
    }
    let again = T::decode(&mut encoded.freeze(), version).expect("a re-encoded request decodes");
    assert_eq!(decoded, again, "decode(encode(request)) == request");
}
