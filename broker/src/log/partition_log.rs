//! The log of one partition: an ordered set of segments, the last one active,
//! with offset assignment, idempotent-producer checks, rolling, reads, time
//! lookups and the durability policy (Kafka's `UnifiedLog`, minus replication).
//!
//! Concurrency: one mutex guards the segments; appends write under it and
//! never fsync under it (except when rolling a segment). With `fsync =
//! "always"` an appender then waits in [`PartitionLog::wait_durable`]: the
//! first waiter fsyncs the active segment and every append written before that
//! fsync started is covered by it, so concurrent appenders share one fsync
//! (group commit). Readers only see the visible end: the fsynced end under
//! `always`, the written end otherwise. So a record is never served and then
//! lost in a crash.
//!
//! A failed fsync poisons the partition: appends are refused until the log is
//! reopened (which rescans the unflushed tail), reads go on.
//!
//! Lock order: `state` may be held while taking `sync`, never the reverse.

use crate::log::checkpoint::{mark_clean_shutdown, sync_dir, write_recovery_point};
use crate::log::config::{FsyncPolicy, LogConfig};
use crate::log::error::{io_error, LogError, Result};
use crate::log::faults::FaultInjector;
use crate::log::producer_state::{ProducerStates, SequenceCheck};
use crate::log::recovery::{self, LoadSummary};
use crate::log::segment::{Segment, NO_TIMESTAMP};
use parking_lot::{Condvar, Mutex};
use relay_proto::batch::patch_base_offset;
use relay_proto::{BatchHeader, RecordBatches};
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Seconds per fsync of an active segment (exported by the broker's metrics).
pub const FSYNC_LATENCY_METRIC: &str = "relay_broker_fsync_latency_seconds";

/// Result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The batch was a retry of one already in the log; nothing was written.
    pub duplicate: bool,
    pub log_start_offset: i64,
}

/// Whole batches read from the log, with the bounds a fetch response reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    pub bytes: Vec<u8>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// What a retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
}

/// A point in the log: the next offset and the byte position where it will go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogPoint {
    next_offset: i64,
    segment_base_offset: i64,
    position: u64,
}

struct LogState {
    segments: BTreeMap<i64, Segment>,
    producers: ProducerStates,
    /// End of what readers may see.
    visible: LogPoint,
    closed: bool,
}

impl LogState {
    fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log has at least one segment")
    }
    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log has at least one segment")
    }
    fn end(&self) -> LogPoint {
        let active = self.active();
        LogPoint {
            next_offset: active.next_offset(),
            segment_base_offset: active.base_offset(),
            position: active.size_bytes(),
        }
    }
    fn log_start_offset(&self) -> i64 {
        self.segments
            .values()
            .next()
            .expect("a log has at least one segment")
            .base_offset()
    }
    /// Bytes of `segment` that readers may see.
    fn visible_limit(&self, segment: &Segment) -> u64 {
        match segment.base_offset().cmp(&self.visible.segment_base_offset) {
            std::cmp::Ordering::Less => segment.size_bytes(),
            std::cmp::Ordering::Equal => self.visible.position,
            std::cmp::Ordering::Greater => 0,
        }
    }
}

struct SyncState {
    /// Every offset below this is fsynced.
    durable_next_offset: i64,
    syncing: bool,
    last_sync: Instant,
    poisoned: Option<String>,
}

pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    faults: FaultInjector,
    state: Mutex<LogState>,
    sync: Mutex<SyncState>,
    synced: Condvar,
}

