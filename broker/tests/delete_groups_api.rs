//! DeleteGroups through the broker's request path: advertised, refused for
//! a group with members (NON_EMPTY_GROUP) and an unknown one
//! (GROUP_ID_NOT_FOUND), and for an empty group the membership and every
//! committed offset gone, still gone after a restart; DELETE on the group
//! needed under SASL; a deletion that cannot be stored keeps the group.

mod wire;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use relay_broker::config::{BrokerConfig, SaslConfig};
use relay_broker::log::{FaultInjector, FsyncPolicy};
use relay_broker::security::authorization::GrantConfig;
use wire::{text, topic_name, WireBroker};

const NONE: i16 = 0;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const INVALID_GROUP_ID: i16 = 24;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const MEMBER_ID_REQUIRED: i16 = 79;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;

fn group_id(name: &str) -> GroupId {
    GroupId(text(name))
}

/// Who sends the requests: a connection without SASL, or a user past it.
#[derive(Clone, Copy)]
enum As<'a> {
    Open,
    User(&'a str),
}

struct Client<'a> {
    broker: &'a WireBroker,
    who: As<'a>,
}

impl Client<'_> {
    fn call<Req: kafka_protocol::protocol::Encodable, Res: kafka_protocol::protocol::Decodable>(
        &self,
        api: ApiKey,
        version: i16,
        request: &Req,
    ) -> Res {
        match self.who {
            As::Open => self.broker.call(api, version, request),
            As::User(user) => self.broker.call_as(user, api, version, request),
        }
    }

    fn create_topic(&self, topic: &str) {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(5_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(topic_name(topic))
                .with_num_partitions(1)
                .with_replication_factor(1)]);
        let response: CreateTopicsResponse = self.call(ApiKey::CreateTopics, 7, &request);
        assert_eq!(response.topics[0].error_code, NONE, "{topic} created");
    }

    /// DeleteGroups at `version`: each group's (id, error code), in order.
    fn delete_groups(&self, version: i16, groups: &[&str]) -> Vec<(String, i16)> {
        let request = DeleteGroupsRequest::default().with_groups_names(groups.iter().map(|g| group_id(g)).collect());
        let response: DeleteGroupsResponse = self.call(ApiKey::DeleteGroups, version, &request);
        response
            .results
            .iter()
            .map(|result| (result.group_id.to_string(), result.error_code))
            .collect()
    }

    /// Joins `group` as a new member (MEMBER_ID_REQUIRED first) and syncs as
    /// its leader: (member id, generation).
    fn join_and_sync(&self, group: &str) -> (String, i32) {
        let join = |member_id: &str| -> JoinGroupResponse {
            let request = JoinGroupRequest::default()
                .with_group_id(group_id(group))
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_member_id(text(member_id))
                .with_protocol_type(text("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(text("range"))
                    .with_metadata(Bytes::from_static(b"subscription"))]);
            self.call(ApiKey::JoinGroup, 5, &request)
        };
        let first = join("");
        assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
        let joined = join(first.member_id.as_str());
        assert_eq!(joined.error_code, NONE);
        let member_id = joined.member_id.to_string();
        let request = SyncGroupRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id(joined.generation_id)
            .with_member_id(text(&member_id))
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(text(&member_id))
                .with_assignment(Bytes::from_static(b"assignment"))]);
        let synced: SyncGroupResponse = self.call(ApiKey::SyncGroup, 3, &request);
        assert_eq!(synced.error_code, NONE);
        (member_id, joined.generation_id)
    }

    fn leave(&self, group: &str, member_id: &str) {
        let request = LeaveGroupRequest::default()
            .with_group_id(group_id(group))
            .with_members(vec![MemberIdentity::default().with_member_id(text(member_id))]);
        let response: LeaveGroupResponse = self.call(ApiKey::LeaveGroup, 3, &request);
        assert_eq!(response.error_code, NONE);
    }

    /// OffsetCommit v8 of `offset` in partition 0 of `topic`, as a member of
    /// `generation` or (generation -1, no member) as a simple consumer.
    fn commit(&self, group: &str, member: Option<(&str, i32)>, topic: &str, offset: i64) {
        let (member_id, generation) = member.unwrap_or(("", -1));
        let request = OffsetCommitRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(text(member_id))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)
                    .with_committed_metadata(Some(text("")))])]);
        let response: OffsetCommitResponse = self.call(ApiKey::OffsetCommit, 8, &request);
        assert_eq!(response.topics[0].partitions[0].error_code, NONE, "commit to {group}");
    }

    /// The committed offset of partition 0 of `topic` (-1: none).
    fn committed(&self, group: &str, topic: &str) -> i64 {
        let request = OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(vec![0])]));
        let response: OffsetFetchResponse = self.call(ApiKey::OffsetFetch, 7, &request);
        response.topics[0].partitions[0].committed_offset
    }

    /// ListGroups v4: the group ids listed, sorted.
    fn listed_groups(&self) -> Vec<String> {
        let response: ListGroupsResponse = self.call(ApiKey::ListGroups, 4, &ListGroupsRequest::default());
        let mut groups: Vec<String> = response.groups.iter().map(|g| g.group_id.to_string()).collect();
        groups.sort();
        groups
    }

    fn state_of(&self, group: &str) -> String {
        let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
        let response: DescribeGroupsResponse = self.call(ApiKey::DescribeGroups, 5, &request);
        response.groups[0].group_state.to_string()
    }
}

