//! The APIs this broker serves and their version ranges: the one list that
//! ApiVersions advertises, dispatch checks, and `proto-spec/PROTOCOL.md`
//! documents. Each range is the `kafka-protocol` crate's full range for that
//! message, except Produce, which is advertised from version 0 as Kafka does
//! (librdkafka will not compress otherwise) while only v3+ can be decoded:
//! record batch v2 starts at v3 and clients always pick the highest version.

use kafka_protocol::messages::ApiKey;

/// (API, lowest advertised, lowest accepted, highest) version.
pub const SUPPORTED: &[(ApiKey, i16, i16, i16)] = &[
    (ApiKey::Produce, 0, 3, 13),
    (ApiKey::Fetch, 4, 4, 18),
    (ApiKey::ListOffsets, 1, 1, 10),
    (ApiKey::Metadata, 0, 0, 13),
    (ApiKey::OffsetCommit, 2, 2, 9),
    (ApiKey::OffsetFetch, 1, 1, 9),
    (ApiKey::FindCoordinator, 0, 0, 6),
    (ApiKey::JoinGroup, 0, 0, 9),
    (ApiKey::Heartbeat, 0, 0, 4),
    (ApiKey::LeaveGroup, 0, 0, 5),
    (ApiKey::SyncGroup, 0, 0, 5),
    (ApiKey::DescribeGroups, 0, 0, 6),
    (ApiKey::ListGroups, 0, 0, 5),
    (ApiKey::ApiVersions, 0, 0, 4),
    (ApiKey::CreateTopics, 2, 2, 7),
    (ApiKey::DeleteTopics, 1, 1, 6),
    (ApiKey::InitProducerId, 0, 0, 5),
    (ApiKey::DeleteGroups, 0, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 1, 4),
    // Advertised from v0 because librdkafka only sees SASL support when v0 is
    // in range; only v1 is accepted (v0 sends SASL tokens outside Kafka
    // framing; every client that sees v1 uses it with SaslAuthenticate).
    (ApiKey::SaslHandshake, 0, 1, 1),
    (ApiKey::SaslAuthenticate, 0, 0, 2),
];

/// Whether `version` of `api` can be decoded and answered.
pub fn accepts(api: ApiKey, version: i16) -> bool {
    SUPPORTED
        .iter()
        .any(|(key, _, accepted, max)| *key == api && (*accepted..=*max).contains(&version))
}

pub fn is_served(api: ApiKey) -> bool {
    SUPPORTED.iter().any(|(key, ..)| *key == api)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Message;

    /// Every accepted version must be one the crate can decode and encode.
    #[test]
    fn accepted_ranges_stay_inside_the_crate() {
        fn check<Req: Message, Res: Message>(api: ApiKey) {
            let (_, _, accepted, max) = *SUPPORTED.iter().find(|(k, ..)| *k == api).expect("listed");
            assert!(
                accepted >= Req::VERSIONS.min && max <= Req::VERSIONS.max,
                "{api:?} request"
            );
            assert!(
                accepted >= Res::VERSIONS.min && max <= Res::VERSIONS.max,
                "{api:?} response"
            );
        }
        check::<ProduceRequest, ProduceResponse>(ApiKey::Produce);
        check::<FetchRequest, FetchResponse>(ApiKey::Fetch);
        check::<ListOffsetsRequest, ListOffsetsResponse>(ApiKey::ListOffsets);
        check::<MetadataRequest, MetadataResponse>(ApiKey::Metadata);
        check::<OffsetCommitRequest, OffsetCommitResponse>(ApiKey::OffsetCommit);
        check::<OffsetFetchRequest, OffsetFetchResponse>(ApiKey::OffsetFetch);
        check::<FindCoordinatorRequest, FindCoordinatorResponse>(ApiKey::FindCoordinator);
        check::<JoinGroupRequest, JoinGroupResponse>(ApiKey::JoinGroup);
        check::<HeartbeatRequest, HeartbeatResponse>(ApiKey::Heartbeat);
        check::<LeaveGroupRequest, LeaveGroupResponse>(ApiKey::LeaveGroup);
        check::<SyncGroupRequest, SyncGroupResponse>(ApiKey::SyncGroup);
        check::<DescribeGroupsRequest, DescribeGroupsResponse>(ApiKey::DescribeGroups);
        check::<ListGroupsRequest, ListGroupsResponse>(ApiKey::ListGroups);
        check::<ApiVersionsRequest, ApiVersionsResponse>(ApiKey::ApiVersions);
        check::<CreateTopicsRequest, CreateTopicsResponse>(ApiKey::CreateTopics);
        check::<DeleteTopicsRequest, DeleteTopicsResponse>(ApiKey::DeleteTopics);
        check::<InitProducerIdRequest, InitProducerIdResponse>(ApiKey::InitProducerId);
        check::<DeleteGroupsRequest, DeleteGroupsResponse>(ApiKey::DeleteGroups);
        check::<DescribeLogDirsRequest, DescribeLogDirsResponse>(ApiKey::DescribeLogDirs);
        check::<SaslHandshakeRequest, SaslHandshakeResponse>(ApiKey::SaslHandshake);
        check::<SaslAuthenticateRequest, SaslAuthenticateResponse>(ApiKey::SaslAuthenticate);
    }
}
