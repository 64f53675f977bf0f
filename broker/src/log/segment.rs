//! One segment: a `.log` file of record batches plus its offset and time
//! indexes (Kafka's `LogSegment`). It appends, finds batches by offset or
//! time, recovers itself by scanning, and seals when it stops being active.
//!
//! It never decompresses, except to answer a lookup by time inside a
//! compressed batch.
//!
//! Invariants: batches in the file are back to back and whole up to
//! `size_bytes`; their offsets are contiguous from `base_offset` up to
//! `next_offset`; every index entry points at a batch start. The segment never
//! decides when to roll or fsync: the partition log does.
//!
//! Byte layout of the files: `proto-spec/STORAGE.md`.

use crate::clock::now_ms;
use crate::log::config::LogConfig;
use crate::log::error::{io_error, LogError, Result};
use crate::log::faults::FaultInjector;
use crate::log::file_names;
use crate::log::mapped_index::Preallocate;
use crate::log::offset_index::{IndexEntry, OffsetIndex};
use crate::log::time_index::TimeIndex;
use relay_proto::batch::{BatchHeader, HEADER_BYTES};
use relay_proto::records::RecordIter;
use relay_proto::Compression;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

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

/// What a recovery scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverySummary {
    pub batches: u64,
    pub valid_bytes: u64,
    pub truncated_bytes: u64,
    /// Why the tail was cut, when it was.
    pub truncation_reason: Option<String>,
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
    /// new segment.
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

    /// The batch that holds `offset`, found through the offset index and a
    /// forward scan of batch headers, stopping before `limit_position`.
    /// An index entry that does not point at the batch it names is never
    /// trusted: the indexes are rebuilt and the lookup starts from the segment
    /// start.
    pub fn find_batch(&mut self, offset: i64, limit_position: u64) -> Result<Option<BatchLocation>> {
        let start = self.offset_index.lookup(offset);
        if start.position > 0 {
            let points_at_batch = self
                .location_at(u64::from(start.position))
                .ok()
                .flatten()
                .is_some_and(|location| location.base_offset == start.offset);
            if !points_at_batch {
                tracing::warn!(
                    index = %self.offset_index.path().display(),
                    offset = start.offset,
                    position = start.position,
                    "offset index entry does not point at its batch; rebuilding the segment's indexes"
                );
                self.rebuild_indexes()?;
                return self.scan_for_offset(
                    IndexEntry {
                        offset: self.base_offset,
                        position: 0,
                    },
                    offset,
                    limit_position,
                );
            }
        }
        self.scan_for_offset(start, offset, limit_position)
    }

    fn scan_for_offset(&self, start: IndexEntry, offset: i64, limit_position: u64) -> Result<Option<BatchLocation>> {
        let mut position = u64::from(start.position);
        while position < limit_position.min(self.size_bytes) {
            let Some(location) = self.location_at(position)? else {
                return Ok(None);
            };
            if location.last_offset >= offset {
                return Ok(Some(location));
            }
            position += location.total_bytes;
        }
        Ok(None)
    }

    /// The first offset whose record timestamp is at or after `timestamp_ms`,
    /// with that record's timestamp, looking only before `limit_position`.
    /// Inside an uncompressed batch the exact record is found; a compressed
    /// batch is never decompressed here, so its base offset and first
    /// timestamp are returned.
    pub fn find_offset_for_timestamp(&mut self, timestamp_ms: i64, limit_position: u64) -> Result<Option<(i64, i64)>> {
        if self.max_timestamp_ms < timestamp_ms {
            return Ok(None);
        }
        let start_offset = self
            .time_index
            .last_before(timestamp_ms)
            .map_or(self.base_offset, |e| e.offset);
        let Some(mut location) = self.find_batch(start_offset, limit_position)? else {
            return Ok(None);
        };
        loop {
            if location.max_timestamp_ms >= timestamp_ms {
                return self.first_record_at_or_after(&location, timestamp_ms).map(Some);
            }
            let next = location.position + location.total_bytes;
            if next >= limit_position.min(self.size_bytes) {
                return Ok(None);
            }
            match self.location_at(next)? {
                Some(found) => location = found,
                None => return Ok(None),
            }
        }
    }

    fn first_record_at_or_after(&self, location: &BatchLocation, timestamp_ms: i64) -> Result<(i64, i64)> {
        let batch = self.read_at(location.position, location.total_bytes as usize)?;
        let header = BatchHeader::parse_whole(&batch)
            .map_err(|e| self.corrupt(location.position, e.to_string()))?
            .ok_or_else(|| self.corrupt(location.position, "short batch"))?;
        if header.compression() != Compression::None {
            return Ok(self.first_compressed_record_at_or_after(batch, location, timestamp_ms));
        }
        for record in RecordIter::of_uncompressed_batch(&batch, header.record_count() as usize) {
            let record = record.map_err(|e| self.corrupt(location.position, e.to_string()))?;
            let record_timestamp_ms = header.first_timestamp() + record.timestamp_delta_ms;
            if record_timestamp_ms >= timestamp_ms {
                return Ok((
                    location.base_offset + i64::from(record.offset_delta),
                    record_timestamp_ms,
                ));
            }
        }
        Ok((location.base_offset, header.first_timestamp()))
    }

    /// Decompresses a batch to find the exact record, as Kafka does for
    /// timestamp lookups (the only place the broker decompresses). A batch
    /// the codec cannot read answers with its base offset.
    fn first_compressed_record_at_or_after(
        &self,
        batch: Vec<u8>,
        location: &BatchLocation,
        timestamp_ms: i64,
    ) -> (i64, i64) {
        let first_timestamp = BatchHeader::parse(&batch)
            .ok()
            .flatten()
            .map_or(NO_TIMESTAMP, |h| h.first_timestamp());
        let mut bytes = bytes::Bytes::from(batch);
        match kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes) {
            Ok(set) => set
                .records
                .iter()
                .find(|record| record.timestamp >= timestamp_ms)
                .map_or((location.base_offset, first_timestamp), |record| {
                    (record.offset, record.timestamp)
                }),
            Err(error) => {
                tracing::warn!(segment = %self.log_path.display(), position = location.position, %error, "cannot decompress batch for a time lookup");
                (location.base_offset, first_timestamp)
            }
        }
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

    /// Scans every batch with its CRC, rebuilds both indexes and cuts the file
    /// after the last valid batch. Used after a crash.
    pub fn recover(&mut self) -> Result<RecoverySummary> {
        self.reset_indexes();
        let file_bytes = self.log.metadata().map_err(io_error("stat", &self.log_path))?.len();
        self.size_bytes = file_bytes;
        let mut position = 0u64;
        let mut batches = 0u64;
        let mut buffer = Vec::new();
        let mut truncation_reason = None;
        while position < file_bytes {
            match self.check_batch_at(position, &mut buffer) {
                Ok(()) => {
                    let header = BatchHeader::parse(&buffer).expect("checked").expect("whole");
                    if header.base_offset() != self.next_offset {
                        truncation_reason = Some(format!(
                            "batch base offset {} where {} was expected",
                            header.base_offset(),
                            self.next_offset
                        ));
                        break;
                    }
                    self.index_batch(position, &header);
                    self.next_offset = header.last_offset() + 1;
                    position += buffer.len() as u64;
                    batches += 1;
                }
                Err(reason) => {
                    truncation_reason = Some(reason);
                    break;
                }
            }
        }
        if position < file_bytes {
            self.log
                .set_len(position)
                .map_err(io_error("truncate", &self.log_path))?;
            self.faults
                .sync_data(&self.log)
                .map_err(io_error("fsync", &self.log_path))?;
        }
        self.size_bytes = position;
        Ok(RecoverySummary {
            batches,
            valid_bytes: position,
            truncated_bytes: file_bytes - position,
            truncation_reason,
        })
    }

    /// Reads the whole batch at `position` into `buffer` and checks its header
    /// and CRC; the error says why the bytes there are not a valid batch.
    fn check_batch_at(&self, position: u64, buffer: &mut Vec<u8>) -> std::result::Result<(), String> {
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
                Ok(Some(location)) if location.base_offset == self.next_offset => location,
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

    /// Rebuilds the indexes from batch headers (no CRC: the log was checked
    /// when written and when recovered).
    fn rebuild_indexes(&mut self) -> Result<()> {
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
        Ok(())
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