fn no_initial_delay(config: &mut BrokerConfig) {
    config.group_initial_rebalance_delay_ms = Some(0);
}

fn open(broker: &WireBroker) -> Client<'_> {
    Client { broker, who: As::Open }
}

#[test]
fn delete_groups_is_advertised_in_every_version_the_codec_has() {
    let broker = WireBroker::start(|_| {});
    let response: ApiVersionsResponse = broker.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let advertised = response
        .api_keys
        .iter()
        .find(|api| api.api_key == ApiKey::DeleteGroups as i16)
        .map(|api| (api.min_version, api.max_version));
    assert_eq!(advertised, Some((0, 2)));
}

#[test]
fn a_group_with_members_is_refused_and_an_unknown_one_is_not_found() {
    let broker = WireBroker::start(no_initial_delay);
    let client = open(&broker);
    client.create_topic("events");
    let (member_id, generation) = client.join_and_sync("live");
    client.commit("live", Some((&member_id, generation)), "events", 7);
    for version in 0..=2 {
        assert_eq!(
            client.delete_groups(version, &["live", "never-seen", ""]),
            vec![
                ("live".into(), NON_EMPTY_GROUP),
                ("never-seen".into(), GROUP_ID_NOT_FOUND),
                ("".into(), INVALID_GROUP_ID),
            ],
            "v{version}"
        );
    }
    assert_eq!(client.state_of("live"), "Stable");
    assert_eq!(
        client.committed("live", "events"),
        7,
        "a refused deletion keeps the offsets"
    );
}

#[test]
fn an_empty_group_is_deleted_with_its_offsets_and_stays_deleted_after_a_restart() {
    let mut broker = WireBroker::start(no_initial_delay);
    let client = open(&broker);
    client.create_topic("events");
    client.create_topic("audit");
    let (member_id, generation) = client.join_and_sync("emptied");
    client.commit("emptied", Some((&member_id, generation)), "events", 7);
    client.commit("emptied", Some((&member_id, generation)), "audit", 3);
    client.leave("emptied", &member_id);
    // A group only of committed offsets, and one that is kept.
    client.commit("offsets-only", None, "events", 11);
    client.commit("kept", None, "events", 5);
    assert_eq!(client.state_of("emptied"), "Empty");

    assert_eq!(
        client.delete_groups(2, &["emptied", "offsets-only"]),
        vec![("emptied".into(), NONE), ("offsets-only".into(), NONE)]
    );
    let gone = |client: &Client<'_>| {
        assert_eq!(client.listed_groups(), vec!["kept".to_string()]);
        for group in ["emptied", "offsets-only"] {
            assert_eq!(client.state_of(group), "Dead", "{group}");
            assert_eq!(client.committed(group, "events"), -1, "{group}");
        }
        assert_eq!(client.committed("emptied", "audit"), -1);
        assert_eq!(client.committed("kept", "events"), 5);
    };
    gone(&client);
    assert_eq!(
        client.delete_groups(2, &["emptied"]),
        vec![("emptied".into(), GROUP_ID_NOT_FOUND)],
        "deleted twice"
    );

    broker.restart();
    let client = open(&broker);
    gone(&client);
    // The name is free again: a new group starts from nothing.
    let (member_id, _) = client.join_and_sync("emptied");
    assert_eq!(client.state_of("emptied"), "Stable");
    assert_eq!(client.committed("emptied", "events"), -1);
    client.leave("emptied", &member_id);
}

