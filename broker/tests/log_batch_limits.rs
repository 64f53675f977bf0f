//! The partition log's two batch-size rules, through its public API on a real
//! directory: a batch larger than `segment_bytes` is never refused but fills
//! a segment of its own, and a batch larger than `message_bytes_max` is
//! refused whole, leaving the log and the producer's sequences as they were.

mod common;

use common::*;
use relay_broker::log::{FsyncPolicy, LogConfig, LogError};
use relay_proto::{BatchBuilder, RecordSpec};

/// A batch whose records' values are `values`, idempotent when `producer`
/// (id, epoch, base sequence) is given.
fn batch_of(producer: Option<(i64, i16, i32)>, values: &[Vec<u8>]) -> Vec<u8> {
    let mut builder = match producer {
        Some((id, epoch, sequence)) => BatchBuilder::new(T0_MS).producer(id, epoch, sequence),
        None => BatchBuilder::new(T0_MS),
    };
    for value in values {
        builder.push(RecordSpec::value(value.clone()));
    }
    builder.build()
}

/// `count` values of `bytes` bytes each, told apart by `tag` and their index.
fn values(tag: &str, count: usize, bytes: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|index| {
            let mut value = format!("{tag} {index} ").into_bytes();
            value.resize(bytes, b'.');
            value
        })
        .collect()
}

/// A batch of one record whose encoding is exactly `batch_bytes` long.
fn batch_exactly(batch_bytes: usize) -> Vec<u8> {
    let fixed = batch_of(None, &[Vec::new()]).len();
    let mut value_bytes = batch_bytes - fixed;
    // The value's length prefix (and the record's) grow with the value.
    while batch_of(None, &[vec![b'x'; value_bytes]]).len() > batch_bytes {
        value_bytes -= 1;
    }
    let batch = batch_of(None, &[vec![b'x'; value_bytes]]);
    assert_eq!(
        batch.len(),
        batch_bytes,
        "no value length gives exactly {batch_bytes} bytes"
    );
    batch
}

fn indexed(from: i64, values: &[Vec<u8>]) -> Vec<(i64, Vec<u8>)> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| (from + index as i64, value.clone()))
        .collect()
}

#[test]
fn batch_larger_than_segment_bytes_lands_in_a_segment_of_its_own_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(FsyncPolicy::Never);
    assert_eq!(config.segment_bytes, 2048);
    let log = open(dir.path(), &config);
    let (before, large, after) = (
        values("before", 3, 20),
        values("large", 4, 3000),
        values("after", 2, 20),
    );
    let mut large_batch = batch_of(None, &large);
    assert!(large_batch.len() as u64 > 5 * config.segment_bytes);
    assert_eq!(log.append(&mut batch_of(None, &before)).unwrap().base_offset, 0);
    let info = log.append(&mut large_batch).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (3, 6));
    assert_eq!(log.append(&mut batch_of(None, &after)).unwrap().base_offset, 7);

    let files = segment_files(dir.path());
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec![
            "00000000000000000000.log",
            "00000000000000000003.log",
            "00000000000000000007.log"
        ],
        "the segment before rolls, and the batch after rolls again"
    );
    assert_eq!(std::fs::metadata(&files[1]).unwrap().len(), large_batch.len() as u64);
    let mut expected = indexed(0, &before);
    expected.extend(indexed(3, &large));
    expected.extend(indexed(7, &after));
    assert_eq!(read_all(&log, 0, 512), expected);
    assert_eq!(
        read_all(&log, 5, 512),
        expected[5..].to_vec(),
        "a read inside it starts at it"
    );

    // A crash (no clean close) rescans the large segment and keeps it whole.
    drop(log);
    let log = open(dir.path(), &config);
    assert_eq!(log.segment_count(), 3);
    assert_eq!(read_all(&log, 0, 512), expected);
    assert_eq!(
        log.append(&mut batch_of(None, &values("later", 1, 20)))
            .unwrap()
            .base_offset,
        9
    );
}

