//! The read path of a partition log: whole batches from an offset (CRC
//! checked again before they are served), the offset for a time and the
//! offset of the largest timestamp. Reads see
//! only the visible end, so a record is never served and then lost in a
//! crash; they go on while the log is poisoned.
//!
//! A corrupt batch met by a read (bit rot in a segment recovery trusted) is
//! set aside once, as recovery would ([`crate::log::segment::repair`]): its
//! segment is rewritten without it, one ERROR names it, the counter behind
//! `relay_broker_corrupt_batches_total` moves, and the read starts over. A
//! read at an offset the set-aside batch held then answers with the next
//! batch, whose base offset is higher: consumers see the gap as a jump. A
//! read inside a gap at the end of the log, with no batch after it yet,
//! answers empty with the high watermark at the offset asked for.
//! Batches after a corrupt one in the same read are not served with it; the
//! next read starts at the corrupt one.
//!
//! Locks: only `state`. Lookups walk batch headers under it; the bulk read of
//! a fetch happens after releasing it; setting aside takes it again.

use super::{LogState, PartitionLog};
use crate::log::error::{io_error, LogError, Result};
use crate::log::segment::{SegmentRole, NO_TIMESTAMP};
use relay_proto::RecordBatches;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;

/// Whole batches read from the log, with the bounds a fetch response reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    pub bytes: Vec<u8>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// Whether a read may return a first batch larger than its byte limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstBatch {
    /// Whole even when larger: the reader always makes progress.
    Whole,
    /// Only within the limit: a larger first batch reads nothing.
    WithinLimit,
}

/// Least time between two ERROR lines about failed reads of one partition:
/// a read that keeps failing must not flood the log.
pub const READ_FAILURE_LOG_INTERVAL_MS: i64 = 60_000;

/// Corrupt spans one read may set aside before it gives up and fails.
pub const READ_SET_ASIDE_MAX: usize = 8;

/// Why one attempt at a read failed.
enum Failure {
    /// Corrupt bytes in the segment based at `segment_base`.
    Corrupt {
        segment_base: i64,
        error: LogError,
    },
    Other(LogError),
}

impl From<LogError> for Failure {
    fn from(error: LogError) -> Self {
        Failure::Other(error)
    }
}

fn corrupt_in(segment_base: i64) -> impl FnOnce(LogError) -> Failure {
    move |error| match error {
        LogError::Corrupt { .. } => Failure::Corrupt { segment_base, error },
        other => Failure::Other(other),
    }
}

