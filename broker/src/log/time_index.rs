//! Sparse time index of one segment (Kafka's `TimeIndex`): the running
//! maximum timestamp of the segment, sampled every `index_interval_bytes`.
//!
//! Entry layout (12 bytes, big-endian; see `proto-spec/STORAGE.md`):
//! `max_timestamp i64` (largest batch max timestamp up to and including the
//! batch below), `relative_offset u32` (base offset of the batch where that
//! maximum was reached, minus the segment base offset). Timestamps strictly
//! increase from entry to entry. A lookup for time `t` returns the last
//! entry whose timestamp is below `t`: every batch up to that entry's offset
//! is older than `t`, so a scan for the first batch at or after `t` may start
//! there.

use crate::log::segment_index::{SegmentIndex, SlotEntry};

pub const TIME_INDEX_ENTRY_BYTES: usize = 12;
const _: () = assert!(TIME_INDEX_ENTRY_BYTES == 8 + 4);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub max_timestamp_ms: i64,
    pub offset: i64,
}

/// The time index of one segment.
pub type TimeIndex = SegmentIndex<TimeEntry, TIME_INDEX_ENTRY_BYTES>;

impl SlotEntry<TIME_INDEX_ENTRY_BYTES> for TimeEntry {
    fn decode(slot: &[u8], base_offset: i64) -> Self {
        let max_timestamp_ms = i64::from_be_bytes(slot[0..8].try_into().expect("8 bytes"));
        let relative = u32::from_be_bytes(slot[8..12].try_into().expect("4 bytes"));
        TimeEntry {
            max_timestamp_ms,
            offset: base_offset + i64::from(relative),
        }
    }
}

impl TimeIndex {
    /// Records that the running maximum reached `max_timestamp_ms` at the batch
    /// starting at `offset`. Ignored unless it is a new maximum.
    pub fn maybe_append(&mut self, max_timestamp_ms: i64, offset: i64) {
        if self
            .last()
            .is_some_and(|last| last.max_timestamp_ms >= max_timestamp_ms)
            || self.is_full()
        {
            return;
        }
        let relative = self.relative(offset);
        if let Some(last) = self.last() {
            assert!(offset >= last.offset, "time index offsets must not go back");
        }
        let mut entry = [0u8; TIME_INDEX_ENTRY_BYTES];
        entry[0..8].copy_from_slice(&max_timestamp_ms.to_be_bytes());
        entry[8..12].copy_from_slice(&relative.to_be_bytes());
        self.push(&entry);
    }

    /// The last entry whose timestamp is below `timestamp_ms`.
    pub fn last_before(&self, timestamp_ms: i64) -> Option<TimeEntry> {
        self.last_where(|entry| i64::from_be_bytes(entry[0..8].try_into().expect("8 bytes")) < timestamp_ms)
    }

    /// Timestamps strictly grow and offsets never go back or past `next_offset`.
    pub fn is_consistent(&self, next_offset: i64) -> bool {
        let offset_end = next_offset.max(self.base_offset() + 1);
        self.entries_hold(
            |entry| entry.offset < offset_end,
            |previous, entry| entry.max_timestamp_ms > previous.max_timestamp_ms && entry.offset >= previous.offset,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::mapped_index::Preallocate;

    #[test]
    fn last_before_finds_where_to_start_scanning() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TimeIndex::open(&dir.path().join("t"), 1000, 1200, Preallocate::Full).unwrap();
        index.maybe_append(100, 1000);
        index.maybe_append(90, 1005); // not a new maximum
        index.maybe_append(200, 1010);
        index.maybe_append(300, 1020);
        assert_eq!(index.len(), 3);
        assert_eq!(index.last_before(100), None);
        assert_eq!(
            index.last_before(101),
            Some(TimeEntry {
                max_timestamp_ms: 100,
                offset: 1000
            })
        );
        assert_eq!(
            index.last_before(250),
            Some(TimeEntry {
                max_timestamp_ms: 200,
                offset: 1010
            })
        );
        assert_eq!(
            index.last_before(1_000_000),
            Some(TimeEntry {
                max_timestamp_ms: 300,
                offset: 1020
            })
        );
        assert!(index.is_consistent(1021));
        assert!(!index.is_consistent(1020));
    }
}
