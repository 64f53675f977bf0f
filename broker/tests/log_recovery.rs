//! Crash consistency of the partition log: torn tails, garbage, flipped
//! bytes, corrupt indexes, clean and unclean reopen, poisoning after a failed
//! fsync, and idempotent-producer state across restarts.

mod common;

use common::*;
use relay_broker::log::{FaultInjector, FsyncPolicy, LogConfig, LogError, PartitionLog};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// Writes `batches` batches of 3 records and drops the log without closing it,
/// as a crash would (the process dies; the page cache keeps what was written).
fn crashed_log(dir: &Path, config: &LogConfig, batches: u64) -> Vec<(i64, Vec<u8>)> {
    let log = open(dir, config);
    for b in 0..batches {
        log.append(&mut batch(b, 3, T0_MS + b as i64)).unwrap();
    }
    let all = read_all(&log, 0, 1 << 20);
    drop(log);
    all
}

fn last_segment(dir: &Path) -> std::path::PathBuf {
    segment_files(dir).pop().unwrap()
}

#[test]
fn recovery_truncates_torn_tail_at_every_byte_of_the_last_batch() {
    let source = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1 << 20,
        ..small_config(FsyncPolicy::Never)
    };
    let all = crashed_log(source.path(), &config, 20);
    let segment = last_segment(source.path());
    let full_length = std::fs::metadata(&segment).unwrap().len();
    let last_batch_length = batch(19, 3, T0_MS + 19).len() as u64;
    let last_batch_start = full_length - last_batch_length;
    for cut in last_batch_start..full_length {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(source.path(), copy.path());
        let file = OpenOptions::new()
            .write(true)
            .open(copy.path().join(segment.file_name().unwrap()))
            .unwrap();
        file.set_len(cut).unwrap();
        drop(file);
        let (log, summary) = PartitionLog::open(copy.path(), config.clone(), FaultInjector::default()).unwrap();
        assert!(!summary.clean_shutdown);
        assert_eq!(summary.bytes_truncated, cut - last_batch_start, "cut at {cut}");
        assert_eq!(log.end_offset(), 57, "cut at {cut}");
        assert_eq!(read_all(&log, 0, 4096), all[..57].to_vec(), "cut at {cut}");
        // The log goes on from the valid prefix.
        let info = log.append(&mut batch(100, 1, T0_MS)).unwrap();
        assert_eq!(info.base_offset, 57);
    }
}

#[test]
fn recovery_truncates_appended_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(FsyncPolicy::Never);
    let all = crashed_log(dir.path(), &config, 30);
    let mut file = OpenOptions::new().append(true).open(last_segment(dir.path())).unwrap();
    file.write_all(&[0xde, 0xad, 0xbe, 0xef].repeat(50)).unwrap();
    drop(file);
    let (log, summary) = PartitionLog::open(dir.path(), config.clone(), FaultInjector::default()).unwrap();
    assert_eq!(summary.bytes_truncated, 200);
    assert_eq!(read_all(&log, 0, 4096), all);
    assert_eq!(log.append(&mut batch(1, 1, T0_MS)).unwrap().base_offset, 90);
}

#[test]
fn flipped_byte_in_last_batch_costs_only_that_batch_and_never_reuses_its_offsets() {
    let source = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1 << 20,
        ..small_config(FsyncPolicy::Never)
    };
    let all = crashed_log(source.path(), &config, 10);
    let segment = last_segment(source.path());
    let full_length = std::fs::metadata(&segment).unwrap().len();
    let last_batch_start = full_length - batch(9, 3, T0_MS + 9).len() as u64;
    // Every byte of the last batch except the partition leader epoch (12..16),
    // which Kafka leaves outside the CRC and which no check can catch.
    for at in (last_batch_start..full_length).filter(|&at| !(12..16).contains(&(at - last_batch_start))) {
        let field = at - last_batch_start;
        let copy = tempfile::tempdir().unwrap();
        copy_dir(source.path(), copy.path());
        let path = copy.path().join(segment.file_name().unwrap());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[at as usize] ^= 0x10;
        std::fs::write(&path, bytes).unwrap();
        let log = open(copy.path(), &config);
        if (8..12).contains(&field) {
            // A changed length looks like a torn append: cut, as never acknowledged.
            assert_eq!(log.end_offset(), 27, "flip at byte {field}");
        } else {
            // A whole-length batch that fails its checks is set aside; its
            // offsets are not handed out again.
            assert!(log.end_offset() >= 30, "flip at byte {field}: end {}", log.end_offset());
        }
        let next = log.append(&mut batch(50, 1, T0_MS)).unwrap();
        assert!(next.base_offset >= log.end_offset() - 1);
        let kept = read_all(&log, 0, 4096);
        assert_eq!(kept[..27], all[..27], "flip at byte {field}");
        assert_eq!(kept.last().unwrap().0, next.base_offset);
    }
}