impl PartitionLog {
    /// Reads whole batches starting with the one holding `offset` (or, when
    /// that offset was set aside with a corrupt batch, the next batch), up to
    /// about `max_bytes`. The first batch is returned whole even when larger,
    /// so a consumer always makes progress (as Kafka does since KIP-74). Every
    /// batch returned has passed its CRC check again.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        self.retrying_corrupt(|| self.read_once(offset, max_bytes, FirstBatch::Whole))
    }

    /// As [`PartitionLog::read`], but never more than `max_bytes`: when the
    /// first batch is larger, nothing is read (the bounds are still
    /// answered). What a fetch reads for every partition but the first
    /// non-empty one (KIP-74: only that one may exceed the limits).
    pub fn read_within(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        self.retrying_corrupt(|| self.read_once(offset, max_bytes, FirstBatch::WithinLimit))
    }

    /// The first visible offset whose record timestamp is at or after
    /// `timestamp_ms`, with that record's timestamp; `None` when every record
    /// is older.
    pub fn offset_for_time(&self, timestamp_ms: i64) -> Result<Option<(i64, i64)>> {
        self.retrying_corrupt(|| self.offset_for_time_once(timestamp_ms))
    }

    /// The first visible record with the largest timestamp, as (offset,
    /// timestamp); `None` when nothing is visible (ListOffsets MAX_TIMESTAMP).
    pub fn offset_for_max_timestamp(&self) -> Result<Option<(i64, i64)>> {
        self.retrying_corrupt(|| self.offset_for_max_timestamp_once())
    }

    /// Whether a failed read of this log is to be logged now: at most once
    /// per [`READ_FAILURE_LOG_INTERVAL_MS`]. Returns the failures not logged
    /// since the last line.
    pub fn read_failure_to_log(&self) -> Option<u64> {
        let now = relay_proto::clock::now_ms();
        let last = self.read_failure_logged_ms.load(Ordering::Relaxed);
        let due = now.saturating_sub(last) >= READ_FAILURE_LOG_INTERVAL_MS
            && self
                .read_failure_logged_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if due {
            Some(self.read_failures_unlogged.swap(0, Ordering::Relaxed))
        } else {
            self.read_failures_unlogged.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// Runs `attempt`, setting aside the corrupt span it meets and running it
    /// again, at most [`READ_SET_ASIDE_MAX`] times.
    fn retrying_corrupt<T>(&self, mut attempt: impl FnMut() -> std::result::Result<T, Failure>) -> Result<T> {
        let mut set_aside = 0;
        loop {
            match attempt() {
                Ok(value) => return Ok(value),
                Err(Failure::Other(error)) => return Err(error),
                Err(Failure::Corrupt { segment_base, error }) => {
                    if set_aside == READ_SET_ASIDE_MAX || !self.set_aside_corrupt(segment_base)? {
                        return Err(error);
                    }
                    set_aside += 1;
                }
            }
        }
    }

    /// Rescans the segment based at `segment_base` and sets its corrupt
    /// batches aside. Returns whether anything changed (a read that failed
    /// for another reason must not loop).
    fn set_aside_corrupt(&self, segment_base: i64) -> Result<bool> {
        let mut state = self.state.lock();
        let next_base = state.segments.range(segment_base + 1..).next().map(|(base, _)| *base);
        let role = next_base.map_or(SegmentRole::Live, |next_base| SegmentRole::Sealed { next_base });
        let Some(segment) = state.segments.get_mut(&segment_base) else {
            // Retention deleted it meanwhile: the read starts over without it.
            return Ok(true);
        };
        let next_offset = segment.next_offset();
        let result = segment.recover(role)?;
        segment.skip_to(next_offset);
        if next_base.is_some() {
            segment.seal()?;
        } else {
            // The rewrite made the whole file durable, and moved positions.
            state.rewrites += 1;
            state.visible = state.end();
        }
        self.corrupt_batches
            .fetch_add(result.set_aside.len() as u64, Ordering::Relaxed);
        Ok(!result.set_aside.is_empty() || result.truncated_bytes > 0)
    }

    fn read_once(&self, offset: i64, max_bytes: usize, first: FirstBatch) -> std::result::Result<ReadResult, Failure> {
        let (segment_base, file, path, location, limit, high_watermark, log_start_offset) = {
            let mut state = self.state.lock();
            let high_watermark = state.visible.next_offset;
            let log_start_offset = state.log_start_offset();
            if offset < log_start_offset || offset > high_watermark {
                return Err(Failure::Other(LogError::OffsetOutOfRange {
                    offset,
                    log_start_offset,
                    high_watermark,
                }));
            }
            let empty = ReadResult {
                bytes: Vec::new(),
                high_watermark,
                log_start_offset,
            };
            if offset == high_watermark {
                return Ok(empty);
            }
            let Some((base, file, path, location, limit)) = find(&mut state, offset)? else {
                // Below the high watermark with no batch after it: the offset
                // is in a gap at the end of the log (a set-aside last batch).
                // Nothing is readable until a later batch is written, so the
                // reader is told it is at the end rather than left waiting.
                return Ok(ReadResult {
                    high_watermark: offset,
                    ..empty
                });
            };
            (base, file, path, location, limit, high_watermark, log_start_offset)
        };
        if first == FirstBatch::WithinLimit && location.total_bytes as usize > max_bytes {
            return Ok(ReadResult {
                bytes: Vec::new(),
                high_watermark,
                log_start_offset,
            });
        }
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
                Err(_) if whole > 0 => break,
                Err(error) => {
                    return Err(Failure::Corrupt {
                        segment_base,
                        error: LogError::Corrupt {
                            path,
                            position: location.position,
                            reason: error.to_string(),
                        },
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

    fn offset_for_time_once(&self, timestamp_ms: i64) -> std::result::Result<Option<(i64, i64)>, Failure> {
        let mut state = self.state.lock();
        let bases: Vec<i64> = state.segments.keys().copied().collect();
        for base in bases {
            let limit = state.visible_limit(&state.segments[&base]);
            if limit == 0 {
                break;
            }
            let segment = state.segments.get_mut(&base).expect("listed");
            if let Some(found) = segment
                .find_offset_for_timestamp(timestamp_ms, limit)
                .map_err(corrupt_in(base))?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

impl PartitionLog {
    /// Segments are visited by their max timestamp, largest first (earliest
    /// on a tie), so usually one batch is read. Only the active segment's
    /// maximum can overstate what is visible (a tail waiting for its fsync):
    /// its answer may be smaller, and the next candidates are then compared
    /// with it, an earlier offset winning a tie.
    fn offset_for_max_timestamp_once(&self) -> std::result::Result<Option<(i64, i64)>, Failure> {
        let mut state = self.state.lock();
        let mut candidates: Vec<(i64, i64)> = state
            .segments
            .iter()
            .filter(|(_, segment)| state.visible_limit(segment) > 0)
            .map(|(base, segment)| (segment.max_timestamp_ms(), *base))
            .filter(|(max_timestamp_ms, _)| *max_timestamp_ms != NO_TIMESTAMP)
            .collect();
        candidates.sort_by_key(|(max_timestamp_ms, base)| (std::cmp::Reverse(*max_timestamp_ms), *base));
        let mut best: Option<(i64, i64)> = None;
        for (bound_ms, base) in candidates {
            if best.is_some_and(|(offset, timestamp_ms)| {
                bound_ms < timestamp_ms || (bound_ms == timestamp_ms && base > offset)
            }) {
                break;
            }
            let limit = state.visible_limit(&state.segments[&base]);
            let segment = state.segments.get_mut(&base).expect("listed");
            let Some(found) = segment.find_max_timestamp_record(limit).map_err(corrupt_in(base))? else {
                continue;
            };
            if best.is_none_or(|(offset, timestamp_ms)| {
                found.1 > timestamp_ms || (found.1 == timestamp_ms && found.0 < offset)
            }) {
                best = Some(found);
            }
        }
        Ok(best)
    }
}

/// Where the batch holding `offset` (or the first after it) is: its
/// segment's base, file and path, its location and the segment's visible
/// limit.
type Found = (
    i64,
    std::sync::Arc<std::fs::File>,
    std::path::PathBuf,
    crate::log::segment::BatchLocation,
    u64,
);

fn find(state: &mut LogState, offset: i64) -> std::result::Result<Option<Found>, Failure> {
    let start_base = *state
        .segments
        .range(..=offset)
        .next_back()
        .expect("offset >= log start")
        .0;
    let bases: Vec<i64> = state.segments.range(start_base..).map(|(base, _)| *base).collect();
    for base in bases {
        let limit = state.visible_limit(&state.segments[&base]);
        let segment = state.segments.get_mut(&base).expect("listed");
        if let Some(location) = segment.find_batch(offset, limit).map_err(corrupt_in(base))? {
            return Ok(Some((
                base,
                segment.log_file(),
                segment.log_path().to_path_buf(),
                location,
                limit,
            )));
        }
    }
    Ok(None)
}
