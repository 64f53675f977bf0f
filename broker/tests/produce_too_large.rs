//! Size limits on the wire, against a broker with Kafka's default
//! `message_bytes_max` (1,048,588): a larger batch is answered
//! MESSAGE_TOO_LARGE for its own partition only, the connection stays open,
//! and a batch larger than a topic's `segment_bytes` is accepted. A Fetch
//! response keeps to its `max_bytes` and each partition's
//! `partition_max_bytes`, but for the first batch of its first non-empty
//! partition, which goes whole so a consumer always makes progress (KIP-74).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use relay_broker::broker::Broker;
use relay_broker::config::BrokerConfig;
use relay_broker::log::config::MESSAGE_BYTES_MAX_DEFAULT;
use relay_broker::log::FsyncPolicy;
use relay_proto::{BatchBuilder, RecordBatches, RecordSpec};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const T0_MS: i64 = 1_767_225_600_000;

/// A blocking Kafka connection that sends one request at a time.
struct Client {
    stream: TcpStream,
    correlation_id: i32,
}

impl Client {
    fn connect(address: SocketAddr) -> Self {
        let stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Self {
            stream,
            correlation_id: 0,
        }
    }

    fn request<Req: Encodable, Res: Decodable>(&mut self, api: ApiKey, version: i16, request: &Req) -> Res {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id);
        let mut body = BytesMut::new();
        header.encode(&mut body, api.request_header_version(version)).unwrap();
        request.encode(&mut body, version).unwrap();
        let mut frame = BytesMut::with_capacity(4 + body.len());
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        self.stream.write_all(&frame).unwrap();
        let mut prefix = [0u8; 4];
        self.stream
            .read_exact(&mut prefix)
            .expect("the broker answers and keeps the connection open");
        let mut answer = vec![0u8; i32::from_be_bytes(prefix) as usize];
        self.stream.read_exact(&mut answer).unwrap();
        let mut answer = Bytes::from(answer);
        let header = ResponseHeader::decode(&mut answer, api.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, self.correlation_id);
        Res::decode(&mut answer, version).unwrap()
    }

    /// Produce v9 of one batch per partition: each partition's
    /// (error code, base offset, error message).
    fn produce(&mut self, topic: &str, batches: Vec<(i32, Vec<u8>)>) -> Vec<(i16, i64, Option<String>)> {
        let partitions = batches
            .into_iter()
            .map(|(index, batch)| {
                PartitionProduceData::default()
                    .with_index(index)
                    .with_records(Some(Bytes::from(batch)))
            })
            .collect();
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partition_data(partitions)]);
        let response: ProduceResponse = self.request(ApiKey::Produce, 9, &request);
        response.responses[0]
            .partition_responses
            .iter()
            .map(|p| {
                (
                    p.error_code,
                    p.base_offset,
                    p.error_message.as_ref().map(|m| m.to_string()),
                )
            })
            .collect()
    }

    /// Fetch v12 of `partitions` from offset 0 with the given limits: the
    /// bytes of records returned for each partition, in order.
    fn fetch_sizes(&mut self, topic: &str, partitions: i32, max_bytes: i32, partition_max_bytes: i32) -> Vec<usize> {
        let wanted = (0..partitions)
            .map(|partition| {
                fetch_request::FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(partition_max_bytes)
            })
            .collect();
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(max_bytes)
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.into())))
                .with_partitions(wanted)]);
        let response: FetchResponse = self.request(ApiKey::Fetch, 12, &request);
        response.responses[0]
            .partitions
            .iter()
            .map(|p| {
                assert_eq!(p.error_code, 0, "partition {}", p.partition_index);
                let records = p.records.clone().unwrap_or_default();
                assert!(
                    RecordBatches::new(&records).all(|batch| batch.is_ok()),
                    "whole batches only"
                );
                records.len()
            })
            .collect()
    }

    /// Fetch v12 of one partition from `offset`: the record counts of the
    /// whole, CRC-checked batches returned.
    fn fetch_batches(&mut self, topic: &str, partition: i32, offset: i64) -> Vec<i32> {
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(64 << 20)
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.into())))
                .with_partitions(vec![fetch_request::FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(64 << 20)])]);
        let response: FetchResponse = self.request(ApiKey::Fetch, 12, &request);
        let records = response.responses[0].partitions[0].records.clone().unwrap_or_default();
        RecordBatches::new(&records)
            .map(|batch| batch.expect("valid batch").1.record_count())
            .collect()
    }
}

/// A batch of one record whose encoding is exactly `batch_bytes` long.
fn batch_exactly(batch_bytes: usize) -> Vec<u8> {
    let build = |value_bytes: usize| {
        let mut builder = BatchBuilder::new(T0_MS);
        builder.push(RecordSpec::value(vec![b'x'; value_bytes]));
        builder.build()
    };
    let mut value_bytes = batch_bytes - build(0).len();
    while build(value_bytes).len() > batch_bytes {
        value_bytes -= 1;
    }
    let batch = build(value_bytes);
    assert_eq!(batch.len(), batch_bytes);
    batch
}

fn small_batch(records: usize) -> Vec<u8> {
    let mut builder = BatchBuilder::new(T0_MS);
    for index in 0..records {
        builder.push(RecordSpec::value(format!("small {index}").into_bytes()));
    }
    builder.build()
}

