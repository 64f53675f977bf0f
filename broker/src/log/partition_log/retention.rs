//! Deleting a partition log's oldest segments, by size, by age, or below an
//! offset. Only whole sealed segments that readers have been able to see are
//! deleted; the active segment never is. The log start moves forward by whole
//! segments.
//!
//! Locks: segments are taken out under `state` and their files deleted after
//! releasing it.

use super::PartitionLog;
use crate::log::checkpoint::sync_dir;
use crate::log::error::Result;
use crate::log::segment::{Segment, NO_TIMESTAMP};

/// What a retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
}

impl PartitionLog {
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
}
