//! Records close to Kafka's 1 MiB limit, end to end against `relay broker`
//! with its defaults (`message_bytes_max` = 1,048,588, Apache Kafka's
//! `message.max.bytes`):
//! - records of ~900 KiB and 1 MiB − 100 bytes mixed with small ones arrive
//!   exactly once and in order per partition, in batches no larger than the
//!   producer's 1,000,000-byte cap unless a batch is one record;
//! - a broker with a smaller limit makes the producer split its batches in
//!   halves and send them again, losing, doubling and reordering nothing;
//! - one record larger than the broker accepts fails alone
//!   (`ClientError::is_record_too_large`), and through `relay produce` with a
//!   message naming the limit, while the records around it are delivered;
//! - kcat (librdkafka), when present, reads the large records back.

mod support;

use bytes::Bytes;
use relay_client::admin::Admin;
use relay_client::cluster::{Cluster, ClusterConfig};
use relay_client::consumer::{Consumer, ConsumerConfig};
use relay_client::error::Result;
use relay_client::producer::{Producer, ProducerConfig, ProducerRecord, RecordMetadata, BATCH_BYTES_MAX_DEFAULT};
use relay_proto::RecordBatches;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{kcat, relay_binary, run_with_timeout, BrokerProcess};

/// Apache Kafka's default `message.max.bytes`, the broker's default limit.
const KAFKA_MESSAGE_BYTES_MAX: usize = 1_048_588;
const SMALL: usize = 100;
const NEAR_900_KIB: usize = 900 * 1024;
const MIB_LESS_100: usize = 1024 * 1024 - 100;
const TWO_MIB: usize = 2 * 1024 * 1024;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A value of `bytes` bytes that names its partition and place.
fn value(partition: i32, index: usize, bytes: usize) -> Bytes {
    let mut value = format!("p{partition} #{index:04} ").into_bytes();
    assert!(value.len() <= bytes);
    value.extend((value.len()..bytes).map(|i| b'a' + (i % 26) as u8));
    Bytes::from(value)
}

async fn connect(address: &str) -> Arc<Cluster> {
    Cluster::connect(ClusterConfig::new(address)).await.unwrap()
}

/// Sends every `(partition, value)` in order and waits for all of them;
/// returns each record's outcome, in the same order.
async fn send_all(producer: &Producer, topic: &str, plan: &[(i32, Bytes)]) -> Vec<Result<RecordMetadata>> {
    let mut deliveries = Vec::with_capacity(plan.len());
    for (partition, value) in plan {
        let record = ProducerRecord {
            topic: topic.into(),
            partition: Some(*partition),
            value: Some(value.clone()),
            ..ProducerRecord::default()
        };
        deliveries.push(producer.send(record).await.unwrap());
    }
    let mut outcomes = Vec::with_capacity(plan.len());
    for delivery in deliveries {
        outcomes.push(delivery.wait().await);
    }
    outcomes
}

/// Every record of `topic` from the start: per partition, (offset, value)
/// in the order read.
async fn consume_all(cluster: Arc<Cluster>, topic: &str, records: usize) -> BTreeMap<i32, Vec<(i64, Bytes)>> {
    let mut consumer = Consumer::new(cluster, ConsumerConfig::new(vec![topic.into()], None))
        .await
        .unwrap();
    let mut read = BTreeMap::<i32, Vec<(i64, Bytes)>>::new();
    let mut count = 0;
    let started = Instant::now();
    while count < records || !consumer.at_end() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "read {count} of {records} records"
        );
        for record in consumer.poll().await.unwrap().records {
            read.entry(record.partition)
                .or_default()
                .push((record.offset, record.value.unwrap()));
            count += 1;
        }
    }
    read
}

/// What each partition should hold: the delivered records' values at
/// consecutive offsets, in the order sent.
fn expected_log(plan: &[(i32, Bytes)], delivered: impl Fn(usize) -> bool) -> BTreeMap<i32, Vec<(i64, Bytes)>> {
    let mut expected = BTreeMap::<i32, Vec<(i64, Bytes)>>::new();
    for (index, (partition, value)) in plan.iter().enumerate() {
        if delivered(index) {
            let records = expected.entry(*partition).or_default();
            records.push((records.len() as i64, value.clone()));
        }
    }
    expected
}

