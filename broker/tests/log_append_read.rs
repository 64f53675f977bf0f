//! Append, read, time lookup, rolling and retention of a partition log,
//! through its public API on a real directory.

mod common;

use common::*;
use proptest::prelude::*;
use relay_broker::log::{FsyncPolicy, LogConfig, LogError, RetentionFloor};
use relay_proto::BatchError;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn appended_records_read_back_in_order(
        sizes in proptest::collection::vec(1usize..12, 1..60),
        max_bytes in 1usize..3000,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), &small_config(FsyncPolicy::Never));
        let mut expected = Vec::new();
        let mut next = 0i64;
        for (tag, &records) in sizes.iter().enumerate() {
            let mut bytes = batch(tag as u64, records, T0_MS + tag as i64);
            let info = log.append(&mut bytes).unwrap();
            prop_assert_eq!(info.base_offset, next, "offsets are contiguous and strictly increasing");
            prop_assert_eq!(info.last_offset, next + records as i64 - 1);
            next += records as i64;
            expected.extend(values_of(&bytes).into_iter().enumerate().map(|(i, v)| (info.base_offset + i as i64, v)));
        }
        prop_assert_eq!(log.end_offset(), next);
        prop_assert_eq!(read_all(&log, 0, max_bytes), expected.clone());
        // Reading from any offset starts with the batch that holds it.
        for from in [0, next / 3, next / 2, next - 1] {
            let tail = read_all(&log, from, max_bytes);
            prop_assert_eq!(&tail[..], &expected[from as usize..]);
        }
    }
}

#[test]
fn read_returns_first_batch_whole_even_when_larger_than_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &small_config(FsyncPolicy::Never));
    let mut first = batch(1, 10, T0_MS);
    let first_len = first.len();
    log.append(&mut first).unwrap();
    log.append(&mut batch(2, 10, T0_MS)).unwrap();
    let result = log.read(0, 1).unwrap();
    assert_eq!(result.bytes.len(), first_len);
    assert_eq!(result.high_watermark, 20);
    let both = log.read(5, 1 << 20).unwrap();
    assert!(both.bytes.len() > first_len, "reads span batches up to max_bytes");
}

#[test]
fn reading_outside_the_log_is_an_error_and_at_the_end_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &small_config(FsyncPolicy::Never));
    log.append(&mut batch(0, 3, T0_MS)).unwrap();
    assert!(log.read(3, 100).unwrap().bytes.is_empty());
    assert!(matches!(
        log.read(4, 100),
        Err(LogError::OffsetOutOfRange {
            offset: 4,
            high_watermark: 3,
            ..
        })
    ));
    assert!(matches!(log.read(-1, 100), Err(LogError::OffsetOutOfRange { .. })));
}

#[test]
fn crc_bad_batch_is_refused_at_append_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &small_config(FsyncPolicy::Never));
    log.append(&mut batch(0, 3, T0_MS)).unwrap();
    let mut bad = batch(1, 3, T0_MS);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    match log.append(&mut bad) {
        Err(LogError::InvalidBatch {
            position: 0,
            source: BatchError::CrcMismatch { .. },
        }) => {}
        other => panic!("expected a CRC error, got {other:?}"),
    }
    let mut old_magic = batch(2, 1, T0_MS);
    old_magic[16] = 1;
    assert!(matches!(
        log.append(&mut old_magic),
        Err(LogError::InvalidBatch {
            source: BatchError::UnsupportedMagic { magic: 1 },
            ..
        })
    ));
    let mut two = batch(3, 1, T0_MS);
    two.extend_from_slice(&[1, 2, 3]);
    assert!(matches!(
        log.append(&mut two),
        Err(LogError::InvalidBatch {
            source: BatchError::TrailingBytes { .. },
            ..
        })
    ));
    assert!(matches!(log.append(&mut []), Err(LogError::EmptyRecordSet)));
    assert_eq!(log.end_offset(), 3);
    assert_eq!(read_all(&log, 0, 4096).len(), 3);
}

#[test]
fn record_set_of_several_batches_gets_consecutive_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &small_config(FsyncPolicy::Never));
    let mut set = batch(0, 2, T0_MS);
    set.extend_from_slice(&batch(1, 3, T0_MS));
    let info = log.append(&mut set).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 4));
    let offsets: Vec<i64> = read_all(&log, 0, 4096).into_iter().map(|(o, _)| o).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
}

