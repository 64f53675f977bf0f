//! One segment: a `.log` file of record batches plus its offset and time
//! indexes (Kafka's `LogSegment`). This file owns the segment's files and
//! in-memory state: creating and opening it, appending, positioned reads of
//! headers and batches, fsync, sealing when it stops being active, deletion.
//!
//! # Layout
//! - [`lookup`]: finding a batch by offset, and a record by time (the one
//!   place the log decompresses a batch).
//! - [`scan`]: whole-segment walks that bring its state back from the files:
//!   trusted load after a clean shutdown, index rebuild, the header walk that
//!   rebuilds producer state.
//! - [`repair`]: the CRC-checked walk after a crash or a corrupt read, which
//!   sets corrupt batches aside in quarantine files and cuts only a
//!   zero-filled or torn tail.
//!
//! Invariants: batches in the file are back to back and whole up to
//! `size_bytes`; their offsets increase from `base_offset` up to
//! `next_offset`, contiguous except where a corrupt batch was set aside (a
//! gap, named by a quarantine file); every index entry points at a batch start. The segment never
//! decides when to roll or fsync: the partition log does.
//!
//! Byte layout of the files: `proto-spec/STORAGE.md`.

pub mod lookup;
pub mod repair;
pub mod scan;

use crate::log::config::LogConfig;
use crate::log::error::{io_error, LogError, Result};
use crate::log::faults::FaultInjector;
use crate::log::file_names;
use crate::log::mapped_index::Preallocate;
use crate::log::offset_index::OffsetIndex;
use crate::log::time_index::TimeIndex;
use relay_proto::batch::{BatchHeader, HEADER_BYTES};
use relay_proto::clock::now_ms;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

pub use repair::{CorruptSpan, RecoverySummary, SegmentRole};

/// Timestamp of an empty segment, as Kafka's `RecordBatch.NO_TIMESTAMP`.
pub const NO_TIMESTAMP: i64 = -1;

/// Where a batch sits in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLocation {
    pub position: u64,
    pub base_offset: i64,
    pub last_offset: i64,
    pub total_bytes: u64,
    pub max_timestamp_ms: i64,
}

pub struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    log: Arc<File>,
    size_bytes: u64,
    next_offset: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    bytes_since_index_entry: u64,
    max_timestamp_ms: i64,
    offset_of_max_timestamp: i64,
    created_ms: i64,
    index_interval_bytes: u32,
    faults: FaultInjector,
}

