//! Golden files in `proto-spec/vectors/`: record batches made by the
//! `kafka-protocol` crate's encoder (the same codec real clients' bytes are
//! checked against). The test reads each file back and checks it byte for byte
//! against a fresh encoding, field by field through Relay's own header view,
//! and record by record through the crate's decoder.
//!
//! Regenerate after a deliberate format change with
//! `RELAY_REGENERATE_VECTORS=1 cargo test -p relay-proto --test vectors`.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KafkaCompression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use relay_proto::batch::BatchHeader;
use relay_proto::records::RecordIter;
use relay_proto::{BatchBuilder, Compression, RecordSpec};
use std::path::PathBuf;

const FIRST_TIMESTAMP_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

struct Vector {
    file: &'static str,
    compression: KafkaCompression,
    producer: Option<(i64, i16, i32)>,
    record_count: usize,
    /// Byte-exact re-encoding is only stable for codecs without tunable output.
    compare_reencoded: bool,
}

const VECTORS: &[Vector] = &[
    Vector {
        file: "batch_uncompressed.bin",
        compression: KafkaCompression::None,
        producer: None,
        record_count: 5,
        compare_reencoded: true,
    },
    Vector {
        file: "batch_idempotent.bin",
        compression: KafkaCompression::None,
        producer: Some((4242, 3, 17)),
        record_count: 3,
        compare_reencoded: true,
    },
    Vector {
        file: "batch_gzip.bin",
        compression: KafkaCompression::Gzip,
        producer: Some((7, 0, 0)),
        record_count: 50,
        compare_reencoded: false,
    },
    Vector {
        file: "batch_lz4.bin",
        compression: KafkaCompression::Lz4,
        producer: None,
        record_count: 50,
        compare_reencoded: false,
    },
    Vector {
        file: "batch_zstd.bin",
        compression: KafkaCompression::Zstd,
        producer: None,
        record_count: 50,
        compare_reencoded: false,
    },
];

fn vector_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors").join(file)
}

fn record(index: usize, producer: Option<(i64, i16, i32)>) -> Record {
    let (producer_id, producer_epoch, base_sequence) = producer.unwrap_or((-1, -1, -1));
    let mut headers = IndexMap::new();
    headers.insert(
        StrBytes::from_static_str("source"),
        Some(Bytes::from(format!("/var/log/app.jsonl:{}", index * 64))),
    );
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: index as i64,
        // The encoder splits records into batches where offset - sequence changes.
        sequence: base_sequence.wrapping_add(index as i32),
        timestamp: FIRST_TIMESTAMP_MS + (index as i64) * 10,
        key: index.is_multiple_of(2).then(|| Bytes::from(format!("player-{index}"))),
        value: Some(Bytes::from(format!("{{\"uuid\":\"{index:08}\",\"event\":\"login\"}}"))),
        headers,
    }
}

fn encode(vector: &Vector) -> Vec<u8> {
    let records: Vec<Record> = (0..vector.record_count).map(|i| record(i, vector.producer)).collect();
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: vector.compression,
    };
    RecordBatchEncoder::encode(&mut out, &records, &options).expect("encode");
    out.to_vec()
}

fn expected_compression(codec: KafkaCompression) -> Compression {
    match codec {
        KafkaCompression::None => Compression::None,
        KafkaCompression::Gzip => Compression::Gzip,
        KafkaCompression::Snappy => Compression::Snappy,
        KafkaCompression::Lz4 => Compression::Lz4,
        KafkaCompression::Zstd => Compression::Zstd,
    }
}

#[test]
fn golden_batches_read_back_exactly() {
    let regenerate = std::env::var_os("RELAY_REGENERATE_VECTORS").is_some();
    for vector in VECTORS {
        let path = vector_path(vector.file);
        if regenerate {
            std::fs::write(&path, encode(vector)).expect("write vector");
        }
        let stored = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if vector.compare_reencoded {
            assert_eq!(stored, encode(vector), "{} differs from a fresh encoding", vector.file);
        }

        let header = BatchHeader::parse_whole(&stored)
            .unwrap_or_else(|e| panic!("{}: {e}", vector.file))
            .expect("whole batch");
        assert_eq!(header.total_bytes(), stored.len(), "{}", vector.file);
        assert_eq!(header.base_offset(), 0);
        assert_eq!(header.record_count() as usize, vector.record_count);
        assert_eq!(header.last_offset_delta() as usize, vector.record_count - 1);
        assert_eq!(header.first_timestamp(), FIRST_TIMESTAMP_MS);
        assert_eq!(
            header.max_timestamp(),
            FIRST_TIMESTAMP_MS + 10 * (vector.record_count as i64 - 1)
        );
        assert_eq!(header.compression(), expected_compression(vector.compression));
        let (producer_id, producer_epoch, base_sequence) = vector.producer.unwrap_or((-1, -1, -1));
        assert_eq!(
            (header.producer_id(), header.producer_epoch(), header.base_sequence()),
            (producer_id, producer_epoch, base_sequence)
        );

        let mut buf = Bytes::from(stored.clone());
        let decoded = RecordBatchDecoder::decode(&mut buf).expect("crate decodes the vector");
        let values: Vec<_> = decoded.records.iter().map(|r| r.value.clone()).collect();
        let expected: Vec<_> = (0..vector.record_count)
            .map(|i| record(i, vector.producer).value)
            .collect();
        assert_eq!(values, expected, "{}", vector.file);
    }
}

/// Relay's own test builder must make the same bytes the crate's encoder makes,
/// so tests built on it exercise exactly what clients send.
#[test]
fn builder_matches_the_crate_encoder() {
    for vector in VECTORS.iter().filter(|v| v.compression == KafkaCompression::None) {
        let mut builder = match vector.producer {
            Some((id, epoch, sequence)) => BatchBuilder::new(FIRST_TIMESTAMP_MS).producer(id, epoch, sequence),
            None => BatchBuilder::new(FIRST_TIMESTAMP_MS),
        };
        for index in 0..vector.record_count {
            let record = record(index, vector.producer);
            builder.push(RecordSpec {
                key: record.key.map(|k| k.to_vec()),
                value: record.value.map(|v| v.to_vec()),
                headers: record
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.as_ref().map(|v| v.to_vec())))
                    .collect(),
                timestamp_delta_ms: record.timestamp - FIRST_TIMESTAMP_MS,
            });
        }
        let stored = std::fs::read(vector_path(vector.file)).expect("vector");
        assert_eq!(builder.build(), stored, "{}", vector.file);

        let header = BatchHeader::parse_whole(&stored).unwrap().unwrap();
        let views: Vec<_> = RecordIter::of_uncompressed_batch(&stored, header.record_count() as usize)
            .collect::<Result<_, _>>()
            .expect("records parse");
        assert_eq!(views.len(), vector.record_count);
        assert_eq!(
            views[1].value,
            Some(&b"{\"uuid\":\"00000001\",\"event\":\"login\"}"[..])
        );
    }
}