#[test]
fn clean_close_reopens_without_rescanning() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(FsyncPolicy::Always);
    let log = open(dir.path(), &config);
    for b in 0..30 {
        log.append(&mut batch(b, 3, T0_MS + 1000 * b as i64)).unwrap();
    }
    let all = read_all(&log, 0, 4096);
    log.close().unwrap();
    assert!(matches!(
        log.append(&mut batch(0, 1, T0_MS)),
        Err(LogError::Closed { .. })
    ));
    drop(log);
    let (log, summary) = PartitionLog::open(dir.path(), config.clone(), FaultInjector::default()).unwrap();
    assert!(summary.clean_shutdown);
    assert_eq!(summary.segments_rescanned, 0);
    assert_eq!(read_all(&log, 0, 4096), all);
    assert_eq!(
        log.offset_for_time(T0_MS + 29_000).unwrap().map(|(offset, _)| offset),
        Some(87)
    );
    assert_eq!(log.append(&mut batch(99, 1, T0_MS)).unwrap().base_offset, 90);
    drop(log);
    // The marker was consumed: a crash now means a rescan.
    let (_, summary) = PartitionLog::open(dir.path(), config, FaultInjector::default()).unwrap();
    assert!(!summary.clean_shutdown);
    assert!(summary.segments_rescanned >= 1);
}

#[test]
fn corrupt_index_is_rebuilt_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1 << 20,
        index_interval_bytes: 64,
        ..small_config(FsyncPolicy::Never)
    };
    let log = open(dir.path(), &config);
    for b in 0..40 {
        log.append(&mut batch(b, 3, T0_MS)).unwrap();
    }
    let all = read_all(&log, 0, 1 << 20);
    log.close().unwrap();
    drop(log);
    let index = last_segment(dir.path()).with_extension("index");
    let entries = std::fs::read(&index).unwrap();
    assert!(entries.len() >= 8 * 10, "the index has entries");

    // An index whose entries still grow but point into the middle of batches
    // passes every check that needs no log: lookups must catch it.
    let mut shifted = entries.clone();
    for entry in shifted.chunks_mut(8) {
        let position = u32::from_be_bytes(entry[4..8].try_into().unwrap());
        entry[4..8].copy_from_slice(&(position + 5).to_be_bytes());
    }
    std::fs::write(&index, &shifted).unwrap();
    let log = open(dir.path(), &config);
    for from in [0, 31, 64, 100, 119] {
        assert_eq!(
            read_all(&log, from, 1 << 20),
            all[from as usize..].to_vec(),
            "from {from}"
        );
    }
    log.close().unwrap();
    drop(log);

    // Garbage that breaks the ordering is caught on open.
    std::fs::write(&index, vec![0xffu8; entries.len()]).unwrap();
    let (log, summary) = PartitionLog::open(dir.path(), config.clone(), FaultInjector::default()).unwrap();
    assert!(summary.clean_shutdown);
    assert_eq!(summary.segments_rescanned, 1);
    assert_eq!(read_all(&log, 0, 1 << 20), all);
    assert_eq!(read_all(&log, 77, 100), all[77..].to_vec());
}

