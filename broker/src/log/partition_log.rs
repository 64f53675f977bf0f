//! The log of one partition: an ordered set of segments, the last one active,
//! with offset assignment, idempotent-producer checks, rolling, reads, time
//! lookups and the durability policy (Kafka's `UnifiedLog`, minus replication).
//!
//! Concurrency: one mutex guards the segments; appends write under it and
//! never fsync under it (except when rolling a segment). With `fsync =
//! "always"` an appender then waits for durability ([`durability`]): the
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
//!
//! # Layout
//! - this file: the state behind the two locks, opening, the log's bounds,
//!   clean close.
//! - [`append`]: validation, offset assignment, idempotent-producer checks,
//!   rolling to a new segment.
//! - [`durability`]: the fsync policy, group commit and poisoning.
//! - [`read`]: whole batches from an offset, and the offset for a time; a
//!   corrupt batch met there is set aside and the read goes past it.
//! - [`retention`]: deleting the oldest sealed segments, keeping what a
//!   caller-given floor protects up to the hard cap.

pub mod append;
pub mod durability;
pub mod read;
pub mod retention;

use crate::log::checkpoint::{mark_clean_shutdown, write_recovery_point};
use crate::log::clean_checkpoint::{FileStamp, PartitionCheckpoint, VerifiedSegment};
use crate::log::config::LogConfig;
use crate::log::error::{LogError, Result};
use crate::log::faults::FaultInjector;
use crate::log::producer_state::ProducerStates;
use crate::log::recovery::{self, LoadSummary};
use crate::log::segment::Segment;
use parking_lot::{Condvar, Mutex};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

pub use append::AppendInfo;
pub use read::ReadResult;
pub use retention::{RetentionFloor, RetentionOutcome};

/// Seconds per fsync of an active segment (exported by the broker's metrics).
pub const FSYNC_LATENCY_METRIC: &str = "relay_broker_fsync_latency_seconds";

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
    /// Times the active segment was rewritten to set a corrupt batch aside:
    /// a byte position taken before one is stale after it.
    rewrites: u64,
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
    /// Corrupt batches set aside since the log was opened (recovery included).
    corrupt_batches: AtomicU64,
    /// When a failed read was last logged, and how many failed since.
    read_failure_logged_ms: AtomicI64,
    read_failures_unlogged: AtomicU64,
}

impl PartitionLog {
    /// Opens (creating if needed) the partition in `dir`, recovering it.
    pub fn open(dir: &Path, config: LogConfig, faults: FaultInjector) -> Result<(Self, LoadSummary)> {
        Self::open_checkpointed(dir, config, faults, &PartitionCheckpoint::default())
    }

    /// [`PartitionLog::open`], told what the data directory's recovery
    /// checkpoint says about this partition.
    pub fn open_checkpointed(
        dir: &Path,
        config: LogConfig,
        faults: FaultInjector,
        checkpoint: &PartitionCheckpoint,
    ) -> Result<(Self, LoadSummary)> {
        config.validate().map_err(LogError::Config)?;
        let loaded = recovery::load(dir, &config, &faults, checkpoint)?;
        let mut state = LogState {
            segments: loaded.segments,
            producers: loaded.producers,
            visible: LogPoint {
                next_offset: 0,
                segment_base_offset: 0,
                position: 0,
            },
            closed: false,
            rewrites: 0,
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
            corrupt_batches: AtomicU64::new(loaded.summary.batches_set_aside as u64),
            read_failure_logged_ms: AtomicI64::new(i64::MIN),
            read_failures_unlogged: AtomicU64::new(0),
        };
        Ok((log, loaded.summary))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
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

    /// Corrupt batches set aside in quarantine files since the log was
    /// opened, those found by its recovery included.
    pub fn corrupt_batches(&self) -> u64 {
        self.corrupt_batches.load(Ordering::Relaxed)
    }

    pub fn is_poisoned(&self) -> bool {
        self.sync.lock().poisoned.is_some()
    }

    /// Flushes everything, seals the indexes and writes the clean-shutdown
    /// marker, so the next open need not rescan. Further appends are refused.
    /// A poisoned log is closed without the marker: its tail must be rescanned.
    pub fn close(&self) -> Result<()> {
        let Some(_) = self.close_for_checkpoint()? else {
            return Ok(());
        };
        let end = self.end_offset();
        write_recovery_point(&self.dir, end)?;
        mark_clean_shutdown(&self.dir)
    }

    /// Flushes everything and seals the indexes, refusing further appends,
    /// and returns the active segment as it is now, for the data directory's
    /// recovery checkpoint ([`crate::log::clean_checkpoint`]), which says
    /// the partition is clean. `None`: already closed, or poisoned (its tail
    /// must be rescanned).
    pub fn close_for_checkpoint(&self) -> Result<Option<VerifiedSegment>> {
        if !self.is_poisoned() {
            self.flush()?;
        }
        let mut state = self.state.lock();
        if state.closed {
            return Ok(None);
        }
        state.closed = true;
        if self.is_poisoned() {
            return Ok(None);
        }
        let active = state.active_mut();
        active.seal()?;
        let metadata = active
            .log_file()
            .metadata()
            .map_err(crate::log::error::io_error("stat", active.log_path()))?;
        Ok(Some(VerifiedSegment {
            base_offset: active.base_offset(),
            stamp: FileStamp::of(&metadata),
        }))
    }
}
