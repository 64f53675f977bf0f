//! A preallocated, memory-mapped file of fixed-size entries: the storage under
//! both the offset index and the time index (Kafka's `AbstractIndex`).
//!
//! While its segment is active the file is extended to its full preallocated
//! size and entries are written through the map; the in-memory `entries` count
//! says how many are real. Sealing trims the file to exactly `entries *
//! ENTRY_BYTES`, so on a clean reopen the file length gives the count. After a
//! crash the count cannot be trusted and the index is rebuilt from the log.
//!
//! Durability: the log is the truth. Indexes are never fsynced on the ack
//! path; an index that disagrees with its log is rebuilt, never trusted.

use crate::log::error::{io_error, Result};
use memmap2::MmapMut;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

pub struct MappedIndex<const ENTRY_BYTES: usize> {
    path: PathBuf,
    file: File,
    /// `None` while the file is empty: zero-length maps are not portable.
    map: Option<MmapMut>,
    entries: usize,
    entries_max: usize,
}

impl<const ENTRY_BYTES: usize> MappedIndex<ENTRY_BYTES> {
    /// Opens (creating if missing) the index at `path`. Existing entries are
    /// counted from the file length, which a clean seal left exact; the file is
    /// then extended to `bytes_max` when `preallocate` asks for room to grow.
    pub fn open(path: &Path, bytes_max: u32, preallocate: Preallocate) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_error("open index", path))?;
        let length = file.metadata().map_err(io_error("stat index", path))?.len() as usize;
        let entries_max = (bytes_max as usize / ENTRY_BYTES).max(length / ENTRY_BYTES);
        let mut index = Self {
            path: path.to_path_buf(),
            file,
            map: None,
            entries: length / ENTRY_BYTES,
            entries_max,
        };
        let target = match preallocate {
            Preallocate::Full => entries_max * ENTRY_BYTES,
            Preallocate::Exact => index.entries * ENTRY_BYTES,
        };
        index.resize_file(target)?;
        Ok(index)
    }

    fn resize_file(&mut self, length: usize) -> Result<()> {
        self.map = None;
        self.file
            .set_len(length as u64)
            .map_err(io_error("resize index", &self.path))?;
        if length > 0 {
            // SAFETY: the file is private to this process's partition and is
            // only resized here, after the old map was dropped.
            let map = unsafe { MmapMut::map_mut(&self.file) }.map_err(io_error("map index", &self.path))?;
            // Entries are read by binary search and written one page at a
            // time: the kernel's read-around on a fault would read (zero-fill)
            // up to megabytes of the preallocated holes for each page written,
            // which cost a clean stop ~2 ms per partition for its final time
            // index entry. Advice only: a refusal changes nothing else.
            let _ = map.advise(memmap2::Advice::Random);
            self.map = Some(map);
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    pub fn is_full(&self) -> bool {
        self.entries >= self.entries_max
    }

    pub fn entry(&self, slot: usize) -> &[u8] {
        assert!(slot < self.entries, "index slot {slot} past {} entries", self.entries);
        let map = self.map.as_ref().expect("a non-empty index is mapped");
        &map[slot * ENTRY_BYTES..(slot + 1) * ENTRY_BYTES]
    }

    /// Appends one entry. The caller keeps entries sorted; a full index is a
    /// reason to roll the segment, checked before appending.
    pub fn push(&mut self, entry: &[u8; ENTRY_BYTES]) {
        assert!(!self.is_full(), "index {} is full", self.path.display());
        let slot = self.entries;
        let map = self.map.as_mut().expect("a preallocated index is mapped");
        map[slot * ENTRY_BYTES..(slot + 1) * ENTRY_BYTES].copy_from_slice(entry);
        self.entries += 1;
    }

    /// Keeps only the first `entries` entries.
    pub fn truncate(&mut self, entries: usize) {
        self.entries = self.entries.min(entries);
    }

    /// Index of the last slot whose entry satisfies `is_at_or_before`, for a
    /// predicate that is true for a prefix of the entries (binary search).
    pub fn last_slot_where(&self, is_at_or_before: impl Fn(&[u8]) -> bool) -> Option<usize> {
        let (mut low, mut high) = (0usize, self.entries);
        while low < high {
            let middle = low + (high - low) / 2;
            if is_at_or_before(self.entry(middle)) {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low.checked_sub(1)
    }

    /// Shrinks the file to its entries (on seal or clean close) and fsyncs
    /// it. One fsync: on Linux it writes back the pages written through the
    /// map too (they are the file's page cache), so an `msync` before it
    /// was a second fsync of the same file (half a clean stop's cost).
    pub fn trim(&mut self) -> Result<()> {
        self.resize_file(self.entries * ENTRY_BYTES)?;
        self.entries_max = self.entries;
        self.file.sync_all().map_err(io_error("fsync index", &self.path))
    }
}

/// How much room an opened index gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preallocate {
    /// The full preallocated size: the segment is active and will grow.
    Full,
    /// Exactly the entries present: the segment is sealed.
    Exact,
}
