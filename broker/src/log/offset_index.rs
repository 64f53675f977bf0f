//! Sparse offset index of one segment: maps a logical offset to the byte
//! position of the batch that starts there (Kafka's `OffsetIndex`).
//!
//! Entry layout (8 bytes, big-endian; see `proto-spec/STORAGE.md`):
//! `relative_offset u32` (batch base offset - segment base offset),
//! `position u32` (byte position of that batch in the `.log` file).
//! One entry is added every `index_interval_bytes` of log; a lookup returns
//! the nearest entry at or before the target, and the segment scans batch
//! headers forward from there. Entries are strictly increasing in both fields.

use crate::log::error::Result;
use crate::log::mapped_index::{MappedIndex, Preallocate};
use std::path::Path;

pub const OFFSET_INDEX_ENTRY_BYTES: usize = 8;
const _: () = assert!(OFFSET_INDEX_ENTRY_BYTES == 4 + 4);

/// A place in a segment: a batch's base offset and its byte position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub offset: i64,
    pub position: u32,
}

pub struct OffsetIndex {
    base_offset: i64,
    index: MappedIndex<OFFSET_INDEX_ENTRY_BYTES>,
}

impl OffsetIndex {
    pub fn open(path: &Path, base_offset: i64, bytes_max: u32, preallocate: Preallocate) -> Result<Self> {
        Ok(Self {
            base_offset,
            index: MappedIndex::open(path, bytes_max, preallocate)?,
        })
    }

    fn decode(&self, entry: &[u8]) -> IndexEntry {
        let relative = u32::from_be_bytes(entry[0..4].try_into().expect("4 bytes"));
        let position = u32::from_be_bytes(entry[4..8].try_into().expect("4 bytes"));
        IndexEntry {
            offset: self.base_offset + i64::from(relative),
            position,
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

    pub fn last(&self) -> Option<IndexEntry> {
        self.index
            .len()
            .checked_sub(1)
            .map(|slot| self.decode(self.index.entry(slot)))
    }

    pub fn append(&mut self, offset: i64, position: u32) {
        let relative = offset - self.base_offset;
        assert!(
            (0..=i64::from(u32::MAX)).contains(&relative),
            "offset {offset} outside segment"
        );
        if let Some(last) = self.last() {
            assert!(
                offset > last.offset && position > last.position,
                "offset index must grow"
            );
        }
        let mut entry = [0u8; OFFSET_INDEX_ENTRY_BYTES];
        entry[0..4].copy_from_slice(&(relative as u32).to_be_bytes());
        entry[4..8].copy_from_slice(&position.to_be_bytes());
        self.index.push(&entry);
    }

    /// The last entry at or before `offset`; the segment start when none is.
    pub fn lookup(&self, offset: i64) -> IndexEntry {
        let relative = offset - self.base_offset;
        self.index
            .last_slot_where(|entry| {
                i64::from(u32::from_be_bytes(entry[0..4].try_into().expect("4 bytes"))) <= relative
            })
            .map(|slot| self.decode(self.index.entry(slot)))
            .unwrap_or(IndexEntry {
                offset: self.base_offset,
                position: 0,
            })
    }

    /// Checks what can be checked without the log: entries strictly grow and
    /// every position lies inside a log of `log_bytes`.
    pub fn is_consistent(&self, log_bytes: u64) -> bool {
        let mut previous: Option<IndexEntry> = None;
        for slot in 0..self.index.len() {
            let entry = self.decode(self.index.entry(slot));
            if u64::from(entry.position) >= log_bytes {
                return false;
            }
            if let Some(previous) = previous {
                if entry.offset <= previous.offset || entry.position <= previous.position {
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
    fn lookup_finds_the_last_entry_at_or_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = OffsetIndex::open(&path, 100, 1024, Preallocate::Full).unwrap();
        assert_eq!(
            index.lookup(150),
            IndexEntry {
                offset: 100,
                position: 0
            }
        );
        index.append(110, 4096);
        index.append(120, 8192);
        assert_eq!(
            index.lookup(105),
            IndexEntry {
                offset: 100,
                position: 0
            }
        );
        assert_eq!(
            index.lookup(110),
            IndexEntry {
                offset: 110,
                position: 4096
            }
        );
        assert_eq!(
            index.lookup(119),
            IndexEntry {
                offset: 110,
                position: 4096
            }
        );
        assert_eq!(
            index.lookup(500),
            IndexEntry {
                offset: 120,
                position: 8192
            }
        );
        assert!(index.is_consistent(8193));
        assert!(!index.is_consistent(8192));
    }

    #[test]
    fn trimmed_index_reopens_with_its_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = OffsetIndex::open(&path, 0, 1024, Preallocate::Full).unwrap();
        for n in 1..=10 {
            index.append(n * 10, (n * 100) as u32);
        }
        index.trim().unwrap();
        drop(index);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 80);
        let index = OffsetIndex::open(&path, 0, 1024, Preallocate::Full).unwrap();
        assert_eq!(index.len(), 10);
        assert_eq!(
            index.lookup(55),
            IndexEntry {
                offset: 50,
                position: 500
            }
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1024);
    }

    #[test]
    fn full_index_reports_full() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = OffsetIndex::open(&dir.path().join("i"), 0, 16, Preallocate::Full).unwrap();
        index.append(1, 1);
        assert!(!index.is_full());
        index.append(2, 2);
        assert!(index.is_full());
    }
}
