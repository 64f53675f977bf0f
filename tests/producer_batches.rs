//! `Producer::send_batch`, the batch-level path the sender uses, end to end
//! against `relay broker`:
//! - keyless records of one call land together in one partition, at
//!   consecutive offsets, with one answer per record in the order given, and
//!   their headers (static names, shared values) read back byte for byte, in
//!   every codec;
//! - keyed records go where `send` would put them (murmur2 of the key);
//! - one record the broker refuses as too large fails alone in the answer
//!   while the records around it, in the same call, are written once and in
//!   order;
//! - an unknown partition or an empty call is answered at once, nothing queued.

mod support;

use bytes::Bytes;
use relay_client::admin::Admin;
use relay_client::cluster::{Cluster, ClusterConfig};
use relay_client::consumer::{Consumer, ConsumerConfig};
use relay_client::partitioner::partition_for_key;
use relay_client::producer::{parse_compression, BatchRecord, Producer, ProducerConfig};
use relay_client::records::ConsumerRecord;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::BrokerProcess;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(address: &str) -> Arc<Cluster> {
    Cluster::connect(ClusterConfig::new(address)).await.unwrap()
}

async fn create(cluster: &Arc<Cluster>, topic: &str, partitions: i32) {
    Admin::new(Arc::clone(cluster))
        .create_topic(topic, partitions, &[])
        .await
        .unwrap();
}

/// Every record of `topic` from the start, in the order read.
async fn consume_all(cluster: Arc<Cluster>, topic: &str, records: usize) -> Vec<ConsumerRecord> {
    let mut consumer = Consumer::new(cluster, ConsumerConfig::new(vec![topic.into()], None))
        .await
        .unwrap();
    let mut read = Vec::new();
    let started = Instant::now();
    while read.len() < records || !consumer.at_end() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "read {} of {records} records",
            read.len()
        );
        read.extend(consumer.poll().await.unwrap().records);
    }
    read
}

const NAME: Bytes = Bytes::from_static(b"source_position");

fn line(index: usize, bytes: usize) -> BatchRecord {
    let mut value = format!("line {index:05} ").into_bytes();
    value.resize(bytes.max(value.len()), b'x');
    BatchRecord {
        value: Some(Bytes::from(value)),
        headers: vec![
            (NAME, Some(Bytes::from(index.to_string()))),
            (Bytes::from_static(b"empty"), None),
        ],
        ..BatchRecord::default()
    }
}

#[test]
fn keyless_records_of_one_call_land_together_in_order_with_their_headers_in_every_codec() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    runtime().block_on(async {
        let cluster = connect(&broker.address).await;
        for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
            let topic = format!("lines-{codec}");
            create(&cluster, &topic, 3).await;
            let config = ProducerConfig {
                compression: parse_compression(codec).unwrap(),
                ..ProducerConfig::default()
            };
            let producer = Producer::new(Arc::clone(&cluster), config).await.unwrap();
            let mut sent = Vec::new();
            let mut answers = Vec::new();
            // Three calls: each sticks to one partition, the next call to the next.
            for call in 0..3 {
                let records: Vec<BatchRecord> = (0..700).map(|i| line(call * 700 + i, 120)).collect();
                sent.extend(records.iter().cloned());
                let delivery = producer.send_batch(&topic, None, records).await.unwrap();
                answers.push(delivery.wait().await);
            }
            let mut partitions_used = Vec::new();
            for answer in &answers {
                assert_eq!(answer.len(), 700);
                let first = answer[0].as_ref().unwrap();
                for (index, result) in answer.iter().enumerate() {
                    let metadata = result.as_ref().unwrap();
                    assert_eq!(metadata.partition, first.partition, "{codec}: one call, one partition");
                    assert_eq!(
                        metadata.offset,
                        first.offset + index as i64,
                        "{codec}: consecutive offsets"
                    );
                }
                partitions_used.push(first.partition);
            }
            partitions_used.sort();
            assert_eq!(
                partitions_used,
                vec![0, 1, 2],
                "{codec}: keyless calls take partitions in turn"
            );
            let read = consume_all(Arc::clone(&cluster), &topic, sent.len()).await;
            assert_eq!(read.len(), sent.len(), "{codec}: every record once");
            for answer in &answers {
                for result in answer {
                    let metadata = result.as_ref().unwrap();
                    let stored = read
                        .iter()
                        .find(|r| r.partition == metadata.partition && r.offset == metadata.offset)
                        .expect("the acknowledged offset holds a record");
                    let index = stored.headers[0].1.as_ref().unwrap();
                    let index: usize = std::str::from_utf8(index).unwrap().parse().unwrap();
                    assert_eq!(stored.value, sent[index].value, "{codec}: the record at its offset");
                    assert_eq!(stored.headers[0].0, "source_position");
                    assert_eq!(
                        stored.headers[1],
                        ("empty".to_owned(), None),
                        "{codec}: a null header value"
                    );
                }
            }
        }
    });
}