async fn start(dir: &std::path::Path) -> Broker {
    let mut config = BrokerConfig {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.join("data"),
        ..BrokerConfig::default()
    };
    config.log.fsync = FsyncPolicy::Never;
    assert_eq!(config.log.message_bytes_max, 1_048_588, "Apache Kafka's default");
    Broker::start(config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_over_message_bytes_max_gets_message_too_large_and_the_next_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path()).await;
    broker.context().topics.create("limits", 2, 1, &[], false).unwrap();
    let address = broker.local_addr();
    tokio::task::spawn_blocking(move || {
        let mut client = Client::connect(address);
        let answers = client.produce(
            "limits",
            vec![(0, batch_exactly(MESSAGE_BYTES_MAX_DEFAULT + 1)), (1, small_batch(3))],
        );
        assert_eq!(answers[0].0, ResponseError::MessageTooLarge.code());
        assert_eq!(answers[0].1, -1);
        assert_eq!(
            answers[0].2.as_deref(),
            Some(
                "batch of 1048589 bytes is larger than message_bytes_max = 1048588; send smaller batches or raise \
                 the topic's message_bytes_max (Kafka: max.message.bytes)"
            )
        );
        assert_eq!(
            answers[1],
            (0, 0, None),
            "the other partition of the request is unaffected"
        );
        // Same connection: a batch of exactly the limit, then a small one.
        let answers = client.produce("limits", vec![(0, batch_exactly(MESSAGE_BYTES_MAX_DEFAULT))]);
        assert_eq!(answers, vec![(0, 0, None)]);
        let answers = client.produce("limits", vec![(0, small_batch(2))]);
        assert_eq!(answers, vec![(0, 1, None)]);
        assert_eq!(client.fetch_batches("limits", 0, 0), vec![1, 2]);
    })
    .await
    .unwrap();
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_larger_than_the_topics_segment_bytes_is_accepted_and_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path()).await;
    let configs = [("segment.bytes".to_owned(), "4096".to_owned())];
    broker
        .context()
        .topics
        .create("segments", 1, 1, &configs, false)
        .unwrap();
    let address = broker.local_addr();
    tokio::task::spawn_blocking(move || {
        let mut client = Client::connect(address);
        assert_eq!(
            client.produce("segments", vec![(0, small_batch(2))]),
            vec![(0, 0, None)]
        );
        let large = batch_exactly(900 * 1024);
        assert_eq!(client.produce("segments", vec![(0, large)]), vec![(0, 2, None)]);
        assert_eq!(
            client.produce("segments", vec![(0, small_batch(1))]),
            vec![(0, 3, None)]
        );
        // A fetch reads within one segment, so each segment is one answer.
        assert_eq!(client.fetch_batches("segments", 0, 0), vec![2]);
        assert_eq!(client.fetch_batches("segments", 0, 2), vec![1]);
        assert_eq!(client.fetch_batches("segments", 0, 3), vec![1]);
    })
    .await
    .unwrap();
    let log = broker.context().topics.get("segments").unwrap().partitions[0].clone();
    assert_eq!(log.segment_count(), 3, "the large batch has a segment of its own");
    broker.shutdown().await;
}

/// Four partitions of two 300,000-byte batches each. Before, every partition
/// after the first still got one whole batch when the response's budget was
/// spent: a 1,000,000-byte request got 1,200,000 bytes, which librdkafka
/// refuses ("Invalid response size") and fetches again for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_responses_keep_to_max_bytes_but_for_the_first_batch() {
    const BATCH_BYTES: usize = 300_000;
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path()).await;
    broker.context().topics.create("budget", 4, 1, &[], false).unwrap();
    let address = broker.local_addr();
    tokio::task::spawn_blocking(move || {
        let mut client = Client::connect(address);
        for partition in 0..4 {
            for _ in 0..2 {
                let answers = client.produce("budget", vec![(partition, batch_exactly(BATCH_BYTES))]);
                assert_eq!(answers[0].0, 0);
            }
        }
        // The response's budget: what fits, whole batches only, nothing past it.
        let sizes = client.fetch_sizes("budget", 4, 1_000_000, 1_000_000);
        assert_eq!(sizes, vec![2 * BATCH_BYTES, BATCH_BYTES, 0, 0], "max_bytes 1,000,000");
        // A response limit below one batch: the first batch still goes, alone.
        let sizes = client.fetch_sizes("budget", 4, 100_000, 1_000_000);
        assert_eq!(sizes, vec![BATCH_BYTES, 0, 0, 0], "max_bytes 100,000");
        // A partition limit below one batch: only the first non-empty partition goes over it.
        let sizes = client.fetch_sizes("budget", 4, 10_000_000, 100_000);
        assert_eq!(sizes, vec![BATCH_BYTES, 0, 0, 0], "partition_max_bytes 100,000");
        // Room for everything: everything.
        let sizes = client.fetch_sizes("budget", 4, 10_000_000, 10_000_000);
        assert_eq!(sizes, vec![2 * BATCH_BYTES; 4], "room for all");
    })
    .await
    .unwrap();
    broker.shutdown().await;
}