impl PartitionLog {
    /// Opens (creating if needed) the partition in `dir`, recovering it.
    pub fn open(dir: &Path, config: LogConfig, faults: FaultInjector) -> Result<(Self, LoadSummary)> {
        config.validate().map_err(LogError::Config)?;
        let loaded = recovery::load(dir, &config, &faults)?;
        let mut state = LogState {
            segments: loaded.segments,
            producers: loaded.producers,
            visible: LogPoint {
                next_offset: 0,
                segment_base_offset: 0,
                position: 0,
            },
            closed: false,
        };
        state.visible = state.end();
        let durable_next_offset = state.visible.next_offset;
        let log = Self {
            dir: dir.to_path_buf(),
            config,
            faults,
            state: Mutex::new(state),
            sync: Mutex::new(SyncState {
                durable_next_offset,
                syncing: false,
                last_sync: Instant::now(),
                poisoned: None,
            }),
            synced: Condvar::new(),
        };
        Ok((log, loaded.summary))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Appends a record set (one or more whole batches, as in a Produce
    /// request). Batches are validated (header and CRC) first and written with
    /// their base offsets patched in; nothing is decompressed. Returns once the
    /// append is as durable as the fsync policy promises.
    pub fn append(&self, records: &mut [u8]) -> Result<AppendInfo> {
        let info = self.append_unsynced(records)?;
        self.make_durable(&info)?;
        Ok(info)
    }

    /// The first half of [`PartitionLog::append`]: validates and writes, in
    /// order with other appends, without waiting for durability. A server
    /// calls this in request order and [`PartitionLog::make_durable`]
    /// concurrently, so one connection's requests keep their order while
    /// their fsyncs overlap.
    pub fn append_unsynced(&self, records: &mut [u8]) -> Result<AppendInfo> {
        let idempotent = self.validate(records)?;
        let mut state = self.state.lock();
        self.check_writable(&state)?;
        if idempotent {
            let header = BatchHeader::parse(records).expect("validated").expect("whole");
            if let SequenceCheck::Duplicate(original) = state.producers.check(&header)? {
                return Ok(AppendInfo {
                    base_offset: original.first_offset,
                    last_offset: original.last_offset,
                    duplicate: true,
                    log_start_offset: state.log_start_offset(),
                });
            }
        }
        self.write_batches(&mut state, records)
    }

    /// Waits until `info`'s append is as durable as the fsync policy promises
    /// (for a duplicate, the original append it points at).
    pub fn make_durable(&self, info: &AppendInfo) -> Result<()> {
        self.after_append(info.last_offset)
    }

    /// Checks every batch; returns whether the set is one idempotent batch.
    fn validate(&self, records: &[u8]) -> Result<bool> {
        let mut batch_count = 0;
        let mut idempotent = false;
        let mut batches = RecordBatches::new(records);
        loop {
            let position = batches.position();
            let header = match batches.next() {
                None => break,
                Some(Err(source)) => return Err(LogError::InvalidBatch { position, source }),
                Some(Ok((_, header, _))) => header,
            };
            if header.total_bytes() as u64 > self.config.segment_bytes {
                return Err(LogError::BatchLargerThanSegment {
                    batch_bytes: header.total_bytes(),
                    segment_bytes: self.config.segment_bytes,
                });
            }
            batch_count += 1;
            idempotent |= header.has_producer_id();
        }
        match batch_count {
            0 => Err(LogError::EmptyRecordSet),
            1 => Ok(idempotent),
            batch_count if idempotent => Err(LogError::MultipleIdempotentBatches { batch_count }),
            _ => Ok(false),
        }
    }

    fn check_writable(&self, state: &LogState) -> Result<()> {
        if state.closed {
            return Err(LogError::Closed { dir: self.dir.clone() });
        }
        if let Some(reason) = &self.sync.lock().poisoned {
            return Err(LogError::Poisoned {
                dir: self.dir.clone(),
                reason: reason.clone(),
            });
        }
        Ok(())
    }

    fn write_batches(&self, state: &mut LogState, records: &mut [u8]) -> Result<AppendInfo> {
        let base_offset = state.active().next_offset();
        let mut position = 0;
        while position < records.len() {
            let next_offset = state.active().next_offset();
            let total = BatchHeader::parse(&records[position..])
                .expect("validated")
                .expect("whole")
                .total_bytes();
            let batch = &mut records[position..position + total];
            patch_base_offset(batch, next_offset);
            let header = BatchHeader::parse(batch).expect("validated").expect("whole");
            if state.active().should_roll(total, header.last_offset(), &self.config) {
                self.roll(state)?;
            }
            state.active_mut().append(batch, &header)?;
            state.producers.record(&header);
            position += total;
        }
        if self.config.fsync != FsyncPolicy::Always {
            state.visible = state.end();
        }
        Ok(AppendInfo {
            base_offset,
            last_offset: state.active().next_offset() - 1,
            duplicate: false,
            log_start_offset: state.log_start_offset(),
        })
    }

    /// Seals the active segment and starts a new one. The old segment is
    /// fsynced first, so one fsync of the newest segment covers every append
    /// before it, and the recovery point can move past it.
    fn roll(&self, state: &mut LogState) -> Result<()> {
        let active = state.active_mut();
        if let Err(error) = active.sync() {
            self.poison(&error);
            return Err(error);
        }
        active.seal()?;
        let base_offset = active.next_offset();
        let segment = Segment::create(&self.dir, base_offset, &self.config, self.faults.clone())?;
        sync_dir(&self.dir)?;
        state.segments.insert(base_offset, segment);
        write_recovery_point(&self.dir, base_offset)?;
        tracing::debug!(dir = %self.dir.display(), base_offset, "rolled to a new segment");
        Ok(())
    }

    fn poison(&self, error: &LogError) {
        tracing::error!(dir = %self.dir.display(), %error, "fsync failed; partition refuses writes until restart");
        self.sync.lock().poisoned.get_or_insert_with(|| error.to_string());
    }

    fn after_append(&self, last_offset: i64) -> Result<()> {
        match self.config.fsync {
            FsyncPolicy::Always => self.wait_durable(last_offset + 1),
            FsyncPolicy::Interval => {
                let due = self.sync.lock().last_sync.elapsed() >= Duration::from_millis(self.config.fsync_interval_ms);
                if due {
                    self.flush()?;
                }
                Ok(())
            }
            FsyncPolicy::Never => Ok(()),
        }
    }

    /// Blocks until every offset below `needed_next_offset` is fsynced,
    /// fsyncing itself when no other caller is.
    fn wait_durable(&self, needed_next_offset: i64) -> Result<()> {
        let mut sync = self.sync.lock();
        loop {
            if let Some(reason) = &sync.poisoned {
                return Err(LogError::Poisoned {
                    dir: self.dir.clone(),
                    reason: reason.clone(),
                });
            }
            if sync.durable_next_offset >= needed_next_offset {
                return Ok(());
            }
            if sync.syncing {
                self.synced.wait(&mut sync);
                continue;
            }
            sync.syncing = true;
            drop(sync);
            let result = self.sync_active();
            sync = self.sync.lock();
            sync.syncing = false;
            sync.last_sync = Instant::now();
            match result {
                Ok(next_offset) => sync.durable_next_offset = sync.durable_next_offset.max(next_offset),
                Err(error) => {
                    tracing::error!(dir = %self.dir.display(), %error, "fsync failed; partition refuses writes until restart");
                    sync.poisoned.get_or_insert_with(|| error.to_string());
                }
            }
            self.synced.notify_all();
        }
    }

    /// fsyncs the active segment and makes what it covered visible.
    fn sync_active(&self) -> Result<i64> {
        let (file, path, point) = {
            let state = self.state.lock();
            (
                state.active().log_file(),
                state.active().log_path().to_path_buf(),
                state.end(),
            )
        };
        let started = Instant::now();
        self.faults.sync_data(&file).map_err(io_error("fsync", &path))?;
        metrics::histogram!(FSYNC_LATENCY_METRIC).record(started.elapsed().as_secs_f64());
        let mut state = self.state.lock();
        if point.next_offset > state.visible.next_offset {
            state.visible = point;
        }
        Ok(point.next_offset)
    }

    /// fsyncs everything appended so far (the `interval` timer and close use it).
    pub fn flush(&self) -> Result<()> {
        let end = self.state.lock().end().next_offset;
        self.wait_durable(end)
    }

    /// Reads whole batches starting with the one holding `offset`, up to about
    /// `max_bytes`. The first batch is returned whole even when larger, so a
    /// consumer always makes progress (as Kafka does since KIP-74). Every batch
    /// returned has passed its CRC check again.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        let (file, path, location, limit, high_watermark, log_start_offset) = {
            let mut state = self.state.lock();
            let high_watermark = state.visible.next_offset;
            let log_start_offset = state.log_start_offset();
            if offset < log_start_offset || offset > high_watermark {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start_offset,
                    high_watermark,
                });
            }
            let empty = ReadResult {
                bytes: Vec::new(),
                high_watermark,
                log_start_offset,
            };
            if offset == high_watermark {
                return Ok(empty);
            }
            let start_base = *state
                .segments
                .range(..=offset)
                .next_back()
                .expect("offset >= log start")
                .0;
            let bases: Vec<i64> = state.segments.range(start_base..).map(|(base, _)| *base).collect();
            let mut found = None;
            for base in bases {
                let limit = state.visible_limit(&state.segments[&base]);
                let segment = state.segments.get_mut(&base).expect("listed");
                if let Some(location) = segment.find_batch(offset, limit)? {
                    found = Some((segment.log_file(), segment.log_path().to_path_buf(), location, limit));
                    break;
                }
            }
            let Some((file, path, location, limit)) = found else {
                return Ok(empty);
            };
            (file, path, location, limit, high_watermark, log_start_offset)
        };
        let available = (limit - location.position) as usize;
        let length = max_bytes.min(available).max(location.total_bytes as usize);
        let mut bytes = vec![0u8; length];
        file.read_exact_at(&mut bytes, location.position)
            .map_err(io_error("read", &path))?;
        let mut whole = 0;
        for item in RecordBatches::new(&bytes) {
            match item {
                Ok((position, _, batch)) => whole = position + batch.len(),
                Err(relay_proto::BatchError::TrailingBytes { .. }) => break,
                Err(error) => {
                    return Err(LogError::Corrupt {
                        path,
                        position: location.position + whole as u64,
                        reason: error.to_string(),
                    })
                }
            }
        }
        bytes.truncate(whole);
        Ok(ReadResult {
            bytes,
            high_watermark,
            log_start_offset,
        })
    }

    /// The first visible offset whose record timestamp is at or after
    /// `timestamp_ms`, with that record's timestamp; `None` when every record
    /// is older.
    pub fn offset_for_time(&self, timestamp_ms: i64) -> Result<Option<(i64, i64)>> {
        let mut state = self.state.lock();
        let bases: Vec<i64> = state.segments.keys().copied().collect();
        for base in bases {
            let limit = state.visible_limit(&state.segments[&base]);
            if limit == 0 {
                break;
            }
            let segment = state.segments.get_mut(&base).expect("listed");
            if let Some(found) = segment.find_offset_for_timestamp(timestamp_ms, limit)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    pub fn log_start_offset(&self) -> i64 {
        self.state.lock().log_start_offset()
    }

    /// The next offset to be written (the log end offset).
    pub fn end_offset(&self) -> i64 {
        self.state.lock().end().next_offset
    }

    /// The end of what readers see: fsynced under `always`, written otherwise.
    pub fn high_watermark(&self) -> i64 {
        self.state.lock().visible.next_offset
    }

    pub fn segment_count(&self) -> usize {
        self.state.lock().segments.len()
    }

    pub fn size_bytes(&self) -> u64 {
        self.state.lock().segments.values().map(Segment::size_bytes).sum()
    }

    pub fn is_poisoned(&self) -> bool {
        self.sync.lock().poisoned.is_some()
    }

    /// Deletes the oldest sealed segments beyond `retention_bytes`, or whose
    /// newest record is older than `retention_ms` at `now_ms`.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<RetentionOutcome> {
        let config = &self.config;
        self.delete_oldest_while(|oldest, total_bytes| {
            let over_size =
                config.retention_bytes >= 0 && total_bytes - oldest.size_bytes() >= config.retention_bytes as u64;
            let over_age = config.retention_ms >= 0
                && oldest.max_timestamp_ms() != NO_TIMESTAMP
                && now_ms - oldest.max_timestamp_ms() > config.retention_ms;
            over_size || over_age
        })
    }

    /// Deletes the sealed segments that hold only offsets below `offset`
    /// (whole segments only; the log start moves to the first kept segment).
    pub fn delete_segments_before(&self, offset: i64) -> Result<usize> {
        Ok(self
            .delete_oldest_while(|oldest, _| oldest.next_offset() <= offset)?
            .segments_deleted)
    }

    /// Deletes oldest segments while `doomed(oldest, total_bytes)` says so. The
    /// active segment and anything not yet visible are never deleted.
    fn delete_oldest_while(&self, doomed: impl Fn(&Segment, u64) -> bool) -> Result<RetentionOutcome> {
        let mut deleted = Vec::new();
        {
            let mut state = self.state.lock();
            let mut total_bytes: u64 = state.segments.values().map(Segment::size_bytes).sum();
            while state.segments.len() > 1 {
                let oldest = state.segments.values().next().expect("non-empty");
                if oldest.next_offset() > state.visible.next_offset || !doomed(oldest, total_bytes) {
                    break;
                }
                total_bytes -= oldest.size_bytes();
                let (_, segment) = state.segments.pop_first().expect("non-empty");
                deleted.push(segment);
            }
        }
        let mut outcome = RetentionOutcome::default();
        for segment in deleted {
            outcome.segments_deleted += 1;
            outcome.bytes_deleted += segment.size_bytes();
            tracing::info!(segment = %segment.log_path().display(), "deleted segment");
            segment.delete()?;
        }
        if outcome.segments_deleted > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(outcome)
    }

    /// Flushes everything, seals the indexes and writes the clean-shutdown
    /// marker, so the next open need not rescan. Further appends are refused.
    /// A poisoned log is closed without the marker: its tail must be rescanned.
    pub fn close(&self) -> Result<()> {
        if !self.is_poisoned() {
            self.flush()?;
        }
        let mut state = self.state.lock();
        if state.closed {
            return Ok(());
        }
        state.closed = true;
        if self.is_poisoned() {
            return Ok(());
        }
        let end = state.end().next_offset;
        state.active_mut().seal()?;
        write_recovery_point(&self.dir, end)?;
        mark_clean_shutdown(&self.dir)
    }
}
