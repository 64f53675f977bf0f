//! The broker's wire protocol with exact bytes: idempotent retries, error
//! codes for bad batches, and malformed frames that close only their own
//! connection while other clients keep working.

mod support;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::io::Write;
use support::raw_client::{batch, create_topic, latest_offset, produce, RawConnection};
use support::BrokerProcess;

#[test]
fn retried_produce_returns_original_offset_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let mut connection = RawConnection::connect(&broker.address);
    create_topic(&mut connection, "retries", 1);
    let init: InitProducerIdResponse = connection.request(
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(init.error_code, 0);
    let producer = (init.producer_id.0, init.producer_epoch, 0);

    assert_eq!(produce(&mut connection, "retries", 0, batch(None, 2), 9), (0, 0));
    assert_eq!(
        produce(&mut connection, "retries", 0, batch(Some(producer), 3), 9),
        (0, 2)
    );
    assert_eq!(
        produce(
            &mut connection,
            "retries",
            0,
            batch(Some((producer.0, producer.1, 3)), 1),
            9
        ),
        (0, 5)
    );
    assert_eq!(latest_offset(&mut connection, "retries"), 6);
    // The retry of the first idempotent batch, as a client sends it after a lost response.
    assert_eq!(
        produce(&mut connection, "retries", 0, batch(Some(producer), 3), 9),
        (0, 2)
    );
    assert_eq!(
        latest_offset(&mut connection, "retries"),
        6,
        "a retried batch appends nothing"
    );
    // A gap in sequences is refused.
    let gap = produce(
        &mut connection,
        "retries",
        0,
        batch(Some((producer.0, producer.1, 7)), 1),
        9,
    );
    assert_eq!(gap.0, ResponseError::OutOfOrderSequenceNumber.code());
    assert_eq!(latest_offset(&mut connection, "retries"), 6);
}

#[test]
fn bad_batches_get_kafka_error_codes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "auto_create_topics = false");
    let mut connection = RawConnection::connect(&broker.address);
    create_topic(&mut connection, "codes", 2);
    let mut corrupt = batch(None, 3);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    assert_eq!(
        produce(&mut connection, "codes", 0, corrupt, 9).0,
        ResponseError::CorruptMessage.code()
    );
    let mut old_format = batch(None, 1);
    old_format[16] = 1;
    assert_eq!(
        produce(&mut connection, "codes", 0, old_format, 9).0,
        ResponseError::UnsupportedForMessageFormat.code()
    );
    assert_eq!(
        produce(&mut connection, "codes", 2, batch(None, 1), 9).0,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        produce(&mut connection, "nope", 0, batch(None, 1), 3).0,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(latest_offset(&mut connection, "codes"), 0);
    // Version 3, the oldest that carries record batch v2, works too.
    assert_eq!(produce(&mut connection, "codes", 1, batch(None, 4), 3), (0, 0));
}

#[test]
fn unsupported_api_versions_version_is_answered_in_v0() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let mut connection = RawConnection::connect(&broker.address);
    let response: ApiVersionsResponse = connection.request(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, 0);
    let produce = response
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Produce as i16)
        .unwrap();
    assert_eq!((produce.min_version, produce.max_version), (0, 13));
    assert_eq!(
        response.api_keys.len(),
        21,
        "19 APIs (DeleteGroups the last added) plus SaslHandshake and SaslAuthenticate"
    );
    // A future ApiVersions version: the header is v2, the answer comes in v0.
    connection.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let _: ApiVersionsResponse = connection.receive(ApiKey::ApiVersions, 3);
    let mut raw = RawConnection::connect(&broker.address);
    let header = RequestHeader::default()
        .with_request_api_key(18)
        .with_request_api_version(99)
        .with_correlation_id(1);
    let mut body = bytes::BytesMut::new();
    kafka_protocol::protocol::Encodable::encode(&header, &mut body, 2).unwrap();
    body.extend_from_slice(&[0, 0, 0]);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    raw.stream.write_all(&frame).unwrap();
    let mut answer = raw.read_frame().expect("an answer");
    let header = kafka_protocol::protocol::Decodable::decode(&mut answer, 0);
    let header: ResponseHeader = header.unwrap();
    assert_eq!(header.correlation_id, 1);
    let body: ApiVersionsResponse = kafka_protocol::protocol::Decodable::decode(&mut answer, 0).unwrap();
    assert_eq!(body.error_code, ResponseError::UnsupportedVersion.code());
    assert!(!body.api_keys.is_empty());
}

#[test]
fn malformed_frames_close_only_their_own_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let mut healthy = RawConnection::connect(&broker.address);
    create_topic(&mut healthy, "steady", 1);
    let bad_inputs: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"GET / HTTP/1.1\r\nHost: example\r\n\r\n".to_vec()),
        ("2 GiB length prefix", vec![0x7f, 0xff, 0xff, 0xff, 0, 1, 2, 3]),
        ("negative length prefix", vec![0xff, 0xff, 0xff, 0xfe]),
        (
            "unknown API key",
            vec![0, 0, 0, 12, 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0, 0],
        ),
        (
            "undecodable body",
            vec![0, 0, 0, 14, 0, 3, 0, 9, 0, 0, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0x7f],
        ),
    ];
    for (round, (what, bytes)) in bad_inputs.into_iter().enumerate() {
        let mut bad = RawConnection::connect(&broker.address);
        bad.stream.write_all(&bytes).unwrap();
        assert!(bad.is_closed_by_broker(), "{what}: the broker closes that connection");
        let (code, offset) = produce(&mut healthy, "steady", 0, batch(None, 1), 9);
        assert_eq!(
            (code, offset),
            (0, round as i64),
            "{what}: another client keeps working"
        );
    }
    // A frame cut short by the client: the broker drops it and goes on.
    let mut truncated = RawConnection::connect(&broker.address);
    truncated.stream.write_all(&[0, 0, 0, 100, 0, 18, 0, 0]).unwrap();
    truncated.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(truncated.is_closed_by_broker());
    assert_eq!(produce(&mut healthy, "steady", 0, batch(None, 1), 9), (0, 5));
    let log = broker.log();
    assert!(
        log.contains("closing connection"),
        "closures are logged with the peer:\n{log}"
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let mut connection = RawConnection::connect(&broker.address);
    create_topic(&mut connection, "pipelined", 1);
    let request = |n: usize| {
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("pipelined")))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(batch(None, n))))])])
    };
    // Send 20 requests before reading any answer; offsets prove the order.
    for n in 1..=20 {
        connection.send(ApiKey::Produce, 9, &request(n));
    }
    let mut expected_offset = 0;
    for n in 1..=20i64 {
        let mut frame = connection.read_frame().unwrap();
        let header: ResponseHeader = kafka_protocol::protocol::Decodable::decode(&mut frame, 1).unwrap();
        assert_eq!(header.correlation_id, 1 + n as i32, "responses come in request order");
        let response: ProduceResponse = kafka_protocol::protocol::Decodable::decode(&mut frame, 9).unwrap();
        assert_eq!(
            response.responses[0].partition_responses[0].base_offset,
            expected_offset
        );
        expected_offset += n;
    }
}
