//! Names of the files in a partition directory. A segment is named by its
//! base offset, zero-padded to 20 digits so names sort as numbers do:
//!
//! ```text
//! <topic>-<partition>/
//!   00000000000000000000.log        record batches
//!   00000000000000000000.index      offset index
//!   00000000000000000000.timeindex  time index
//!   00000000000000001000-00000000000000002000.quarantine
//!                                   bytes set aside: a corrupt batch, whose
//!                                   offsets [1000, 2000) are a gap
//!   recovery-point                  checkpoint: offset below which all is fsynced
//!   clean-shutdown                  marker: written last by a clean close
//! ```

use std::path::{Path, PathBuf};

pub const LOG_SUFFIX: &str = "log";
pub const INDEX_SUFFIX: &str = "index";
pub const TIME_INDEX_SUFFIX: &str = "timeindex";
pub const RECOVERY_POINT_FILE: &str = "recovery-point";
pub const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
pub const QUARANTINE_SUFFIX: &str = "quarantine";

fn segment_file(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    assert!(base_offset >= 0, "base offsets are never negative");
    dir.join(format!("{base_offset:020}.{suffix}"))
}

pub fn log_file(dir: &Path, base_offset: i64) -> PathBuf {
    segment_file(dir, base_offset, LOG_SUFFIX)
}

pub fn index_file(dir: &Path, base_offset: i64) -> PathBuf {
    segment_file(dir, base_offset, INDEX_SUFFIX)
}

pub fn time_index_file(dir: &Path, base_offset: i64) -> PathBuf {
    segment_file(dir, base_offset, TIME_INDEX_SUFFIX)
}

/// The base offset and suffix of a segment file name, or `None` for any
/// other file.
pub fn parse_segment_file(name: &str) -> Option<(i64, &str)> {
    let (stem, suffix) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let base_offset = stem.parse::<i64>().ok()?;
    matches!(suffix, LOG_SUFFIX | INDEX_SUFFIX | TIME_INDEX_SUFFIX).then_some((base_offset, suffix))
}

/// Where the bytes of a corrupt batch are set aside: named by the offsets
/// they held, `[first_offset, end_offset)` (empty when none were lost), and,
/// when that name is taken by other bytes, a `-<n>` suffix.
pub fn quarantine_file(dir: &Path, offsets: &std::ops::Range<i64>, attempt: u32) -> PathBuf {
    assert!(offsets.start >= 0, "offsets are never negative");
    let (first, end) = (offsets.start, offsets.end);
    match attempt {
        0 => dir.join(format!("{first:020}-{end:020}.{QUARANTINE_SUFFIX}")),
        n => dir.join(format!("{first:020}-{end:020}-{n}.{QUARANTINE_SUFFIX}")),
    }
}

/// The offsets `[first, end)` a quarantine file name stands for, or `None`
/// for any other file.
pub fn parse_quarantine_file(name: &str) -> Option<std::ops::Range<i64>> {
    let stem = name.strip_suffix(QUARANTINE_SUFFIX)?.strip_suffix('.')?;
    let mut parts = stem.splitn(3, '-');
    let mut offset = || -> Option<i64> {
        let digits = parts.next()?;
        (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten()
    };
    let (first, end) = (offset()?, offset()?);
    (first <= end).then_some(first..end)
}

/// The directory of one partition: `<data_dir>/<topic>-<partition>`.
pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_sort_numerically() {
        let dir = Path::new("/d");
        let name = log_file(dir, 1234).file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(name, "00000000000000001234.log");
        assert_eq!(parse_segment_file(&name), Some((1234, "log")));
        assert!(log_file(dir, 99) < log_file(dir, 100));
        assert_eq!(parse_segment_file("recovery-point"), None);
        assert_eq!(parse_segment_file("0000000000000000123x.log"), None);
        assert_eq!(parse_segment_file("00000000000000001234.log.swp"), None);
    }

    #[test]
    fn quarantine_names_round_trip_and_are_not_segments() {
        let dir = Path::new("/d");
        for attempt in [0, 3] {
            let path = quarantine_file(dir, &(1000..2000), attempt);
            let name = path.file_name().unwrap().to_str().unwrap();
            assert_eq!(parse_quarantine_file(name), Some(1000..2000), "{name}");
            assert_eq!(parse_segment_file(name), None, "{name}");
        }
        assert_eq!(parse_quarantine_file("00000000000000001234.log"), None);
        assert_eq!(parse_quarantine_file("1-2.quarantine"), None);
    }
}