#[test]
fn keyed_records_go_to_their_keys_partition_and_each_is_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    runtime().block_on(async {
        let cluster = connect(&broker.address).await;
        create(&cluster, "keyed", 4).await;
        let producer = Producer::new(Arc::clone(&cluster), ProducerConfig::default())
            .await
            .unwrap();
        let records: Vec<BatchRecord> = (0..400)
            .map(|i| BatchRecord {
                key: Some(Bytes::from(format!("player-{}", i % 37))),
                ..line(i, 50)
            })
            .collect();
        let answer = producer
            .send_batch("keyed", None, records.clone())
            .await
            .unwrap()
            .wait()
            .await;
        assert_eq!(answer.len(), records.len());
        let mut next = [0i64; 4];
        for (record, result) in records.iter().zip(&answer) {
            let metadata = result.as_ref().unwrap();
            assert_eq!(metadata.partition, partition_for_key(record.key.as_ref().unwrap(), 4));
            assert_eq!(
                metadata.offset, next[metadata.partition as usize],
                "in order per partition"
            );
            next[metadata.partition as usize] += 1;
        }
        let read = consume_all(cluster, "keyed", records.len()).await;
        assert_eq!(read.len(), records.len());
    });
}

#[test]
fn a_record_too_large_fails_alone_and_the_rest_of_its_call_is_written_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "[broker.log]\nmessage_bytes_max = 300000");
    runtime().block_on(async {
        let cluster = connect(&broker.address).await;
        create(&cluster, "mixed", 1).await;
        let config = ProducerConfig {
            linger: Duration::from_millis(200),
            ..ProducerConfig::default()
        };
        let producer = Producer::new(Arc::clone(&cluster), config).await.unwrap();
        let mut records: Vec<BatchRecord> = (0..60).map(|i| line(i, 20_000)).collect();
        records.insert(30, line(9_999, 400_000));
        let answer = producer
            .send_batch("mixed", Some(0), records.clone())
            .await
            .unwrap()
            .wait()
            .await;
        let mut offset = 0;
        for (index, result) in answer.iter().enumerate() {
            if index == 30 {
                assert!(result.as_ref().unwrap_err().is_record_too_large(), "{result:?}");
                continue;
            }
            assert_eq!(result.as_ref().unwrap().offset, offset, "record {index}");
            offset += 1;
        }
        let read = consume_all(cluster, "mixed", 60).await;
        let values: Vec<_> = read.iter().map(|r| r.value.clone()).collect();
        let expected: Vec<_> = records
            .iter()
            .enumerate()
            .filter(|(index, _)| *index != 30)
            .map(|(_, r)| r.value.clone())
            .collect();
        assert_eq!(values, expected, "written once, in order, the refused one left out");
    });
}

#[test]
fn an_unknown_partition_is_refused_and_an_empty_call_is_answered_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    runtime().block_on(async {
        let cluster = connect(&broker.address).await;
        create(&cluster, "two", 2).await;
        let producer = Producer::new(Arc::clone(&cluster), ProducerConfig::default())
            .await
            .unwrap();
        let error = producer
            .send_batch("two", Some(2), vec![line(0, 10)])
            .await
            .err()
            .expect("partition 2 of 2 is refused");
        assert!(error.to_string().contains("no partition 2"), "{error}");
        let answer = producer.send_batch("two", None, Vec::new()).await.unwrap().wait().await;
        assert!(answer.is_empty());
        assert_eq!(producer.unresolved(), 0);
    });
}
