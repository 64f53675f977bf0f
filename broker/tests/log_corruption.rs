//! Corruption in the log costs only the corrupt bytes: a batch that fails its
//! CRC, found at recovery or at read time, in a sealed or the active segment,
//! is set aside whole in a quarantine file, its offsets become a gap that
//! reads go past, and every other batch and segment is still served; a
//! zero-filled tail is cut without touching later segments; and no offset is
//! ever handed out twice.

mod common;

use common::*;
use relay_broker::log::{FaultInjector, FsyncPolicy, LogConfig, PartitionLog};
use relay_proto::batch::BatchHeader;
use relay_proto::RecordBatches;
use std::fs::OpenOptions;
use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Records of every batch from `from` on, following offset jumps over gaps,
/// until a read comes back empty.
fn records_from(log: &PartitionLog, from: i64) -> Vec<(i64, Vec<u8>)> {
    let mut offset = from;
    let mut out = Vec::new();
    loop {
        let result = log.read(offset, 4096).expect("read");
        if result.bytes.is_empty() {
            return out;
        }
        for item in RecordBatches::new(&result.bytes) {
            let (_, header, whole) = item.expect("reads return whole valid batches");
            let values = values_of(whole);
            for (delta, value) in values.into_iter().enumerate() {
                let record_offset = header.base_offset() + delta as i64;
                if record_offset >= offset {
                    out.push((record_offset, value));
                }
            }
            offset = header.last_offset() + 1;
        }
    }
}

/// `batches` batches of 3 records each, in segments of a few batches; the
/// log is dropped without a clean close, as a kill -9 leaves it.
fn written_log(dir: &Path, config: &LogConfig, batches: u64) -> Vec<(i64, Vec<u8>)> {
    let log = open(dir, config);
    for b in 0..batches {
        log.append(&mut batch(b, 3, T0_MS + b as i64)).unwrap();
    }
    let all = records_from(&log, 0);
    assert_eq!(all.len() as u64, 3 * batches);
    all
}

/// Start positions and offsets of every batch in a segment file.
fn batches_in(segment: &Path) -> Vec<(u64, Range<i64>)> {
    let bytes = std::fs::read(segment).unwrap();
    RecordBatches::new(&bytes)
        .map(|item| {
            let (position, header, _) = item.unwrap();
            (position as u64, header.base_offset()..header.last_offset() + 1)
        })
        .collect()
}

/// Flips one byte in the records of the batch at `position` (inside its CRC).
fn flip_inside_batch(segment: &Path, position: u64) {
    let file = OpenOptions::new().read(true).write(true).open(segment).unwrap();
    let at = position + 70;
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x5a], at).unwrap();
}

fn quarantine_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "quarantine"))
        .collect();
    files.sort();
    files
}

fn quarantine_name(offsets: &Range<i64>) -> String {
    format!("{:020}-{:020}.quarantine", offsets.start, offsets.end)
}

fn without(all: &[(i64, Vec<u8>)], gap: &Range<i64>) -> Vec<(i64, Vec<u8>)> {
    all.iter()
        .filter(|(offset, _)| !gap.contains(offset))
        .cloned()
        .collect()
}

fn config() -> LogConfig {
    small_config(FsyncPolicy::Always)
}

/// [`config`] with segments large enough that every batch of a test stays in
/// the active one.
fn one_segment_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        ..config()
    }
}

/// A log of ten 3-record batches, all in its active segment: the log, its
/// records and that segment's file.
fn active_log_of_ten_batches(dir: &Path) -> (PartitionLog, Vec<(i64, Vec<u8>)>, PathBuf) {
    let log = open(dir, &one_segment_config());
    for b in 0..10 {
        log.append(&mut batch(b, 3, T0_MS + b as i64)).unwrap();
    }
    let all = records_from(&log, 0);
    let segment = segment_files(dir).pop().unwrap();
    (log, all, segment)
}