/// The record batches of a partition's segment files: (record count, bytes).
fn stored_batches(data_dir: &Path, topic: &str, partition: i32) -> Vec<(i32, usize)> {
    let dir = data_dir.join(format!("{topic}-{partition}"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    let mut batches = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for batch in RecordBatches::new(&bytes) {
            let (_, header, whole) = batch.expect("whole, valid batches");
            batches.push((header.record_count(), whole.len()));
        }
    }
    batches
}

#[test]
fn large_and_small_records_arrive_exactly_once_in_order_per_partition() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let sizes = [
        SMALL,
        NEAR_900_KIB,
        SMALL,
        MIB_LESS_100,
        MIB_LESS_100,
        SMALL,
        SMALL,
        NEAR_900_KIB,
        NEAR_900_KIB,
        SMALL,
        SMALL,
        SMALL,
    ];
    let plan: Vec<(i32, Bytes)> = sizes
        .iter()
        .enumerate()
        .flat_map(|(index, &bytes)| (0..3).map(move |partition| (partition, value(partition, index, bytes))))
        .collect();
    runtime().block_on(async {
        let cluster = connect(&broker.address).await;
        Admin::new(Arc::clone(&cluster))
            .create_topic("large", 3, &[])
            .await
            .unwrap();
        let producer = Producer::new(Arc::clone(&cluster), ProducerConfig::default())
            .await
            .unwrap();
        let outcomes = send_all(&producer, "large", &plan).await;
        let mut next_offset = BTreeMap::<i32, i64>::new();
        for ((partition, _), outcome) in plan.iter().zip(outcomes) {
            let metadata = outcome.unwrap_or_else(|error| panic!("partition {partition}: {error}"));
            let expected_offset = next_offset.entry(*partition).or_default();
            assert_eq!(
                metadata,
                RecordMetadata {
                    partition: *partition,
                    offset: *expected_offset
                }
            );
            *expected_offset += 1;
        }
        let read = consume_all(cluster, "large", plan.len()).await;
        assert!(read == expected_log(&plan, |_| true), "every record once, in order");
    });
    for partition in 0..3 {
        let batches = stored_batches(&broker.data_dir, "large", partition);
        assert_eq!(batches.iter().map(|(records, _)| records).sum::<i32>(), 12);
        for &(records, bytes) in &batches {
            assert!(bytes <= KAFKA_MESSAGE_BYTES_MAX, "a batch of {bytes} bytes");
            assert!(
                records == 1 || bytes <= BATCH_BYTES_MAX_DEFAULT,
                "a batch of {records} records and {bytes} bytes passes the producer's cap"
            );
        }
    }
}

#[test]
fn record_larger_than_the_broker_accepts_fails_alone_as_record_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let plan = vec![
        (0, value(0, 0, SMALL)),
        (0, value(0, 1, TWO_MIB)),
        (0, value(0, 2, SMALL)),
        (0, value(0, 3, MIB_LESS_100)),
    ];
    runtime().block_on(async {
        let cluster = connect(&broker.address).await;
        Admin::new(Arc::clone(&cluster))
            .create_topic("oversized", 1, &[])
            .await
            .unwrap();
        let producer = Producer::new(Arc::clone(&cluster), ProducerConfig::default())
            .await
            .unwrap();
        let mut outcomes = send_all(&producer, "oversized", &plan).await.into_iter();
        assert_eq!(outcomes.next().unwrap().unwrap().offset, 0);
        let error = outcomes.next().unwrap().unwrap_err();
        assert!(error.is_record_too_large(), "{error}");
        assert!(!error.is_retriable());
        let message = error.to_string();
        assert!(
            message.starts_with("producing a record of 2097") && message.contains("message_bytes_max"),
            "{message}"
        );
        assert!(message.ends_with("(Kafka error code 10)"), "{message}");
        assert_eq!(outcomes.next().unwrap().unwrap().offset, 1);
        assert_eq!(outcomes.next().unwrap().unwrap().offset, 2);
        let read = consume_all(cluster, "oversized", 3).await;
        assert!(
            read == expected_log(&plan, |index| index != 1),
            "the others, once, in order"
        );
    });
}

