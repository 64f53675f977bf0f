//! ListOffsets through the broker's request path: MAX_TIMESTAMP (-3) answers
//! the first record with the largest timestamp from v7 on, -1/-1 for an empty
//! partition, and INVALID_REQUEST below v7, where it was not defined.

mod wire;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::*;
use relay_proto::{BatchBuilder, RecordSpec};
use wire::{produce_request, topic_name, WireBroker};

const T0_MS: i64 = 1_767_225_600_000;
const MAX_TIMESTAMP: i64 = -3;
const INVALID_REQUEST: i16 = 42;

fn create_topic(broker: &WireBroker, topic: &str, partitions: i32) {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(1)]);
    let response: CreateTopicsResponse = broker.call(ApiKey::CreateTopics, 7, &request);
    assert_eq!(response.topics[0].error_code, 0, "{topic} created");
}

/// Produces one batch whose records carry `timestamps_ms` to partition 0.
fn produce(broker: &WireBroker, topic: &str, timestamps_ms: &[i64]) {
    let mut batch = BatchBuilder::new(timestamps_ms[0]);
    for timestamp_ms in timestamps_ms {
        batch.push(RecordSpec {
            value: Some(format!("at {timestamp_ms}").into_bytes()),
            timestamp_delta_ms: timestamp_ms - timestamps_ms[0],
            ..RecordSpec::default()
        });
    }
    let request = produce_request(topic, batch.build());
    let response: ProduceResponse = broker.call(ApiKey::Produce, 9, &request);
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
}

/// ListOffsets of partition 0 at `timestamp`: (error code, offset, timestamp).
fn list_offsets(broker: &WireBroker, version: i16, topic: &str, timestamp: i64) -> (i16, i64, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(timestamp)])]);
    let response: ListOffsetsResponse = broker.call(ApiKey::ListOffsets, version, &request);
    let partition = &response.topics[0].partitions[0];
    (partition.error_code, partition.offset, partition.timestamp)
}

#[test]
fn max_timestamp_answers_the_first_record_with_the_largest_timestamp() {
    let broker = WireBroker::start(|_| {});
    create_topic(&broker, "events", 1);
    produce(&broker, "events", &[T0_MS, T0_MS + 40, T0_MS + 10]);
    produce(&broker, "events", &[T0_MS + 20, T0_MS + 90, T0_MS + 90, T0_MS + 30]);
    produce(&broker, "events", &[T0_MS + 50, T0_MS + 90]);
    for version in 7..=10 {
        assert_eq!(
            list_offsets(&broker, version, "events", MAX_TIMESTAMP),
            (0, 4, T0_MS + 90),
            "v{version}"
        );
    }
}

#[test]
fn max_timestamp_of_an_empty_partition_is_minus_one() {
    let broker = WireBroker::start(|_| {});
    create_topic(&broker, "empty", 1);
    assert_eq!(list_offsets(&broker, 7, "empty", MAX_TIMESTAMP), (0, -1, -1));
}

#[test]
fn max_timestamp_before_v7_is_an_invalid_request() {
    let broker = WireBroker::start(|_| {});
    create_topic(&broker, "events", 1);
    produce(&broker, "events", &[T0_MS]);
    assert_eq!(
        list_offsets(&broker, 6, "events", MAX_TIMESTAMP),
        (INVALID_REQUEST, -1, -1)
    );
}
