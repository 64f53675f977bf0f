//! Sparse offset index of one segment: maps a logical offset to the byte
//! position of the batch that starts there (Kafka's `OffsetIndex`).
//!
//! Entry layout (8 bytes, big-endian; see `proto-spec/STORAGE.md`):
//! `relative_offset u32` (batch base offset - segment base offset),
//! `position u32` (byte position of that batch in the `.log` file).
//! One entry is added every `index_interval_bytes` of log; a lookup returns
//! the nearest entry at or before the target, and the segment scans batch
//! headers forward from there. Entries are strictly increasing in both fields.

use crate::log::segment_index::{SegmentIndex, SlotEntry};

pub const OFFSET_INDEX_ENTRY_BYTES: usize = 8;
const _: () = assert!(OFFSET_INDEX_ENTRY_BYTES == 4 + 4);

/// A place in a segment: a batch's base offset and its byte position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub offset: i64,
    pub position: u32,
}

/// The offset index of one segment.
pub type OffsetIndex = SegmentIndex<IndexEntry, OFFSET_INDEX_ENTRY_BYTES>;

impl SlotEntry<OFFSET_INDEX_ENTRY_BYTES> for IndexEntry {
    fn decode(slot: &[u8], base_offset: i64) -> Self {
        let relative = u32::from_be_bytes(slot[0..4].try_into().expect("4 bytes"));
        let position = u32::from_be_bytes(slot[4..8].try_into().expect("4 bytes"));
        IndexEntry {
            offset: base_offset + i64::from(relative),
            position,
        }
    }
}

impl OffsetIndex {
    pub fn append(&mut self, offset: i64, position: u32) {
        let relative = self.relative(offset);
        if let Some(last) = self.last() {
            assert!(
                offset > last.offset && position > last.position,
                "offset index must grow"
            );
        }
        let mut entry = [0u8; OFFSET_INDEX_ENTRY_BYTES];
        entry[0..4].copy_from_slice(&relative.to_be_bytes());
        entry[4..8].copy_from_slice(&position.to_be_bytes());
        self.push(&entry);
    }

    /// The last entry at or before `offset`; the segment start when none is.
    pub fn lookup(&self, offset: i64) -> IndexEntry {
        let relative = offset - self.base_offset();
        self.last_where(|entry| i64::from(u32::from_be_bytes(entry[0..4].try_into().expect("4 bytes"))) <= relative)
            .unwrap_or(IndexEntry {
                offset: self.base_offset(),
                position: 0,
            })
    }

    /// Checks what can be checked without the log: entries strictly grow and
    /// every position lies inside a log of `log_bytes`.
    pub fn is_consistent(&self, log_bytes: u64) -> bool {
        self.entries_hold(
            |entry| u64::from(entry.position) < log_bytes,
            |previous, entry| entry.offset > previous.offset && entry.position > previous.position,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::mapped_index::Preallocate;

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
