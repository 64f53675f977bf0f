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

use crate::log::error::Result;
use crate::log::mapped_index::{MappedIndex, Preallocate};
use std::path::Path;

pub const TIME_INDEX_ENTRY_BYTES: usize = 12;
const _: () = assert!(TIME_INDEX_ENTRY_BYTES == 8 + 4);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub max_timestamp_ms: i64,
    pub offset: i64,
}

pub struct TimeIndex {
    base_offset: i64,
    index: MappedIndex<TIME_INDEX_ENTRY_BYTES>,
}

impl TimeIndex {
    pub fn open(path: &Path, base_offset: i64, bytes_max: u32, preallocate: Preallocate) -> Result<Self> {
        Ok(Self {
            base_offset,
            index: MappedIndex::open(path, bytes_max, preallocate)?,
        })
    }

    fn decode(&self, entry: &[u8]) -> TimeEntry {
        let max_timestamp_ms = i64::from_be_bytes(entry[0..8].try_into().expect("8 bytes"));
        let relative = u32::from_be_bytes(entry[8..12].try_into().expect("4 bytes"));
        TimeEntry {
            max_timestamp_ms,
            offset: self.base_offset + i64::from(relative),
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.index.is_full()
    }

    pub fn last(&self) -> Option<TimeEntry> {
        self.index
            .len()
            .checked_sub(1)
            .map(|slot| self.decode(self.index.entry(slot)))
    }

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
        let relative = offset - self.base_offset;
        assert!(
            (0..=i64::from(u32::MAX)).contains(&relative),
            "offset {offset} outside segment"
        );
        if let Some(last) = self.last() {
            assert!(offset >= last.offset, "time index offsets must not go back");
        }
        let mut entry = [0u8; TIME_INDEX_ENTRY_BYTES];
        entry[0..8].copy_from_slice(&max_timestamp_ms.to_be_bytes());
        entry[8..12].copy_from_slice(&(relative as u32).to_be_bytes());
        self.index.push(&entry);
    }

    /// The last entry whose timestamp is below `timestamp_ms`.
    pub fn last_before(&self, timestamp_ms: i64) -> Option<TimeEntry> {
        self.index
            .last_slot_where(|entry| i64::from_be_bytes(entry[0..8].try_into().expect("8 bytes")) < timestamp_ms)
            .map(|slot| self.decode(self.index.entry(slot)))
    }

    /// Timestamps strictly grow and offsets never go back or past `next_offset`.
    pub fn is_consistent(&self, next_offset: i64) -> bool {
        let mut previous: Option<TimeEntry> = None;
        for slot in 0..self.index.len() {
            let entry = self.decode(self.index.entry(slot));
            if entry.offset >= next_offset.max(self.base_offset + 1) {
                return false;
            }
            if let Some(previous) = previous {
                if entry.max_timestamp_ms <= previous.max_timestamp_ms || entry.offset < previous.offset {
                    return false;
                }
            }
            previous = Some(entry);
        }
        true
    }

    pub fn clear(&mut self) {
        self.index.truncate(0);
    }

    pub fn trim(&mut self) -> Result<()> {
        self.index.trim()
    }

    pub fn path(&self) -> &Path {
        self.index.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
