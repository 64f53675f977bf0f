//! A bare Kafka-protocol connection for tests that must send exact bytes:
//! retried batches, malformed frames, specific API versions.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use relay_proto::{BatchBuilder, RecordBatches, RecordSpec};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct RawConnection {
    pub stream: TcpStream,
    correlation_id: i32,
}

impl RawConnection {
    pub fn connect(address: &str) -> Self {
        let stream = TcpStream::connect(address).expect("connect to broker");
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            correlation_id: 0,
        }
    }

    /// Sends one request and reads its response.
    pub fn request<Req: Encodable, Res: Decodable>(&mut self, api: ApiKey, version: i16, request: &Req) -> Res {
        self.send(api, version, request);
        self.receive(api, version)
    }

    pub fn send<Req: Encodable>(&mut self, api: ApiKey, version: i16, request: &Req) {
        let frame = self.frame(api, version, request);
        self.stream.write_all(&frame).unwrap();
    }

    /// Sends one request unless the socket's write timeout expires first
    /// (the peer stopped reading); false then.
    pub fn try_send<Req: Encodable>(&mut self, api: ApiKey, version: i16, request: &Req) -> bool {
        let frame = self.frame(api, version, request);
        self.stream.write_all(&frame).is_ok()
    }

    fn frame<Req: Encodable>(&mut self, api: ApiKey, version: i16, request: &Req) -> BytesMut {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("relay-tests")));
        let mut body = BytesMut::new();
        header.encode(&mut body, api.request_header_version(version)).unwrap();
        request.encode(&mut body, version).unwrap();
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        frame
    }

    pub fn receive<Res: Decodable>(&mut self, api: ApiKey, version: i16) -> Res {
        let mut frame = self.read_frame().expect("a response frame");
        let header = ResponseHeader::decode(&mut frame, api.response_header_version(version)).unwrap();
        assert_eq!(
            header.correlation_id, self.correlation_id,
            "responses come in request order"
        );
        Res::decode(&mut frame, version).unwrap()
    }

    /// The next frame, or `None` when the broker closed the connection.
    pub fn read_frame(&mut self) -> Option<Bytes> {
        let mut prefix = [0u8; 4];
        if self.stream.read_exact(&mut prefix).is_err() {
            return None;
        }
        let mut body = vec![0u8; i32::from_be_bytes(prefix) as usize];
        self.stream.read_exact(&mut body).ok()?;
        Some(Bytes::from(body))
    }

    /// Whether the broker has closed this connection (reads end of stream).
    pub fn is_closed_by_broker(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0) | Err(_))
    }
}

/// Reads a big-endian i16 at the front of `bytes`.
pub fn peek_i16(bytes: &Bytes) -> i16 {
    bytes.clone().get_i16()
}

/// CreateTopics v7; panics unless the topic was created.
pub fn create_topic(connection: &mut RawConnection, name: &str, partitions: i32) {
    let topic = create_topics_request::CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.into())))
        .with_num_partitions(partitions)
        .with_replication_factor(1);
    let response: CreateTopicsResponse = connection.request(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(5000),
    );
    assert_eq!(
        response.topics[0].error_code, 0,
        "{:?}",
        response.topics[0].error_message
    );
}

/// Produce with acks = -1: (error code, base offset) of the one partition.
pub fn produce(
    connection: &mut RawConnection,
    topic: &str,
    partition: i32,
    records: Vec<u8>,
    version: i16,
) -> (i16, i64) {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(Bytes::from(records)))])]);
    let response: ProduceResponse = connection.request(ApiKey::Produce, version, &request);
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

/// ListOffsets v7 latest of partition 0.
pub fn latest_offset(connection: &mut RawConnection, topic: &str) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1)
            ])]);
    let response: ListOffsetsResponse = connection.request(ApiKey::ListOffsets, 7, &request);
    response.topics[0].partitions[0].offset
}

/// A record batch of `records` values "record N", idempotent when `producer` is given.
pub fn batch(producer: Option<(i64, i16, i32)>, records: usize) -> Vec<u8> {
    let mut builder = match producer {
        Some((id, epoch, sequence)) => BatchBuilder::new(1_767_225_600_000).producer(id, epoch, sequence),
        None => BatchBuilder::new(1_767_225_600_000),
    };
    for index in 0..records {
        builder.push(RecordSpec::value(format!("record {index}").into_bytes()));
    }
    builder.build()
}

/// Fetch v12 of one partition from `offset`: (error code, high watermark,
/// record count of the whole CRC-checked batches returned).
pub fn fetch(connection: &mut RawConnection, topic: &str, partition: i32, offset: i64) -> (i16, i64, usize) {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(64 << 20)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.into())))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(64 << 20)])]);
    let response: FetchResponse = connection.request(ApiKey::Fetch, 12, &request);
    let data = &response.responses[0].partitions[0];
    let records = data.records.clone().unwrap_or_default();
    let count = RecordBatches::new(&records)
        .map(|batch| {
            batch
                .expect("every fetched batch passes its CRC check")
                .1
                .record_count() as usize
        })
        .sum();
    (data.error_code, data.high_watermark, count)
}
