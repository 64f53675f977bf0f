//! Format compatibility: a partition directory written by Relay's first
//! storage format (`proto-spec/vectors/partition-v1/`) must open, read back
//! exactly, and accept appends, in every later version.
//!
//! Regenerate (only for a deliberate new format, kept beside the old one) with
//! `RELAY_REGENERATE_VECTORS=1 cargo test -p relay-broker --test log_format_compat`.

mod common;

use common::*;
use relay_broker::log::{FaultInjector, FsyncPolicy, LogConfig, PartitionLog};
use std::path::PathBuf;

fn vector_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto-spec/vectors/partition-v1")
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        index_bytes_max: 1200,
        ..small_config(FsyncPolicy::Always)
    }
}

/// 12 batches of 3 records; batch b has timestamps T0 + 1000 b + 10 r.
fn expected_values() -> Vec<(i64, Vec<u8>)> {
    (0..12u64)
        .flat_map(|b| values_of(&batch(b, 3, T0_MS + 1000 * b as i64)))
        .enumerate()
        .map(|(offset, value)| (offset as i64, value))
        .collect()
}

#[test]
fn partition_written_by_format_v1_reads_back() {
    if std::env::var_os("RELAY_REGENERATE_VECTORS").is_some() {
        let _ = std::fs::remove_dir_all(vector_dir());
        let (log, _) = PartitionLog::open(&vector_dir(), config(), FaultInjector::default()).unwrap();
        for b in 0..12u64 {
            log.append(&mut batch(b, 3, T0_MS + 1000 * b as i64)).unwrap();
        }
        log.close().unwrap();
    }
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&vector_dir(), copy.path());
    let (log, summary) = PartitionLog::open(copy.path(), config(), FaultInjector::default()).unwrap();
    assert!(summary.clean_shutdown);
    assert_eq!(summary.segments_rescanned, 0, "a clean v1 directory needs no rescan");
    assert!(summary.segments >= 3);
    assert_eq!(read_all(&log, 0, 300), expected_values());
    assert_eq!(
        log.offset_for_time(T0_MS + 7_015).unwrap().map(|(offset, _)| offset),
        Some(7 * 3 + 2)
    );
    assert_eq!(log.append(&mut batch(12, 1, T0_MS)).unwrap().base_offset, 36);
}
