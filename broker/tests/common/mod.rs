//! Helpers shared by the storage tests: batches with known contents, logs
//! with small segments, and reading a whole log back.

#![allow(dead_code)]

use relay_broker::log::{FaultInjector, FsyncPolicy, LogConfig, PartitionLog};
use relay_proto::batch::BatchHeader;
use relay_proto::records::RecordIter;
use relay_proto::{BatchBuilder, RecordBatches, RecordSpec};
use std::path::Path;

pub const T0_MS: i64 = 1_767_225_600_000;

/// A batch of `records` records whose values name the batch and record,
/// timestamps `first_timestamp_ms + 10 * i`.
pub fn batch(tag: u64, records: usize, first_timestamp_ms: i64) -> Vec<u8> {
    let mut builder = BatchBuilder::new(first_timestamp_ms);
    for index in 0..records {
        builder.push(RecordSpec {
            value: Some(format!("batch {tag} record {index} {}", "x".repeat((tag % 7) as usize * 10)).into_bytes()),
            timestamp_delta_ms: 10 * index as i64,
            ..RecordSpec::default()
        });
    }
    builder.build()
}

pub fn idempotent_batch(producer_id: i64, epoch: i16, sequence: i32, records: usize) -> Vec<u8> {
    let mut builder = BatchBuilder::new(T0_MS).producer(producer_id, epoch, sequence);
    for index in 0..records {
        builder.push(RecordSpec::value(
            format!("p{producer_id} s{} ", sequence + index as i32).into_bytes(),
        ));
    }
    builder.build()
}

pub fn small_config(fsync: FsyncPolicy) -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        index_bytes_max: 4096,
        retention_ms: -1,
        fsync,
        ..LogConfig::default()
    }
}

pub fn open(dir: &Path, config: &LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config.clone(), FaultInjector::default())
        .expect("open log")
        .0
}

/// Every record value from `from` to the high watermark, read in chunks of
/// `max_bytes`, with its offset.
pub fn read_all(log: &PartitionLog, from: i64, max_bytes: usize) -> Vec<(i64, Vec<u8>)> {
    let mut offset = from;
    let mut out = Vec::new();
    loop {
        let result = log.read(offset, max_bytes).expect("read");
        if result.bytes.is_empty() {
            assert_eq!(offset, result.high_watermark, "empty read only at the end");
            return out;
        }
        for item in RecordBatches::new(&result.bytes) {
            let (_, header, whole) = item.expect("read returns whole valid batches");
            for record in RecordIter::of_uncompressed_batch(whole, header.record_count() as usize) {
                let record = record.expect("record");
                let record_offset = header.base_offset() + i64::from(record.offset_delta);
                if record_offset >= offset {
                    out.push((record_offset, record.value.unwrap().to_vec()));
                }
            }
            offset = header.last_offset() + 1;
        }
    }
}

/// The values a batch made by [`batch`] holds.
pub fn values_of(batch_bytes: &[u8]) -> Vec<Vec<u8>> {
    let header = BatchHeader::parse_whole(batch_bytes).unwrap().unwrap();
    RecordIter::of_uncompressed_batch(batch_bytes, header.record_count() as usize)
        .map(|r| r.unwrap().value.unwrap().to_vec())
        .collect()
}

/// Copies a partition directory (flat) to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Segment log files of a partition directory, oldest first.
pub fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}
