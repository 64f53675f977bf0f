//! Whole-segment walks that bring a segment's in-memory state (next offset,
//! largest timestamp, both indexes) back from its files (the CRC-checked
//! walk that sets corrupt batches aside is [`super::repair`]'s);
//! [`Segment::load_trusted`] walks only the headers after the last index entry
//! after a clean shutdown; the indexes are rebuilt from headers when one
//! cannot be trusted ([`Segment::load_verified`] after a crash, for a segment
//! the recovery checkpoint verified); [`Segment::for_each_header`] feeds producer state.
//!
//! Which segments are recovered and which trusted is decided by
//! [`crate::log::recovery`], not here.

use super::{Segment, NO_TIMESTAMP};
use crate::log::error::{LogError, Result};
use crate::log::offset_index::IndexEntry;
use relay_proto::batch::BatchHeader;
use std::os::unix::fs::FileExt;

impl Segment {
    /// Reads the whole batch at `position` into `buffer` and checks its header
    /// and CRC; the error says why the bytes there are not a valid batch.
    pub(super) fn check_batch_at(&self, position: u64, buffer: &mut Vec<u8>) -> std::result::Result<(), String> {
        let header_bytes = match self.read_header(position) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                return Err(format!(
                    "{} bytes too short for a batch header",
                    self.size_bytes - position
                ))
            }
            Err(error) => return Err(error.to_string()),
        };
        let total = match BatchHeader::parse(&header_bytes) {
            Ok(Some(header)) => header.total_bytes() as u64,
            Ok(None) => unreachable!("a full header was read"),
            Err(error) => return Err(error.to_string()),
        };
        if position + total > self.size_bytes {
            return Err(format!(
                "torn batch: {total} bytes declared, {} present",
                self.size_bytes - position
            ));
        }
        buffer.resize(total as usize, 0);
        self.log.read_exact_at(buffer, position).map_err(|e| e.to_string())?;
        match BatchHeader::parse_whole(buffer) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => unreachable!("the whole batch was read"),
            Err(error) => Err(error.to_string()),
        }
    }

    /// After a clean shutdown: checks the indexes against the file and finds
    /// the end by walking headers from the last index entry. Returns false when
    /// anything disagrees, and the caller recovers the segment instead.
    pub fn load_trusted(&mut self) -> Result<bool> {
        if !self.offset_index.is_consistent(self.size_bytes) {
            return Ok(false);
        }
        let start = self.offset_index.last().unwrap_or(IndexEntry {
            offset: self.base_offset,
            position: 0,
        });
        if let Some(last_time) = self.time_index.last() {
            self.max_timestamp_ms = last_time.max_timestamp_ms;
            self.offset_of_max_timestamp = last_time.offset;
        }
        self.next_offset = start.offset;
        let mut position = u64::from(start.position);
        while position < self.size_bytes {
            let location = match self.location_at(position) {
                // A base offset past the expected one is a gap: offsets set
                // aside with a corrupt batch.
                Ok(Some(location)) if location.base_offset >= self.next_offset => location,
                _ => return Ok(false),
            };
            if location.max_timestamp_ms > self.max_timestamp_ms {
                self.max_timestamp_ms = location.max_timestamp_ms;
                self.offset_of_max_timestamp = location.base_offset;
            }
            self.next_offset = location.last_offset + 1;
            position += location.total_bytes;
        }
        // Entries that the tail walk would have added are approximated by
        // counting the tail as bytes since the last entry.
        self.bytes_since_index_entry = self.size_bytes - u64::from(start.position);
        Ok(self.time_index.is_consistent(self.next_offset))
    }

    fn reset_indexes(&mut self) {
        self.offset_index.clear();
        self.time_index.clear();
        self.bytes_since_index_entry = 0;
        self.next_offset = self.base_offset;
        self.max_timestamp_ms = NO_TIMESTAMP;
        self.offset_of_max_timestamp = self.base_offset;
    }

    /// A segment the recovery checkpoint verified (unchanged since a clean
    /// close fsynced it) after a crash: its log is trusted, but not its
    /// indexes (preallocated files whose length no longer counts entries),
    /// so they are rebuilt from headers. False when the headers do not walk
    /// to the end of the file; the caller recovers the segment instead.
    pub fn load_verified(&mut self) -> Result<bool> {
        match self.rebuild_indexes() {
            Ok(end) => Ok(end == self.size_bytes),
            Err(LogError::Corrupt { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Rebuilds the indexes from batch headers (no CRC: the log was checked
    /// when written and when recovered); returns where the walk stopped.
    pub(super) fn rebuild_indexes(&mut self) -> Result<u64> {
        let size = self.size_bytes;
        self.reset_indexes();
        let mut position = 0;
        while position < size {
            let Some(location) = self.location_at(position)? else {
                break;
            };
            let bytes = self.read_header(position)?.expect("header present");
            let header = BatchHeader::parse(&bytes).expect("parsed above").expect("whole header");
            self.index_batch(position, &header);
            self.next_offset = location.last_offset + 1;
            position += location.total_bytes;
        }
        Ok(position)
    }

    /// Visits the header of every batch, in order, without CRC checks.
    pub fn for_each_header(&self, mut visit: impl FnMut(&BatchHeader<'_>)) -> Result<()> {
        let mut position = 0;
        while let Some(bytes) = self.read_header(position)? {
            let header = match BatchHeader::parse(&bytes) {
                Ok(Some(header)) => header,
                _ => return Err(self.corrupt(position, "invalid batch header")),
            };
            visit(&header);
            position += header.total_bytes() as u64;
        }
        Ok(())
    }
}