fn sasl_with_grants(config: &mut BrokerConfig) {
    no_initial_delay(config);
    let credential = relay_proto::sasl::Credential::derive(b"secret", b"salt".to_vec(), 4096).expect("credential");
    config.sasl = Some(SaslConfig {
        mechanisms: vec!["SCRAM-SHA-256".into()],
        users: ["admin", "warehouse", "cleaner"]
            .iter()
            .map(|user| (user.to_string(), credential.to_string()))
            .collect(),
        authentication_timeout_ms: 10_000,
    });
    let grant = |user: &str, role: Option<&str>, operations: &[&str], topics: &[&str], groups: &[&str]| GrantConfig {
        users: vec![user.into()],
        role: role.map(Into::into),
        operations: operations.iter().map(|o| o.to_string()).collect(),
        topics: topics.iter().map(|t| t.to_string()).collect(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..GrantConfig::default()
    };
    config.grants = vec![
        grant("admin", Some("admin"), &[], &[], &[]),
        grant("warehouse", Some("loader"), &[], &["events"], &["loader-*"]),
        grant("cleaner", None, &["delete"], &[], &["loader-old"]),
    ];
}

#[test]
fn deleting_a_group_needs_delete_on_it() {
    let broker = WireBroker::start(sasl_with_grants);
    let admin = Client {
        broker: &broker,
        who: As::User("admin"),
    };
    admin.create_topic("events");
    for group in ["loader-a", "loader-old", "loader-b"] {
        admin.commit(group, None, "events", 1);
    }
    let warehouse = Client {
        broker: &broker,
        who: As::User("warehouse"),
    };
    assert_eq!(
        warehouse.delete_groups(2, &["loader-a"]),
        vec![("loader-a".into(), GROUP_AUTHORIZATION_FAILED)],
        "group (READ) on a group is not DELETE"
    );
    let cleaner = Client {
        broker: &broker,
        who: As::User("cleaner"),
    };
    assert_eq!(
        cleaner.delete_groups(2, &["loader-a", "loader-old"]),
        vec![
            ("loader-a".into(), GROUP_AUTHORIZATION_FAILED),
            ("loader-old".into(), NONE)
        ]
    );
    assert_eq!(admin.delete_groups(2, &["loader-b"]), vec![("loader-b".into(), NONE)]);
    assert_eq!(admin.listed_groups(), vec!["loader-a".to_string()]);
}

#[test]
fn a_deletion_that_cannot_be_stored_keeps_the_group() {
    let faults = FaultInjector::default();
    let broker = WireBroker::start_with_faults(
        |config| {
            no_initial_delay(config);
            config.log.fsync = FsyncPolicy::Always;
        },
        faults.clone(),
    );
    let client = open(&broker);
    client.create_topic("events");
    let (member_id, generation) = client.join_and_sync("kept");
    client.commit("kept", Some((&member_id, generation)), "events", 7);
    client.leave("kept", &member_id);
    faults.fail_next_fsyncs(1);
    assert_eq!(
        client.delete_groups(2, &["kept"]),
        vec![("kept".into(), COORDINATOR_NOT_AVAILABLE)]
    );
    assert_eq!(client.state_of("kept"), "Empty");
    assert_eq!(client.listed_groups(), vec!["kept".to_string()]);
    assert_eq!(client.committed("kept", "events"), 7);
}
