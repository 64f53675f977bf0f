//! CreateTopics' Kafka configs through the broker's request path: the ones
//! Relay honours take effect and survive a restart, the ones already true of
//! a single broker are accepted, every other one is refused with
//! INVALID_CONFIG and a message naming it and why (a config without a value
//! too), and `validate_only` checks all of it without creating anything. A
//! replica assignment (what librdkafka's admin test sends) gives the
//! partition count when every partition is on this broker.

mod wire;

use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::*;
use relay_broker::log::FsyncPolicy;
use relay_proto::{BatchBuilder, RecordSpec};
use wire::{produce_request, text, topic_name, WireBroker};

const NONE: i16 = 0;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;

/// CreateTopics v7 of one single-partition topic: (error code, message).
fn create(broker: &WireBroker, topic: &str, configs: &[(&str, Option<&str>)], validate_only: bool) -> (i16, String) {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5_000)
        .with_validate_only(validate_only)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(topic))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(
                configs
                    .iter()
                    .map(|(name, value)| {
                        CreatableTopicConfig::default()
                            .with_name(text(name))
                            .with_value(value.map(text))
                    })
                    .collect(),
            )]);
    let response: CreateTopicsResponse = broker.call(ApiKey::CreateTopics, 7, &request);
    let result = &response.topics[0];
    let message = result.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
    (result.error_code, message)
}

/// Produces one batch of one record of `value_bytes` bytes: its error code.
fn produce(broker: &WireBroker, topic: &str, value_bytes: usize) -> i16 {
    let mut batch = BatchBuilder::new(1_767_225_600_000);
    batch.push(RecordSpec::value(vec![b'x'; value_bytes]));
    let request = produce_request(topic, batch.build());
    let response: ProduceResponse = broker.call(ApiKey::Produce, 9, &request);
    response.responses[0].partition_responses[0].error_code
}

const HONOURED: &[(&str, Option<&str>)] = &[
    ("retention.ms", Some("3600000")),
    ("retention.bytes", Some("1048576")),
    ("segment.bytes", Some("1024")),
    ("segment.ms", Some("60000")),
    ("max.message.bytes", Some("2048")),
    ("index.interval.bytes", Some("512")),
    ("flush.messages", Some("1")),
];

const ALREADY_TRUE: &[(&str, Option<&str>)] = &[
    ("cleanup.policy", Some("delete")),
    ("min.insync.replicas", Some("1")),
    ("unclean.leader.election.enable", Some("false")),
    ("compression.type", Some("producer")),
    ("message.timestamp.type", Some("CreateTime")),
    ("delete.retention.ms", Some("900")),
];

/// The honoured settings in force for `topic`, and what they do.
fn check_honoured(broker: &WireBroker, topic: &str) {
    let tuned = broker.context().topics.get(topic).expect("created");
    let log = &tuned.log_config;
    assert_eq!(
        (log.retention_ms, log.retention_bytes, log.segment_bytes, log.segment_ms),
        (3_600_000, 1_048_576, 1024, 60_000)
    );
    assert_eq!((log.message_bytes_max, log.index_interval_bytes), (2048, 512));
    assert_eq!(log.fsync, FsyncPolicy::Always);
    assert_eq!(produce(broker, topic, 4000), MESSAGE_TOO_LARGE, "max.message.bytes");
    let segments_before = tuned.partitions[0].segment_count();
    for _ in 0..4 {
        assert_eq!(produce(broker, topic, 600), NONE);
    }
    assert!(
        tuned.partitions[0].segment_count() >= segments_before + 2,
        "segment.bytes rolls segments"
    );
}

#[test]
fn honoured_configs_take_effect_and_survive_a_restart() {
    let mut broker = WireBroker::start(|_| {});
    let configs: Vec<_> = HONOURED.iter().chain(ALREADY_TRUE).copied().collect();
    assert_eq!(create(&broker, "tuned", &configs, false), (NONE, String::new()));
    check_honoured(&broker, "tuned");
    broker.restart();
    check_honoured(&broker, "tuned");
}