#[test]
fn batch_over_message_bytes_max_is_refused_whole_and_the_next_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        message_bytes_max: 1024,
        ..small_config(FsyncPolicy::Never)
    };
    let log = open(dir.path(), &config);
    let mut over = batch_exactly(1025);
    match log.append(&mut over).unwrap_err() {
        LogError::BatchTooLarge {
            batch_bytes,
            message_bytes_max,
        } => assert_eq!((batch_bytes, message_bytes_max), (1025, 1024)),
        other => panic!("a 1025-byte batch gave {other:?}"),
    }
    assert_eq!((log.end_offset(), log.size_bytes()), (0, 0), "nothing was written");
    let at_limit = log.append(&mut batch_exactly(1024)).unwrap();
    assert_eq!(
        at_limit.base_offset, 0,
        "a batch of exactly message_bytes_max is accepted"
    );
    assert_eq!(
        log.append(&mut batch_of(None, &values("small", 2, 10)))
            .unwrap()
            .base_offset,
        1
    );
    // In a record set of several batches, one too large refuses them all.
    let mut set = batch_of(None, &values("fits", 1, 10));
    set.extend(batch_exactly(1025));
    assert!(matches!(log.append(&mut set), Err(LogError::BatchTooLarge { .. })));
    assert_eq!(log.end_offset(), 3);
}

#[test]
fn refused_idempotent_batch_leaves_its_sequences_to_its_split_halves() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        message_bytes_max: 1024,
        ..small_config(FsyncPolicy::Never)
    };
    let log = open(dir.path(), &config);
    let (refused, behind) = (values("split", 4, 300), values("behind", 1, 10));
    assert!(matches!(
        log.append(&mut batch_of(Some((7, 0, 0)), &refused)),
        Err(LogError::BatchTooLarge { .. })
    ));
    // The batch that was in flight behind it finds a gap.
    assert!(matches!(
        log.append(&mut batch_of(Some((7, 0, 4)), &behind)),
        Err(LogError::UnknownProducerId { .. })
    ));
    // The producer's halves take the refused batch's range, then the rest follows.
    assert_eq!(
        log.append(&mut batch_of(Some((7, 0, 0)), &refused[..2]))
            .unwrap()
            .base_offset,
        0
    );
    assert_eq!(
        log.append(&mut batch_of(Some((7, 0, 2)), &refused[2..]))
            .unwrap()
            .base_offset,
        2
    );
    assert_eq!(
        log.append(&mut batch_of(Some((7, 0, 4)), &behind)).unwrap().base_offset,
        4
    );
    let mut expected = indexed(0, &refused);
    expected.extend(indexed(4, &behind));
    assert_eq!(read_all(&log, 0, 4096), expected);
}

#[test]
fn retry_of_a_written_batch_is_a_duplicate_even_over_a_lowered_limit() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &small_config(FsyncPolicy::Never));
    let written = values("written", 4, 300);
    let mut first = batch_of(Some((9, 0, 0)), &written);
    assert!(first.len() > 1024);
    let original = log.append(&mut first.clone()).unwrap();
    assert_eq!((original.base_offset, original.last_offset), (0, 3));
    log.close().unwrap();

    let lowered = LogConfig {
        message_bytes_max: 1024,
        ..small_config(FsyncPolicy::Never)
    };
    let log = open(dir.path(), &lowered);
    let retry = log.append(&mut first).unwrap();
    assert!(retry.duplicate, "answered as the original, not refused as too large");
    assert_eq!((retry.base_offset, retry.last_offset), (0, 3));
    assert_eq!(log.end_offset(), 4);
    // A new batch over the lowered limit is refused before its sequence is judged.
    assert!(matches!(
        log.append(&mut batch_of(Some((9, 0, 4)), &written)),
        Err(LogError::BatchTooLarge { .. })
    ));
    assert!(matches!(
        log.append(&mut batch_of(Some((9, 0, 99)), &written)),
        Err(LogError::BatchTooLarge { .. })
    ));
    assert_eq!(read_all(&log, 0, 4096), indexed(0, &written));
}