#[test]
fn corrupt_batch_in_sealed_segment_costs_only_itself() {
    for rescanned in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let all = written_log(dir.path(), &config(), 40);
        let segments = segment_files(dir.path());
        assert!(segments.len() >= 4);
        let (position, gap) = batches_in(&segments[1])[1].clone();
        let original = std::fs::read(&segments[1]).unwrap();
        let total = BatchHeader::parse(&original[position as usize..])
            .unwrap()
            .unwrap()
            .total_bytes();
        flip_inside_batch(&segments[1], position);
        if rescanned {
            // Without a recovery point every segment is rescanned on open.
            std::fs::remove_file(dir.path().join("recovery-point")).unwrap();
        }
        let (log, summary) = PartitionLog::open(dir.path(), config(), FaultInjector::default()).unwrap();
        assert_eq!(summary.batches_set_aside, usize::from(rescanned));
        assert_eq!(records_from(&log, 0), without(&all, &gap), "rescanned: {rescanned}");
        assert_eq!(log.corrupt_batches(), 1);
        assert_eq!(segment_files(dir.path()).len(), segments.len(), "no segment deleted");
        // The bytes are set aside whole, under the offsets they held.
        let quarantined = quarantine_files(dir.path());
        assert_eq!(quarantined.len(), 1);
        assert!(quarantined[0].ends_with(quarantine_name(&gap)));
        let mut expected = original[position as usize..position as usize + total].to_vec();
        expected[70] ^= 0x5a;
        assert_eq!(std::fs::read(&quarantined[0]).unwrap(), expected);
        // A read inside the gap answers with the next batch, whose base is higher.
        let next = log.read(gap.start + 1, 1).unwrap();
        let header = BatchHeader::parse(&next.bytes).unwrap().unwrap();
        assert_eq!(header.base_offset(), gap.end);
        assert_eq!(log.append(&mut batch(99, 1, T0_MS)).unwrap().base_offset, 120);
    }
}

#[test]
fn corrupt_batch_found_at_read_time_is_quarantined_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &config());
    for b in 0..40 {
        log.append(&mut batch(b, 3, T0_MS + b as i64)).unwrap();
    }
    let all = records_from(&log, 0);
    let segments = segment_files(dir.path());
    let (position, gap) = batches_in(&segments[2])[0].clone();
    // Bit rot under a running broker: the open file sees it on the next read.
    flip_inside_batch(&segments[2], position);
    for _ in 0..3 {
        assert_eq!(records_from(&log, 0), without(&all, &gap));
        assert_eq!(log.corrupt_batches(), 1, "set aside once, not once per read");
        assert_eq!(quarantine_files(dir.path()).len(), 1);
    }
    // Reads from inside the gap and at its start go past it.
    assert_eq!(records_from(&log, gap.start), without(&all[gap.start as usize..], &gap));
    // The log goes on, and after a crash everything kept is still there.
    assert_eq!(log.append(&mut batch(40, 3, T0_MS)).unwrap().base_offset, 120);
    drop(log);
    let log = open(dir.path(), &config());
    let kept = records_from(&log, 0);
    assert_eq!(kept.len(), all.len());
    assert_eq!(kept[..kept.len() - 3], without(&all, &gap)[..]);
    assert_eq!(log.end_offset(), 123);
}

#[test]
fn corrupt_batch_in_active_segment_found_at_read_time_keeps_later_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (log, all, segment) = active_log_of_ten_batches(dir.path());
    let (position, gap) = batches_in(&segment)[4].clone();
    flip_inside_batch(&segment, position);
    assert_eq!(records_from(&log, 0), without(&all, &gap));
    assert_eq!(log.corrupt_batches(), 1);
    // Appends after the rewrite land in the rewritten file, durable and visible.
    assert_eq!(log.append(&mut batch(10, 3, T0_MS)).unwrap().base_offset, 30);
    assert_eq!(log.high_watermark(), 33);
    let expected_after = [without(&all, &gap), records_from(&log, 30)].concat();
    assert_eq!(records_from(&log, 0), expected_after);
    drop(log);
    let log = open(dir.path(), &one_segment_config());
    assert_eq!(records_from(&log, 0), expected_after);
    assert_eq!(log.end_offset(), 33);
}

#[test]
fn zero_tail_of_sealed_segment_keeps_later_segments() {
    for rescanned in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let all = written_log(dir.path(), &config(), 40);
        let segments = segment_files(dir.path());
        let mut first = OpenOptions::new().append(true).open(&segments[0]).unwrap();
        first.write_all(&[0u8; 4096]).unwrap();
        drop(first);
        if rescanned {
            std::fs::remove_file(dir.path().join("recovery-point")).unwrap();
        }
        let (log, summary) = PartitionLog::open(dir.path(), config(), FaultInjector::default()).unwrap();
        assert_eq!(summary.bytes_truncated, 4096, "rescanned: {rescanned}");
        assert_eq!(summary.batches_set_aside, 0);
        assert_eq!(segment_files(dir.path()), segments, "every later segment kept");
        assert_eq!(records_from(&log, 0), all);
        assert!(quarantine_files(dir.path()).is_empty(), "zeros are not a batch");
        assert_eq!(log.append(&mut batch(99, 1, T0_MS)).unwrap().base_offset, 120);
    }
}