#[test]
fn unsupported_configs_are_refused_naming_them_and_why() {
    let broker = WireBroker::start(|_| {});
    for (name, value, why) in [
        ("cleanup.policy", Some("compact"), "never compacts"),
        ("min.insync.replicas", Some("2"), "one replica"),
        ("compression.type", Some("lz4"), "never recompresses"),
        ("message.timestamp.type", Some("LogAppendTime"), "timestamps"),
        ("segment.bytes", Some("1"), "outside"),
        ("retention.ms", Some("soon"), "not a valid"),
        ("max.message.bytes", Some("104857600"), "request_bytes_max"),
        (
            "dummy.doesntexist",
            Some("broker is verifying this"),
            "unknown topic config",
        ),
        ("retention.ms", None, "no value"),
    ] {
        for validate_only in [false, true] {
            let (code, message) = create(&broker, "refused", &[(name, value)], validate_only);
            assert_eq!(code, INVALID_CONFIG, "{name} = {value:?}");
            assert!(
                message.contains(name) && message.contains(why),
                "{name} = {value:?}: {message}"
            );
        }
    }
    assert!(broker.context().topics.get("refused").is_none());
}

#[test]
fn validate_only_checks_everything_and_creates_nothing() {
    let broker = WireBroker::start(|_| {});
    let configs: Vec<_> = HONOURED.iter().chain(ALREADY_TRUE).copied().collect();
    assert_eq!(create(&broker, "checked", &configs, true), (NONE, String::new()));
    assert!(broker.context().topics.get("checked").is_none());
    assert_eq!(create(&broker, "checked", &configs, false).0, NONE);
    check_honoured(&broker, "checked");
}

/// CreateTopics v7 of a topic placed by `assignments` (partition, brokers),
/// with `num_partitions` and `replication_factor`: its error code.
fn create_assigned(
    broker: &WireBroker,
    topic: &str,
    assignments: &[(i32, &[i32])],
    count_and_factor: (i32, i16),
) -> i16 {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(topic))
            .with_num_partitions(count_and_factor.0)
            .with_replication_factor(count_and_factor.1)
            .with_assignments(
                assignments
                    .iter()
                    .map(|(partition, brokers)| {
                        CreatableReplicaAssignment::default()
                            .with_partition_index(*partition)
                            .with_broker_ids(brokers.iter().map(|b| BrokerId(*b)).collect())
                    })
                    .collect(),
            )]);
    let response: CreateTopicsResponse = broker.call(ApiKey::CreateTopics, 7, &request);
    response.topics[0].error_code
}

#[test]
fn a_replica_assignment_on_this_broker_gives_the_partition_count() {
    let broker = WireBroker::start(|config| config.default_partitions = 4);
    assert_eq!(
        create_assigned(&broker, "placed", &[(1, &[0]), (0, &[0])], (-1, -1)),
        NONE
    );
    assert_eq!(
        broker.context().topics.get("placed").expect("created").partitions.len(),
        2
    );
    for (topic, assignments, count_and_factor, expected) in [
        ("elsewhere", &[(0, &[1][..])][..], (-1, -1), INVALID_REPLICA_ASSIGNMENT),
        (
            "two-copies",
            &[(0, &[0, 1][..])][..],
            (-1, -1),
            INVALID_REPLICA_ASSIGNMENT,
        ),
        (
            "gap",
            &[(0, &[0][..]), (2, &[0][..])][..],
            (-1, -1),
            INVALID_REPLICA_ASSIGNMENT,
        ),
        ("both", &[(0, &[0][..])][..], (1, -1), INVALID_REQUEST),
    ] {
        assert_eq!(
            create_assigned(&broker, topic, assignments, count_and_factor),
            expected,
            "{topic}"
        );
        assert!(broker.context().topics.get(topic).is_none(), "{topic}");
    }
}
