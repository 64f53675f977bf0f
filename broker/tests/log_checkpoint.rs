//! The data directory's recovery checkpoint as the log sees it: a segment the
//! checkpoint verifies (unchanged since a clean close) is not rescanned even
//! after a crash; a segment written since is; a clean segment is trusted at
//! open but every batch is still CRC-checked when read.

mod common;

use common::*;
use relay_broker::log::clean_checkpoint::PartitionCheckpoint;
use relay_broker::log::{FaultInjector, FsyncPolicy, LogConfig, PartitionLog};
use relay_proto::RecordBatches;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        ..small_config(FsyncPolicy::Always)
    }
}

fn reopen(dir: &Path, checkpoint: &PartitionCheckpoint) -> (PartitionLog, relay_broker::log::LoadSummary) {
    PartitionLog::open_checkpointed(dir, config(), FaultInjector::default(), checkpoint).unwrap()
}

/// A log of 30 batches of 3 records, closed for the checkpoint: what it says
/// about the partition after a crash (the taken copy: not clean, verified).
fn closed_log(dir: &Path) -> (Vec<(i64, Vec<u8>)>, PartitionCheckpoint) {
    let log = open(dir, &config());
    for b in 0..30 {
        log.append(&mut batch(b, 3, T0_MS + b as i64)).unwrap();
    }
    let all = read_all(&log, 0, 4096);
    let verified = log.close_for_checkpoint().unwrap();
    assert!(verified.is_some(), "a clean close describes its active segment");
    assert_eq!(log.close_for_checkpoint().unwrap(), None, "closed once");
    (all, PartitionCheckpoint { clean: false, verified })
}

#[test]
fn a_verified_segment_is_not_rescanned_after_a_crash_and_a_written_one_is() {
    let dir = tempfile::tempdir().unwrap();
    let (all, crashed) = closed_log(dir.path());
    let clean = PartitionCheckpoint { clean: true, ..crashed };
    let (log, summary) = reopen(dir.path(), &clean);
    assert!(summary.clean_shutdown);
    assert_eq!(summary.segments_rescanned, 0);
    drop(log); // a crash, nothing written since the clean close

    let (log, summary) = reopen(dir.path(), &crashed);
    assert!(!summary.clean_shutdown);
    assert_eq!((summary.segments_rescanned, summary.segments_verified), (0, 1));
    assert_eq!(read_all(&log, 0, 4096), all);
    assert_eq!(log.append(&mut batch(99, 1, T0_MS)).unwrap().base_offset, 90);
    drop(log); // a crash after a write

    let (log, summary) = reopen(dir.path(), &crashed);
    assert_eq!((summary.segments_rescanned, summary.segments_verified), (1, 0));
    assert_eq!(log.end_offset(), 91);
    drop(log);
    // Without the checkpoint, a crash rescans the active segment.
    let (_, summary) = reopen(dir.path(), &PartitionCheckpoint::default());
    assert_eq!(summary.segments_rescanned, 1);
}

#[test]
fn a_clean_segment_is_trusted_at_open_but_reads_still_check_every_crc() {
    let dir = tempfile::tempdir().unwrap();
    let (all, crashed) = closed_log(dir.path());
    let segment = segment_files(dir.path()).pop().unwrap();
    // Bit rot after the clean stop, in the records of a batch in the middle.
    let bytes = std::fs::read(&segment).unwrap();
    let (position, _, _) = RecordBatches::new(&bytes).nth(15).unwrap().unwrap();
    let at = position as u64 + 70;
    let file = OpenOptions::new().read(true).write(true).open(&segment).unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x5a], at).unwrap();
    drop(file);

    let clean = PartitionCheckpoint { clean: true, ..crashed };
    let (log, summary) = reopen(dir.path(), &clean);
    assert_eq!(summary.segments_rescanned, 0, "clean: not rescanned at open");
    assert_eq!(log.corrupt_batches(), 0);
    let read = read_all(&log, 0, 4096);
    assert_eq!(log.corrupt_batches(), 1, "the read found the corrupt batch by its CRC");
    assert_eq!(read.len(), all.len() - 3, "and served every other record");
    drop(log);

    // The file changed since the checkpoint: after a crash it is rescanned.
    let (_, summary) = reopen(dir.path(), &crashed);
    assert_eq!((summary.segments_rescanned, summary.segments_verified), (1, 0));
}