#[test]
fn garbage_tail_of_sealed_segment_is_set_aside_and_later_segments_kept() {
    let dir = tempfile::tempdir().unwrap();
    let all = written_log(dir.path(), &config(), 40);
    let segments = segment_files(dir.path());
    let next_base = batches_in(&segments[1])[0].1.start;
    let mut first = OpenOptions::new().append(true).open(&segments[0]).unwrap();
    first.write_all(&[0xde, 0xad, 0xbe, 0xef].repeat(10)).unwrap();
    drop(first);
    let (log, summary) = PartitionLog::open(dir.path(), config(), FaultInjector::default()).unwrap();
    assert_eq!(summary.batches_set_aside, 1);
    assert_eq!(records_from(&log, 0), all);
    let quarantined = quarantine_files(dir.path());
    assert_eq!(quarantined.len(), 1);
    assert!(quarantined[0].ends_with(quarantine_name(&(next_base..next_base))));
    assert_eq!(std::fs::read(&quarantined[0]).unwrap().len(), 40);
}

#[test]
fn truncated_sealed_segment_costs_only_its_last_batch() {
    let dir = tempfile::tempdir().unwrap();
    let all = written_log(dir.path(), &config(), 40);
    let segments = segment_files(dir.path());
    std::fs::remove_file(dir.path().join("recovery-point")).unwrap();
    let gap = batches_in(&segments[1]).last().unwrap().1.clone();
    let length = std::fs::metadata(&segments[1]).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&segments[1])
        .unwrap()
        .set_len(length - 1)
        .unwrap();
    let (log, summary) = PartitionLog::open(dir.path(), config(), FaultInjector::default()).unwrap();
    assert_eq!(summary.batches_set_aside, 1);
    assert_eq!(segment_files(dir.path()), segments);
    assert_eq!(records_from(&log, 0), without(&all, &gap));
    assert_eq!(log.end_offset(), 120);
}

#[test]
fn offsets_never_handed_out_twice_after_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let config = one_segment_config();
    let all = written_log(dir.path(), &config, 10);
    let segment = segment_files(dir.path()).pop().unwrap();
    // The active segment's last batch, fsynced and acknowledged, rots.
    let (position, gap) = batches_in(&segment).pop().unwrap();
    assert_eq!(gap, 27..30);
    flip_inside_batch(&segment, position);
    for restart in 0..3 {
        let (log, _) = PartitionLog::open(dir.path(), config.clone(), FaultInjector::default()).unwrap();
        assert_eq!(log.end_offset(), 30 + restart, "restart {restart}");
        assert_eq!(quarantine_files(dir.path()).len(), 1);
        let info = log.append(&mut batch(100 + restart as u64, 1, T0_MS)).unwrap();
        assert_eq!(info.base_offset, 30 + restart, "the set-aside offsets are not reused");
        let kept = records_from(&log, 0);
        assert_eq!(kept[..27], all[..27]);
        assert_eq!(kept.len() as i64, 27 + restart + 1);
        // Dropped without a clean close: the next open rescans the active segment.
    }
}

#[test]
fn corrupt_only_batch_of_active_segment_leaves_earlier_segments_served() {
    let dir = tempfile::tempdir().unwrap();
    let all = written_log(dir.path(), &config(), 40);
    // Roll so the active segment holds exactly one batch, then rot it.
    let log = open(dir.path(), &config());
    let mut big = batch(1000, 40, T0_MS);
    let info = log.append(&mut big).unwrap();
    drop(log);
    let segment = segment_files(dir.path()).pop().unwrap();
    let batches = batches_in(&segment);
    assert_eq!(batches.len(), 1, "the big batch fills a segment of its own");
    flip_inside_batch(&segment, batches[0].0);
    let (log, summary) = PartitionLog::open(dir.path(), config(), FaultInjector::default()).unwrap();
    assert_eq!(summary.batches_set_aside, 1);
    assert_eq!(records_from(&log, 0), all);
    assert_eq!(log.end_offset(), info.last_offset + 1);
    // Inside the gap at the end nothing is readable yet: the reader is at the end.
    let inside = log.read(info.base_offset + 3, 4096).unwrap();
    assert!(inside.bytes.is_empty());
    assert_eq!(inside.high_watermark, info.base_offset + 3);
    let next = log.append(&mut batch(1001, 1, T0_MS)).unwrap();
    assert_eq!(next.base_offset, info.last_offset + 1);
    // A read inside the gap now answers with that new batch.
    let read = log.read(info.base_offset, 4096).unwrap();
    let header = BatchHeader::parse(&read.bytes).unwrap().unwrap();
    assert_eq!(header.base_offset(), next.base_offset);
}

