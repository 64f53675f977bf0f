//! What the offset index and the time index share (Kafka's `AbstractIndex`
//! above its file): typed entries in a [`MappedIndex`], each holding an
//! offset relative to the segment's base offset in 4 bytes; reading them
//! back, checking them all, clearing and trimming. Each index says how its
//! entry is laid out ([`SlotEntry`]) and adds its own append and lookup
//! ([`super::offset_index`], [`super::time_index`]).

use crate::log::error::Result;
use crate::log::mapped_index::{MappedIndex, Preallocate};
use std::marker::PhantomData;
use std::path::Path;

/// An entry of a segment index, `N` bytes in its slot.
pub trait SlotEntry<const N: usize>: Copy {
    /// The entry in `slot`, whose relative offset counts from `base_offset`.
    fn decode(slot: &[u8], base_offset: i64) -> Self;
}

/// A sparse index of one segment, of entries `E` of `N` bytes.
pub struct SegmentIndex<E, const N: usize> {
    base_offset: i64,
    index: MappedIndex<N>,
    entry: PhantomData<E>,
}

impl<E: SlotEntry<N>, const N: usize> SegmentIndex<E, N> {
    pub fn open(path: &Path, base_offset: i64, bytes_max: u32, preallocate: Preallocate) -> Result<Self> {
        Ok(Self {
            base_offset,
            index: MappedIndex::open(path, bytes_max, preallocate)?,
            entry: PhantomData,
        })
    }

    /// The segment's first offset, from which entries count theirs.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
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

    pub fn last(&self) -> Option<E> {
        self.index.len().checked_sub(1).map(|slot| self.entry(slot))
    }

    fn entry(&self, slot: usize) -> E {
        E::decode(self.index.entry(slot), self.base_offset)
    }

    /// The last entry whose slot satisfies `is_at_or_before`, a predicate
    /// true for a prefix of the entries (binary search).
    pub fn last_where(&self, is_at_or_before: impl Fn(&[u8]) -> bool) -> Option<E> {
        self.index.last_slot_where(is_at_or_before).map(|slot| self.entry(slot))
    }

    /// `offset` as an entry stores it, relative to the segment's base.
    /// Panics outside the segment: the caller indexes only its own batches.
    pub fn relative(&self, offset: i64) -> u32 {
        let relative = offset - self.base_offset;
        assert!(
            (0..=i64::from(u32::MAX)).contains(&relative),
            "offset {offset} outside segment"
        );
        relative as u32
    }

    /// Appends one encoded entry; the caller keeps entries in order.
    pub fn push(&mut self, slot: &[u8; N]) {
        self.index.push(slot);
    }

    /// Whether every entry is `in_bounds` and `follows` the one before it:
    /// what can be checked of an index without its log.
    pub fn entries_hold(&self, in_bounds: impl Fn(&E) -> bool, follows: impl Fn(&E, &E) -> bool) -> bool {
        let mut previous: Option<E> = None;
        for slot in 0..self.index.len() {
            let entry = self.entry(slot);
            if !in_bounds(&entry) {
                return false;
            }
            if previous.is_some_and(|previous| !follows(&previous, &entry)) {
                return false;
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