#[test]
fn batches_refused_as_too_large_are_split_and_nothing_is_lost_doubled_or_reordered() {
    let dir = tempfile::tempdir().unwrap();
    // A broker that takes less than the producer's batches: every full batch
    // is refused, split and sent again, several times over.
    let broker = BrokerProcess::start(dir.path(), "[broker.log]\nmessage_bytes_max = 300000");
    let mut plan: Vec<(i32, Bytes)> = (0..80)
        .map(|index| (index as i32 % 2, value(index as i32 % 2, index, 40_000)))
        .collect();
    // One record the broker refuses even alone, in the middle of a batch.
    plan.insert(41, (1, value(1, 9_999, 400_000)));
    runtime().block_on(async {
        let cluster = connect(&broker.address).await;
        Admin::new(Arc::clone(&cluster))
            .create_topic("splits", 2, &[])
            .await
            .unwrap();
        let config = ProducerConfig {
            // Everything sent gathers into full batches before the first goes out.
            linger: Duration::from_millis(300),
            ..ProducerConfig::default()
        };
        let producer = Producer::new(Arc::clone(&cluster), config).await.unwrap();
        let outcomes = send_all(&producer, "splits", &plan).await;
        let mut next_offset = BTreeMap::<i32, i64>::new();
        for (index, ((partition, _), outcome)) in plan.iter().zip(outcomes).enumerate() {
            if index == 41 {
                assert!(outcome.unwrap_err().is_record_too_large());
                continue;
            }
            let expected_offset = next_offset.entry(*partition).or_default();
            assert_eq!(outcome.unwrap().offset, *expected_offset, "record {index}");
            *expected_offset += 1;
        }
        let read = consume_all(cluster, "splits", plan.len() - 1).await;
        assert!(
            read == expected_log(&plan, |index| index != 41),
            "every record once, in order"
        );
    });
    let refusals = broker
        .log()
        .matches("is larger than message_bytes_max = 300000")
        .count();
    assert!(
        refusals >= 4,
        "full batches were refused and split: {refusals} refusals"
    );
    for partition in 0..2 {
        let batches = stored_batches(&broker.data_dir, "splits", partition);
        assert!(batches.iter().all(|&(_, bytes)| bytes <= 300_000), "{batches:?}");
        assert!(batches.len() < 40, "records were batched (and so split): {batches:?}");
    }
}

#[test]
fn relay_produce_names_the_limit_for_a_line_too_large_and_sends_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let file = dir.path().join("lines.jsonl");
    let lines = [
        String::from_utf8(value(0, 0, SMALL).to_vec()).unwrap(),
        String::from_utf8(value(0, 1, TWO_MIB).to_vec()).unwrap(),
        String::from_utf8(value(0, 2, MIB_LESS_100).to_vec()).unwrap(),
    ];
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let output = run_with_timeout(
        Command::new(relay_binary())
            .args(["produce", "--topic", "lines"])
            .arg(&file)
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("produced 2 records"), "{stderr}");
    assert!(
        stderr.contains("1 records were not delivered; first error: producing a record of 2097"),
        "{stderr}"
    );
    assert!(stderr.contains("message_bytes_max"), "{stderr}");
    let batches = stored_batches(&broker.data_dir, "lines", 0);
    assert_eq!(batches.iter().map(|(records, _)| records).sum::<i32>(), 2);
}

#[test]
fn kcat_reads_back_records_near_one_mib() {
    let Some(kcat) = kcat() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let plan: Vec<(i32, Bytes)> = [SMALL, MIB_LESS_100, NEAR_900_KIB, SMALL, MIB_LESS_100]
        .iter()
        .enumerate()
        .map(|(index, &bytes)| (0, value(0, index, bytes)))
        .collect();
    runtime().block_on(async {
        let cluster = connect(&broker.address).await;
        Admin::new(Arc::clone(&cluster))
            .create_topic("kcat-large", 1, &[])
            .await
            .unwrap();
        let producer = Producer::new(cluster, ProducerConfig::default()).await.unwrap();
        for outcome in send_all(&producer, "kcat-large", &plan).await {
            outcome.unwrap();
        }
    });
    let consumed = run_with_timeout(
        Command::new(&kcat).args([
            "-b",
            &broker.address,
            "-C",
            "-t",
            "kcat-large",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%o %S\n",
        ]),
        Duration::from_secs(60),
    );
    assert!(
        consumed.status.success(),
        "kcat -C: {}",
        String::from_utf8_lossy(&consumed.stderr)
    );
    let expected: String = plan
        .iter()
        .enumerate()
        .map(|(offset, (_, value))| format!("{offset} {}\n", value.len()))
        .collect();
    assert_eq!(String::from_utf8(consumed.stdout).unwrap(), expected);
}