#[test]
fn offset_for_time_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &small_config(FsyncPolicy::Never));
    // 40 batches of 5 records; batch b record r has timestamp T0 + 1000 b + 10 r.
    for b in 0..40 {
        log.append(&mut batch(b, 5, T0_MS + 1000 * b as i64)).unwrap();
    }
    assert!(log.segment_count() > 3, "the lookup must cross segments");
    assert_eq!(log.offset_for_time(0).unwrap().map(|(offset, _)| offset), Some(0));
    assert_eq!(log.offset_for_time(T0_MS).unwrap().map(|(offset, _)| offset), Some(0));
    assert_eq!(
        log.offset_for_time(T0_MS + 1).unwrap().map(|(offset, _)| offset),
        Some(1)
    );
    assert_eq!(
        log.offset_for_time(T0_MS + 17_020).unwrap().map(|(offset, _)| offset),
        Some(17 * 5 + 2)
    );
    assert_eq!(
        log.offset_for_time(T0_MS + 17_021).unwrap().map(|(offset, _)| offset),
        Some(17 * 5 + 3)
    );
    assert_eq!(
        log.offset_for_time(T0_MS + 17_041).unwrap().map(|(offset, _)| offset),
        Some(18 * 5)
    );
    assert_eq!(
        log.offset_for_time(T0_MS + 39_040).unwrap().map(|(offset, _)| offset),
        Some(199)
    );
    assert_eq!(
        log.offset_for_time(T0_MS + 39_041).unwrap().map(|(offset, _)| offset),
        None
    );
}

#[test]
fn segments_roll_at_segment_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(FsyncPolicy::Never);
    let log = open(dir.path(), &config);
    for b in 0..30 {
        log.append(&mut batch(b, 4, T0_MS)).unwrap();
    }
    let files = segment_files(dir.path());
    assert_eq!(files.len(), log.segment_count());
    assert!(files.len() >= 4);
    for file in &files {
        assert!(std::fs::metadata(file).unwrap().len() <= config.segment_bytes);
    }
    // Sealed segments' indexes are trimmed to their entries.
    let sealed_index = files[0].with_extension("index");
    assert_eq!(std::fs::metadata(&sealed_index).unwrap().len() % 8, 0);
    assert!(std::fs::metadata(&sealed_index).unwrap().len() < u64::from(config.index_bytes_max));
    assert_eq!(read_all(&log, 0, 512).len(), 120);
}

#[test]
fn segments_roll_at_segment_ms() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: 1,
        ..small_config(FsyncPolicy::Never)
    };
    let log = open(dir.path(), &config);
    log.append(&mut batch(0, 1, T0_MS)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    log.append(&mut batch(1, 1, T0_MS)).unwrap();
    assert_eq!(log.segment_count(), 2);
}

#[test]
fn retention_by_bytes_deletes_oldest_sealed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: 4096,
        ..small_config(FsyncPolicy::Never)
    };
    let log = open(dir.path(), &config);
    for b in 0..40 {
        log.append(&mut batch(b, 4, T0_MS)).unwrap();
    }
    let before = log.size_bytes();
    let outcome = log.enforce_retention(T0_MS, RetentionFloor::Unprotected).unwrap();
    assert!(outcome.segments_deleted > 0);
    assert_eq!(log.size_bytes(), before - outcome.bytes_deleted);
    assert!(
        log.size_bytes() >= 4096 - 2048 && log.size_bytes() <= 4096 + 2048,
        "size {}",
        log.size_bytes()
    );
    let start = log.log_start_offset();
    assert!(start > 0);
    assert_eq!(segment_files(dir.path()).len(), log.segment_count());
    assert!(matches!(log.read(0, 100), Err(LogError::OffsetOutOfRange { .. })));
    let rest = read_all(&log, start, 4096);
    assert_eq!(rest.first().unwrap().0, start);
    assert_eq!(rest.last().unwrap().0, 159);
}

#[test]
fn retention_by_time_keeps_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 60_000,
        ..small_config(FsyncPolicy::Never)
    };
    let log = open(dir.path(), &config);
    for b in 0..20 {
        log.append(&mut batch(b, 4, T0_MS)).unwrap();
    }
    for b in 20..40 {
        log.append(&mut batch(b, 4, T0_MS + 3_600_000)).unwrap();
    }
    let segments = log.segment_count();
    // An hour later only the first half is past 60 s of retention.
    let outcome = log
        .enforce_retention(T0_MS + 3_600_000, RetentionFloor::Unprotected)
        .unwrap();
    assert!(outcome.segments_deleted > 0 && outcome.segments_deleted < segments);
    assert!(log.log_start_offset() <= 80, "segments with new records stay");
    // Far in the future everything sealed goes, the active segment stays.
    log.enforce_retention(T0_MS + 10 * 3_600_000, RetentionFloor::Unprotected)
        .unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.end_offset(), 160);
    log.append(&mut batch(99, 1, T0_MS)).unwrap();
    assert_eq!(log.end_offset(), 161);
}
