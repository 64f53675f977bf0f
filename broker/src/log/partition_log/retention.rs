//! Deleting a partition log's oldest segments, by size, by age, or below an
//! offset. Only whole sealed segments that readers have been able to see are
//! deleted; the active segment never is. The log start moves forward by whole
//! segments.
//!
//! Protection: the caller may name a floor, the lowest offset some reader it
//! protects has not read ([`RetentionFloor`]). A segment holding any offset
//! at or above the floor is kept even when retention_bytes or retention_ms
//! doom it, until the log is larger than `retention_bytes_hard`
//! ([`crate::log::LogConfig::retention_hard_bytes_max`]); then doomed
//! segments go, oldest first, until the log fits the cap again, and the
//! outcome names the unread offsets deleted. Protection only keeps: it never
//! deletes a segment plain retention keeps. Who the readers are is the
//! caller's business; the log knows offsets, not groups.
//!
//! Locks: segments are taken out under `state` and their files deleted after
//! releasing it.

use super::{LogState, PartitionLog};
use crate::log::checkpoint::sync_dir;
use crate::log::config::LogConfig;
use crate::log::error::Result;
use crate::log::segment::{Segment, NO_TIMESTAMP};
use std::ops::Range;

/// What a retention pass deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
    /// Every offset deleted (empty when nothing was).
    pub offsets_deleted: Range<i64>,
    /// The deleted offsets at or above the floor, which protected readers had
    /// not read: deleted because the log passed `retention_bytes_hard`.
    pub unread_offsets_deleted: Range<i64>,
}

/// The offsets retention keeps for readers that have not read them yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionFloor {
    /// Nobody is protected: plain retention.
    Unprotected,
    /// Keep every offset at or above this one, up to the hard cap.
    KeepFrom(i64),
}

impl PartitionLog {
    /// Deletes the oldest sealed segments beyond `retention_bytes`, or whose
    /// newest record is older than `retention_ms` at `now_ms`, except those
    /// `floor` protects while the log is within `retention_bytes_hard`.
    pub fn enforce_retention(&self, now_ms: i64, floor: RetentionFloor) -> Result<RetentionOutcome> {
        let hard_bytes_max = self.config.retention_hard_bytes_max();
        let mut outcome = self.delete_oldest_while(|oldest, total_bytes| {
            doomed(&self.config, now_ms, oldest, total_bytes)
                && (!protects(floor, oldest) || hard_bytes_max.is_some_and(|hard| total_bytes > hard))
        })?;
        if let RetentionFloor::KeepFrom(floor) = floor {
            let unread_start = floor.max(outcome.offsets_deleted.start);
            if unread_start < outcome.offsets_deleted.end {
                outcome.unread_offsets_deleted = unread_start..outcome.offsets_deleted.end;
            }
        }
        Ok(outcome)
    }

    /// Bytes kept now only because `floor` protects them: what plain retention
    /// would delete at `now_ms` minus what [`Self::enforce_retention`] with
    /// `floor` would. Zero when nothing is protected.
    pub fn retention_protected_bytes(&self, now_ms: i64, floor: RetentionFloor) -> u64 {
        let hard_bytes_max = self.config.retention_hard_bytes_max();
        let state = self.state.lock();
        let plain = doomed_prefix(&state, |oldest, total| doomed(&self.config, now_ms, oldest, total));
        let protected = doomed_prefix(&state, |oldest, total| {
            doomed(&self.config, now_ms, oldest, total)
                && (!protects(floor, oldest) || hard_bytes_max.is_some_and(|hard| total > hard))
        });
        state
            .segments
            .values()
            .take(plain)
            .skip(protected)
            .map(Segment::size_bytes)
            .sum()
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
        let deleted: Vec<Segment> = {
            let mut state = self.state.lock();
            let count = doomed_prefix(&state, doomed);
            (0..count)
                .map(|_| state.segments.pop_first().expect("counted").1)
                .collect()
        };
        let mut outcome = RetentionOutcome::default();
        if let (Some(first), Some(last)) = (deleted.first(), deleted.last()) {
            outcome.offsets_deleted = first.base_offset()..last.next_offset();
        }
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
}

/// How many of the oldest segments `doomed(oldest, total_bytes)` dooms, each
/// judged with the bytes left once the ones before it are gone. The active
/// segment and segments not yet visible are never counted.
fn doomed_prefix(state: &LogState, doomed: impl Fn(&Segment, u64) -> bool) -> usize {
    let mut total_bytes: u64 = state.segments.values().map(Segment::size_bytes).sum();
    let sealed = state.segments.len() - 1;
    let mut count = 0;
    for segment in state.segments.values().take(sealed) {
        if segment.next_offset() > state.visible.next_offset || !doomed(segment, total_bytes) {
            break;
        }
        total_bytes -= segment.size_bytes();
        count += 1;
    }
    count
}

/// Plain retention: the oldest segment goes when the log without it still
/// holds `retention_bytes` (Kafka's rule), or when its newest record is older
/// than `retention_ms`.
fn doomed(config: &LogConfig, now_ms: i64, oldest: &Segment, total_bytes: u64) -> bool {
    let over_size = config.retention_bytes >= 0 && total_bytes - oldest.size_bytes() >= config.retention_bytes as u64;
    let over_age = config.retention_ms >= 0
        && oldest.max_timestamp_ms() != NO_TIMESTAMP
        && now_ms - oldest.max_timestamp_ms() > config.retention_ms;
    over_size || over_age
}

/// Whether `floor` keeps `segment`: it holds an offset at or above the floor.
fn protects(floor: RetentionFloor, segment: &Segment) -> bool {
    match floor {
        RetentionFloor::Unprotected => false,
        RetentionFloor::KeepFrom(offset) => segment.next_offset() > offset,
    }
}
