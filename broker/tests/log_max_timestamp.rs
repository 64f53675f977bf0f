//! The first record with the largest timestamp (ListOffsets MAX_TIMESTAMP),
//! through the partition log's public API: timestamps out of order inside
//! batches and across segments, ties, compressed batches, and after a
//! reopen.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use relay_broker::log::FsyncPolicy;
use relay_proto::{BatchBuilder, RecordSpec};

/// An uncompressed batch whose records have the given timestamps.
fn batch_at(timestamps_ms: &[i64]) -> Vec<u8> {
    let mut builder = BatchBuilder::new(timestamps_ms[0]);
    for (index, timestamp_ms) in timestamps_ms.iter().enumerate() {
        builder.push(RecordSpec {
            value: Some(format!("record {index} at {timestamp_ms} {}", "x".repeat(40)).into_bytes()),
            timestamp_delta_ms: timestamp_ms - timestamps_ms[0],
            ..RecordSpec::default()
        });
    }
    builder.build()
}

/// A gzip batch whose records have the given timestamps.
fn gzip_batch_at(timestamps_ms: &[i64]) -> Vec<u8> {
    let records: Vec<Record> = timestamps_ms
        .iter()
        .enumerate()
        .map(|(index, timestamp_ms)| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: index as i64,
            sequence: -1,
            timestamp: *timestamp_ms,
            key: None,
            value: Some(Bytes::from(format!("compressed {index}"))),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buffer = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::Gzip,
    };
    RecordBatchEncoder::encode(&mut buffer, &records, &options).expect("encode gzip batch");
    buffer.to_vec()
}

#[test]
fn an_empty_log_has_no_max_timestamp_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &small_config(FsyncPolicy::Never));
    assert_eq!(log.offset_for_max_timestamp().unwrap(), None);
}

#[test]
fn max_timestamp_names_the_record_not_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &small_config(FsyncPolicy::Never));
    log.append(&mut batch_at(&[T0_MS, T0_MS + 5, T0_MS + 900, T0_MS + 7]))
        .unwrap();
    log.append(&mut batch_at(&[T0_MS + 100, T0_MS + 200])).unwrap();
    assert_eq!(log.offset_for_max_timestamp().unwrap(), Some((2, T0_MS + 900)));
}

#[test]
fn the_first_of_equal_largest_timestamps_wins_across_batches_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(FsyncPolicy::Never);
    let log = open(dir.path(), &config);
    // Offsets 0..=9: the peak at offsets 3 and 4 in one batch.
    log.append(&mut batch_at(&[
        T0_MS,
        T0_MS + 1,
        T0_MS + 2,
        T0_MS + 50_000,
        T0_MS + 50_000,
    ]))
    .unwrap();
    log.append(&mut batch_at(&[T0_MS + 3, T0_MS + 4, T0_MS + 5, T0_MS + 6, T0_MS + 7]))
        .unwrap();
    // Many later segments reach the same peak again, and others stay below it.
    for round in 0..30 {
        let peak = if round % 5 == 0 { 50_000 } else { 40_000 };
        log.append(&mut batch_at(&[T0_MS + 10, T0_MS + peak, T0_MS + 11]))
            .unwrap();
    }
    assert!(log.segment_count() > 3, "the lookup must cross segments");
    assert_eq!(log.offset_for_max_timestamp().unwrap(), Some((3, T0_MS + 50_000)));
    // A later, larger timestamp in the active segment wins.
    let before = log.end_offset();
    log.append(&mut batch_at(&[T0_MS + 1, T0_MS + 60_000])).unwrap();
    assert_eq!(
        log.offset_for_max_timestamp().unwrap(),
        Some((before + 1, T0_MS + 60_000))
    );
    drop(log);
    let reopened = open(dir.path(), &config);
    assert_eq!(
        reopened.offset_for_max_timestamp().unwrap(),
        Some((before + 1, T0_MS + 60_000)),
        "the answer survives a reopen, from the indexes"
    );
}

#[test]
fn max_timestamp_inside_a_compressed_batch_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &small_config(FsyncPolicy::Never));
    log.append(&mut batch_at(&[T0_MS, T0_MS + 1])).unwrap();
    log.append(&mut gzip_batch_at(&[T0_MS + 2, T0_MS + 700, T0_MS + 3, T0_MS + 700]))
        .unwrap();
    assert_eq!(log.offset_for_max_timestamp().unwrap(), Some((3, T0_MS + 700)));
}

#[test]
fn max_timestamp_sees_only_durable_records_under_fsync_always() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &small_config(FsyncPolicy::Always));
    log.append(&mut batch_at(&[T0_MS, T0_MS + 30])).unwrap();
    log.append(&mut batch_at(&[T0_MS + 10, T0_MS + 20])).unwrap();
    let waiting = log.append_unsynced(&mut batch_at(&[T0_MS + 5, T0_MS + 90])).unwrap();
    assert_eq!(
        log.offset_for_max_timestamp().unwrap(),
        Some((1, T0_MS + 30)),
        "a batch not yet fsynced is not visible"
    );
    log.make_durable(&waiting).unwrap();
    assert_eq!(log.offset_for_max_timestamp().unwrap(), Some((5, T0_MS + 90)));
}
