//! `relay broker` as an operator runs it: clean shutdown on SIGTERM, the
//! cluster id, connection limits, per-topic settings and retention from the
//! config file.

mod support;

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use relay_proto::{BatchBuilder, RecordSpec};
use std::process::Command;
use std::time::{Duration, Instant};
use support::raw_client::RawConnection;
use support::{relay_binary, run_with_timeout, BrokerProcess};

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.into()))
}

fn metadata(connection: &mut RawConnection, topic: &str) -> MetadataResponse {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(name(topic)))
        ]))
        .with_allow_auto_topic_creation(true);
    connection.request(ApiKey::Metadata, 12, &request)
}

fn produce(connection: &mut RawConnection, topic: &str, records: usize, value_bytes: usize) -> (i16, i64) {
    let mut builder = BatchBuilder::new(1_767_225_600_000);
    for _ in 0..records {
        builder.push(RecordSpec::value(vec![b'x'; value_bytes]));
    }
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(builder.build())))])]);
    let response: ProduceResponse = connection.request(ApiKey::Produce, 9, &request);
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

fn offset(connection: &mut RawConnection, topic: &str, timestamp: i64) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default().with_timestamp(timestamp)
            ])]);
    let response: ListOffsetsResponse = connection.request(ApiKey::ListOffsets, 7, &request);
    response.topics[0].partitions[0].offset
}

#[test]
fn sigterm_shuts_down_cleanly_and_restart_needs_no_rescan() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), "");
    let mut connection = RawConnection::connect(&broker.address);
    metadata(&mut connection, "durable");
    for round in 0..10 {
        assert_eq!(produce(&mut connection, "durable", 100, 50), (0, round * 100));
    }
    drop(connection);
    assert_eq!(broker.terminate(), Some(0), "SIGTERM exits 0");
    let checkpoint = std::fs::read_to_string(broker.data_dir.join("recovery-checkpoint")).unwrap();
    assert!(
        checkpoint.lines().any(|line| line.starts_with("durable-0 ")),
        "the recovery checkpoint marks the partition clean:\n{checkpoint}"
    );
    assert!(broker.log().contains("broker stopped cleanly"));
    broker.restart();
    let mut connection = RawConnection::connect(&broker.address);
    assert_eq!(offset(&mut connection, "durable", -1), 1000);
    assert!(
        !broker.log().contains("recovered partition"),
        "a clean restart rescans nothing:\n{}",
        broker.log()
    );
    assert_eq!(produce(&mut connection, "durable", 1, 10), (0, 1000));
}

/// After a clean stop, a crash before anything was written again leaves
/// every segment as the checkpoint verified it: no rescan. A segment written
/// since is rescanned after the next crash.
#[test]
fn a_crash_rescans_only_segments_written_since_the_last_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), "");
    let mut connection = RawConnection::connect(&broker.address);
    metadata(&mut connection, "kept");
    metadata(&mut connection, "written");
    assert_eq!(produce(&mut connection, "kept", 100, 50), (0, 0));
    assert_eq!(produce(&mut connection, "written", 100, 50), (0, 0));
    drop(connection);
    assert_eq!(broker.terminate(), Some(0));
    let recoveries = |log: &str, dir: &str| {
        log.lines()
            .filter(|l| l.contains("recovered partition") && l.contains(dir))
            .count()
    };
    broker.restart();
    let mut connection = RawConnection::connect(&broker.address);
    assert_eq!(produce(&mut connection, "written", 1, 10), (0, 100));
    drop(connection);
    let before = broker.log();
    broker.kill9();
    broker.restart();
    let mut connection = RawConnection::connect(&broker.address);
    assert_eq!(offset(&mut connection, "kept", -1), 100);
    assert_eq!(offset(&mut connection, "written", -1), 101);
    let after = broker.log();
    assert_eq!(
        recoveries(&after, "kept-0") - recoveries(&before, "kept-0"),
        0,
        "a segment unchanged since the clean stop is not rescanned:\n{after}"
    );
    assert_eq!(
        recoveries(&after, "written-0") - recoveries(&before, "written-0"),
        1,
        "a segment written since is rescanned:\n{after}"
    );
}

#[test]
fn cluster_id_is_kept_and_a_mismatch_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), "cluster_id = \"prod-eu\"");
    let mut connection = RawConnection::connect(&broker.address);
    assert_eq!(metadata(&mut connection, "t").cluster_id.unwrap().as_str(), "prod-eu");
    broker.terminate();
    let config = dir.path().join("qa.toml");
    std::fs::write(
        &config,
        format!(
            "[broker]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\ncluster_id = \"qa\"\n",
            broker.data_dir.display()
        ),
    )
    .unwrap();
    let output = run_with_timeout(
        Command::new(relay_binary()).arg("broker").arg("--config").arg(&config),
        Duration::from_secs(20),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("prod-eu") && stderr.contains("qa"),
        "the error names both ids: {stderr}"
    );
}

#[test]
fn bad_config_is_a_usage_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[broker]\nlisten = \"127.0.0.1:0\"\nsegment_byts = 5\n").unwrap();
    let output = run_with_timeout(
        Command::new(relay_binary()).arg("broker").arg("--config").arg(&config),
        Duration::from_secs(20),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("segment_byts"));
    std::fs::write(&config, "[broker.log]\nfsync = \"sometimes\"\n").unwrap();
    let output = run_with_timeout(
        Command::new(relay_binary()).arg("broker").arg("--config").arg(&config),
        Duration::from_secs(20),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("sometimes"));
}

#[test]
fn connections_over_the_limit_and_idle_ones_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "connections_max = 2\nidle_timeout_ms = 500");
    let mut first = RawConnection::connect(&broker.address);
    let mut second = RawConnection::connect(&broker.address);
    metadata(&mut first, "t");
    metadata(&mut second, "t");
    let mut third = RawConnection::connect(&broker.address);
    assert!(third.is_closed_by_broker(), "a third connection is refused");
    metadata(&mut first, "t");
    let started = Instant::now();
    assert!(second.is_closed_by_broker(), "an idle connection is closed");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn topic_settings_and_retention_come_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = "retention_check_interval_ms = 100\n\
                  [broker.log]\nsegment_bytes = 4096\n\
                  [broker.topics.wide]\npartitions = 4\n\
                  [broker.topics.short]\nretention_bytes = 8192\nretention_ms = -1\n";
    let broker = BrokerProcess::start(dir.path(), config);
    let mut connection = RawConnection::connect(&broker.address);
    assert_eq!(metadata(&mut connection, "wide").topics[0].partitions.len(), 4);
    assert_eq!(metadata(&mut connection, "short").topics[0].partitions.len(), 1);
    for _ in 0..40 {
        assert_eq!(produce(&mut connection, "short", 10, 100).0, 0);
    }
    let segments = || {
        std::fs::read_dir(broker.data_dir.join("short-0"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
            .count()
    };
    // Retention runs every 100 ms; wait for a pass after the last produce.
    let started = Instant::now();
    while offset(&mut connection, "short", -2) == 0 || segments() > 4 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "retention never caught up: {} segments",
            segments()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(offset(&mut connection, "short", -1), 400);
    assert!(
        (2..=4).contains(&segments()),
        "retention keeps about 8 KiB of 4 KiB segments: {}",
        segments()
    );
}