impl Segment {
    /// Creates a new, empty segment; fails if its files already exist.
    pub fn create(dir: &Path, base_offset: i64, config: &LogConfig, faults: FaultInjector) -> Result<Self> {
        let log_path = file_names::log_file(dir, base_offset);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&log_path)
            .map_err(io_error("create segment", &log_path))?;
        for path in [
            file_names::index_file(dir, base_offset),
            file_names::time_index_file(dir, base_offset),
        ] {
            if path.exists() {
                std::fs::remove_file(&path).map_err(io_error("remove stale index", &path))?;
            }
        }
        Self::with_log(dir, base_offset, log_path, log, config, Preallocate::Full, faults)
    }

    /// Opens an existing segment without reading it. The caller follows with
    /// [`Segment::load_trusted`] or [`Segment::recover`] before any other use.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        preallocate: Preallocate,
        faults: FaultInjector,
    ) -> Result<Self> {
        let log_path = file_names::log_file(dir, base_offset);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(io_error("open segment", &log_path))?;
        Self::with_log(dir, base_offset, log_path, log, config, preallocate, faults)
    }

    fn with_log(
        dir: &Path,
        base_offset: i64,
        log_path: PathBuf,
        log: File,
        config: &LogConfig,
        preallocate: Preallocate,
        faults: FaultInjector,
    ) -> Result<Self> {
        let metadata = log.metadata().map_err(io_error("stat segment", &log_path))?;
        let created_ms = metadata
            .created()
            .or_else(|_| metadata.modified())
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or_else(now_ms, |d| d.as_millis() as i64);
        let offset_index = OffsetIndex::open(
            &file_names::index_file(dir, base_offset),
            base_offset,
            config.index_bytes_max,
            preallocate,
        )?;
        let time_index = TimeIndex::open(
            &file_names::time_index_file(dir, base_offset),
            base_offset,
            config.index_bytes_max,
            preallocate,
        )?;
        Ok(Self {
            base_offset,
            log_path,
            log: Arc::new(log),
            size_bytes: metadata.len(),
            next_offset: base_offset,
            offset_index,
            time_index,
            bytes_since_index_entry: 0,
            max_timestamp_ms: NO_TIMESTAMP,
            offset_of_max_timestamp: base_offset,
            created_ms,
            index_interval_bytes: config.index_interval_bytes,
            faults,
        })
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
    pub fn max_timestamp_ms(&self) -> i64 {
        self.max_timestamp_ms
    }
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
    pub fn log_file(&self) -> Arc<File> {
        Arc::clone(&self.log)
    }
    pub fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }

    /// Whether `batch_bytes` more bytes ending at `last_offset` must go to a
    /// new segment. An empty segment never rolls: a batch larger than
    /// `segment_bytes` rolls the segment before it and fills the new one
    /// alone, and the batch after it rolls again on size.
    pub fn should_roll(&self, batch_bytes: usize, last_offset: i64, config: &LogConfig) -> bool {
        if self.is_empty() {
            return false;
        }
        let too_big = self.size_bytes + batch_bytes as u64 > config.segment_bytes;
        let too_old = now_ms() - self.created_ms >= config.segment_ms as i64;
        let offsets_overflow = last_offset - self.base_offset > i64::from(u32::MAX);
        let indexes_full = self.offset_index.is_full() || self.time_index.is_full();
        too_big || too_old || offsets_overflow || indexes_full
    }

    /// Moves the next offset forward to `offset` without writing anything: the
    /// offsets skipped were held by a batch set aside, and are never handed
    /// out again.
    pub fn skip_to(&mut self, offset: i64) {
        self.next_offset = self.next_offset.max(offset);
    }

    /// Appends one whole batch whose base offset is already `next_offset`.
    pub fn append(&mut self, batch: &[u8], header: &BatchHeader<'_>) -> Result<()> {
        assert_eq!(header.base_offset(), self.next_offset, "batches are contiguous");
        assert!(
            self.size_bytes + batch.len() as u64 <= u64::from(u32::MAX),
            "positions fit the index"
        );
        if let Err(error) = self.faults.write_all_at(&self.log, batch, self.size_bytes) {
            // Drop a partial write so the file ends with whole batches again;
            // if even that fails, recovery cuts the torn tail on the next open.
            let _ = self.log.set_len(self.size_bytes);
            return Err(io_error("append to", &self.log_path)(error));
        }
        self.index_batch(self.size_bytes, header);
        self.size_bytes += batch.len() as u64;
        self.next_offset = header.last_offset() + 1;
        Ok(())
    }

    fn index_batch(&mut self, position: u64, header: &BatchHeader<'_>) {
        if header.max_timestamp() > self.max_timestamp_ms {
            self.max_timestamp_ms = header.max_timestamp();
            self.offset_of_max_timestamp = header.base_offset();
        }
        if self.bytes_since_index_entry >= u64::from(self.index_interval_bytes) && position > 0 {
            if !self.offset_index.is_full() {
                self.offset_index.append(header.base_offset(), position as u32);
            }
            self.time_index
                .maybe_append(self.max_timestamp_ms, self.offset_of_max_timestamp);
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += u64::from(header.total_bytes() as u32);
    }

    /// Reads the header of the batch at `position`, or `None` when fewer than a
    /// header's bytes remain before `size_bytes`.
    fn read_header(&self, position: u64) -> Result<Option<[u8; HEADER_BYTES]>> {
        if position + HEADER_BYTES as u64 > self.size_bytes {
            return Ok(None);
        }
        let mut header = [0u8; HEADER_BYTES];
        self.log
            .read_exact_at(&mut header, position)
            .map_err(io_error("read", &self.log_path))?;
        Ok(Some(header))
    }

    fn corrupt(&self, position: u64, reason: impl Into<String>) -> LogError {
        LogError::Corrupt {
            path: self.log_path.clone(),
            position,
            reason: reason.into(),
        }
    }

    /// Location of the batch at `position`, checking only its header.
    fn location_at(&self, position: u64) -> Result<Option<BatchLocation>> {
        let Some(bytes) = self.read_header(position)? else {
            return Ok(None);
        };
        let header = match BatchHeader::parse(&bytes) {
            Ok(Some(header)) => header,
            Ok(None) => return Ok(None),
            Err(error) => return Err(self.corrupt(position, error.to_string())),
        };
        if position + header.total_bytes() as u64 > self.size_bytes {
            return Err(self.corrupt(position, "batch extends past the end of the segment"));
        }
        Ok(Some(BatchLocation {
            position,
            base_offset: header.base_offset(),
            last_offset: header.last_offset(),
            total_bytes: header.total_bytes() as u64,
            max_timestamp_ms: header.max_timestamp(),
        }))
    }

    /// Reads `length` bytes at `position` with one positioned read.
    pub fn read_at(&self, position: u64, length: usize) -> Result<Vec<u8>> {
        assert!(
            position + length as u64 <= self.size_bytes,
            "read stays inside the segment"
        );
        let mut bytes = vec![0u8; length];
        self.log
            .read_exact_at(&mut bytes, position)
            .map_err(io_error("read", &self.log_path))?;
        Ok(bytes)
    }

    /// fsyncs the log file (not the indexes, which recovery rebuilds).
    pub fn sync(&self) -> Result<()> {
        self.faults
            .sync_data(&self.log)
            .map_err(io_error("fsync", &self.log_path))
    }

    /// Marks the end of this segment's life as the active one: writes the
    /// final time index entry and trims both indexes to their entries.
    pub fn seal(&mut self) -> Result<()> {
        if self.max_timestamp_ms != NO_TIMESTAMP {
            self.time_index
                .maybe_append(self.max_timestamp_ms, self.offset_of_max_timestamp);
        }
        self.offset_index.trim()?;
        self.time_index.trim()
    }

    /// Removes the segment's three files.
    pub fn delete(self) -> Result<()> {
        let paths = [
            self.log_path.clone(),
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
        ];
        drop(self);
        for path in paths {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(io_error("delete", &path)(error)),
            }
        }
        Ok(())
    }
}