#[test]
fn failed_fsync_poisons_the_partition_until_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(FsyncPolicy::Always);
    let faults = FaultInjector::default();
    let (log, _) = PartitionLog::open(dir.path(), config.clone(), faults.clone()).unwrap();
    log.append(&mut batch(0, 3, T0_MS)).unwrap();
    faults.fail_next_fsyncs(1);
    assert!(matches!(
        log.append(&mut batch(1, 3, T0_MS)),
        Err(LogError::Poisoned { .. })
    ));
    assert!(log.is_poisoned());
    // Refused even though the disk would work now.
    assert!(matches!(
        log.append(&mut batch(2, 3, T0_MS)),
        Err(LogError::Poisoned { .. })
    ));
    // Reads go on, and never show the unacknowledged batch.
    assert_eq!(log.high_watermark(), 3);
    assert_eq!(read_all(&log, 0, 4096).len(), 3);
    log.close().unwrap();
    drop(log);
    let (log, summary) = PartitionLog::open(dir.path(), config, FaultInjector::default()).unwrap();
    assert!(
        !summary.clean_shutdown,
        "a poisoned log closes without the clean marker"
    );
    assert!(!log.is_poisoned());
    let info = log.append(&mut batch(3, 1, T0_MS)).unwrap();
    assert!(
        info.base_offset == 3 || info.base_offset == 6,
        "the unacked batch may or may not have survived"
    );
}

#[test]
fn failed_write_is_reported_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::default();
    let (log, _) = PartitionLog::open(dir.path(), small_config(FsyncPolicy::Always), faults.clone()).unwrap();
    log.append(&mut batch(0, 3, T0_MS)).unwrap();
    faults.fail_next_writes(1);
    assert!(matches!(log.append(&mut batch(1, 3, T0_MS)), Err(LogError::Io { .. })));
    assert!(!log.is_poisoned());
    assert_eq!(log.append(&mut batch(2, 3, T0_MS)).unwrap().base_offset, 3);
    assert_eq!(read_all(&log, 0, 4096).len(), 6);
}

#[test]
fn retried_batch_gets_original_offset_even_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(FsyncPolicy::Always);
    let log = open(dir.path(), &config);
    log.append(&mut batch(0, 2, T0_MS)).unwrap();
    let first = log.append(&mut idempotent_batch(77, 0, 0, 3)).unwrap();
    assert_eq!((first.base_offset, first.duplicate), (2, false));
    let second = log.append(&mut idempotent_batch(77, 0, 3, 2)).unwrap();
    assert_eq!(second.base_offset, 5);
    let retry = log.append(&mut idempotent_batch(77, 0, 0, 3)).unwrap();
    assert_eq!((retry.base_offset, retry.last_offset, retry.duplicate), (2, 4, true));
    assert_eq!(log.end_offset(), 7);
    assert!(matches!(
        log.append(&mut idempotent_batch(77, 0, 9, 1)),
        Err(LogError::OutOfOrderSequence { expected: 5, .. })
    ));
    drop(log);

    let log = open(dir.path(), &config);
    let retry = log.append(&mut idempotent_batch(77, 0, 3, 2)).unwrap();
    assert_eq!((retry.base_offset, retry.duplicate), (5, true));
    assert_eq!(log.append(&mut idempotent_batch(77, 0, 5, 1)).unwrap().base_offset, 7);
    assert!(matches!(
        log.append(&mut idempotent_batch(77, -1, 6, 1)),
        Err(LogError::ProducerFenced { .. }) | Err(LogError::OutOfOrderSequence { .. })
    ));
    assert!(matches!(
        log.append(&mut idempotent_batch(78, 0, 4, 1)),
        Err(LogError::UnknownProducerId { .. })
    ));
    let mut two = idempotent_batch(79, 0, 0, 1);
    two.extend_from_slice(&idempotent_batch(79, 0, 1, 1));
    assert!(matches!(
        log.append(&mut two),
        Err(LogError::MultipleIdempotentBatches { batch_count: 2 })
    ));
}

#[test]
fn concurrent_appenders_share_fsyncs_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 64 * 1024,
        ..small_config(FsyncPolicy::Always)
    };
    let log = open(dir.path(), &config);
    let mut offsets: Vec<i64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|writer| {
                let log = &log;
                scope.spawn(move || {
                    (0..50)
                        .map(|b| {
                            let info = log.append(&mut batch(writer * 1000 + b, 5, T0_MS)).unwrap();
                            // An acknowledged append is visible: it was fsynced.
                            assert!(log.high_watermark() > info.last_offset);
                            info.base_offset
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    offsets.sort();
    assert_eq!(offsets, (0..200).map(|b| b * 5).collect::<Vec<_>>());
    let all = read_all(&log, 0, 1 << 20);
    assert_eq!(all.len(), 1000);
    assert!(all.iter().enumerate().all(|(i, (offset, _))| *offset == i as i64));
}