#[test]
fn zeroed_last_batch_of_sealed_segment_is_set_aside_not_cut_silently() {
    for rescanned in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let all = written_log(dir.path(), &config(), 40);
        let segments = segment_files(dir.path());
        let (position, gap) = batches_in(&segments[1]).pop().unwrap();
        let length = std::fs::metadata(&segments[1]).unwrap().len();
        let file = OpenOptions::new().write(true).open(&segments[1]).unwrap();
        file.write_all_at(&vec![0u8; (length - position) as usize], position)
            .unwrap();
        drop(file);
        if rescanned {
            std::fs::remove_file(dir.path().join("recovery-point")).unwrap();
        }
        let (log, summary) = PartitionLog::open(dir.path(), config(), FaultInjector::default()).unwrap();
        assert_eq!(summary.batches_set_aside, 1, "rescanned: {rescanned}");
        assert_eq!(
            summary.bytes_truncated, 0,
            "zeros where offsets were are not a tail to cut"
        );
        assert_eq!(records_from(&log, 0), without(&all, &gap));
        let quarantined = quarantine_files(dir.path());
        assert_eq!(quarantined.len(), 1);
        assert!(quarantined[0].ends_with(quarantine_name(&gap)));
    }
}

#[test]
fn flipped_length_of_last_batch_in_running_active_segment_is_set_aside() {
    for flip in [0x01u8, 0x10, 0x80] {
        let dir = tempfile::tempdir().unwrap();
        let (log, all, segment) = active_log_of_ten_batches(dir.path());
        let (position, gap) = batches_in(&segment).pop().unwrap();
        let file = OpenOptions::new().read(true).write(true).open(&segment).unwrap();
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, position + 11).unwrap();
        file.write_all_at(&[byte[0] ^ flip], position + 11).unwrap();
        drop(file);
        // A running log's appends were whole: nothing is taken for a torn tail.
        assert_eq!(records_from(&log, 0), without(&all, &gap), "flip {flip:#x}");
        assert_eq!(log.corrupt_batches(), 1);
        assert!(quarantine_files(dir.path())[0].ends_with(quarantine_name(&gap)));
        assert_eq!(log.append(&mut batch(10, 1, T0_MS)).unwrap().base_offset, 30);
    }
}

#[test]
fn failed_reads_are_logged_at_most_once_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &config());
    assert_eq!(log.read_failure_to_log(), Some(0));
    for _ in 0..1000 {
        assert_eq!(log.read_failure_to_log(), None);
    }
}

#[test]
fn batch_with_unwritten_sectors_after_a_crash_is_a_torn_append_and_cut() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1 << 20,
        message_bytes_max: 1 << 20,
        ..small_config(FsyncPolicy::Never)
    };
    let all = written_log(dir.path(), &config, 10);
    let log = open(dir.path(), &config);
    // A large batch whose middle pages never reached the disk (zeros), as a
    // power cut during an unsynced append leaves it, and one batch after it.
    let big = log.append(&mut batch(7, 300, T0_MS)).unwrap();
    log.append(&mut batch(8, 3, T0_MS)).unwrap();
    drop(log);
    let segment = segment_files(dir.path()).pop().unwrap();
    let (position, offsets) = batches_in(&segment)[10].clone();
    assert_eq!(offsets, big.base_offset..big.last_offset + 1);
    let hole = position.div_ceil(4096) * 4096;
    let file = OpenOptions::new().write(true).open(&segment).unwrap();
    file.write_all_at(&[0u8; 4096], hole).unwrap();
    drop(file);
    let (log, summary) = PartitionLog::open(dir.path(), config, FaultInjector::default()).unwrap();
    assert_eq!(summary.batches_set_aside, 0);
    assert!(summary.bytes_truncated > 0);
    assert!(quarantine_files(dir.path()).is_empty());
    assert_eq!(records_from(&log, 0), all);
    assert_eq!(log.end_offset(), 30, "never acknowledged: its offsets are free again");
}

#[test]
fn unwritten_page_inside_the_unsynced_tail_cuts_from_there_without_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1 << 20,
        ..small_config(FsyncPolicy::Never)
    };
    let all = written_log(dir.path(), &config, 80);
    let segment = segment_files(dir.path()).pop().unwrap();
    let batches = batches_in(&segment);
    // Power lost with pages 4096..8192 unwritten and the pages after it written.
    let file = OpenOptions::new().write(true).open(&segment).unwrap();
    file.write_all_at(&[0u8; 4096], 4096).unwrap();
    drop(file);
    // The first batch that reaches into the hole is where the torn append starts.
    let sizes: Vec<u64> = batches.windows(2).map(|pair| pair[1].0 - pair[0].0).collect();
    let torn = batches
        .iter()
        .zip(sizes)
        .find(|((position, _), size)| position + size > 4096)
        .map(|((_, offsets), _)| offsets.start)
        .unwrap();
    let cut_at_offset = torn;
    let (log, summary) = PartitionLog::open(dir.path(), config, FaultInjector::default()).unwrap();
    assert_eq!(summary.batches_set_aside, 0);
    assert!(quarantine_files(dir.path()).is_empty(), "never acknowledged: no gap");
    assert_eq!(records_from(&log, 0), all[..cut_at_offset as usize].to_vec());
    assert_eq!(log.end_offset(), cut_at_offset);
}
