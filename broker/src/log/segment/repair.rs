//! Finding what in a segment is not a valid batch, and making it cost only
//! itself: [`Segment::recover`] (after a crash, and when a read meets a
//! corrupt batch) walks every batch with its CRC, sets each corrupt span
//! aside whole in a quarantine file ([`crate::log::quarantine`]), rewrites the
//! segment without it, and cuts only what was never a batch.
//!
//! Rules (`proto-spec/STORAGE.md`, "Recovery and corruption"):
//! - a batch is valid when its header parses, it lies wholly in the file, its
//!   CRC-32C matches, its base offset is at or past the expected one (a gap
//!   is offsets set aside earlier), its offsets fit the segment's index and,
//!   where the segment's end is known (a sealed segment: the next one's base;
//!   the active one of a running log: its next offset), it ends before it;
//! - after an invalid batch the walk resynchronises on the next valid batch
//!   (at the declared length first, else by searching); the bytes between
//!   are one corrupt span, its offsets the gap up to that batch's base;
//! - in the active segment after a crash, an invalid batch holding a sector
//!   the crash left unwritten (zeros from a sector boundary) starts a torn
//!   append: it and everything after it were never covered by an fsync, so
//!   never acknowledged, and are cut;
//! - what is left at the end with no valid batch in it is cut when it is all
//!   zeros and no offsets are missing before where the segment is known to
//!   end (a crash's zero-filled tail, never a batch) or, in the active
//!   segment after a crash, when it is not a chain of whole-length batches (a
//!   torn append, never acknowledged). Anything else is a corrupt span: in a
//!   sealed segment its offsets run up to the next segment's base; in the
//!   active segment of a running log up to its next offset; after a crash up
//!   to the end its batch headers declare, so no offset is handed out twice.

use super::Segment;
use crate::log::checkpoint::sync_dir;
use crate::log::error::{io_error, Result};
use crate::log::quarantine::{self, copy_range, COPY_CHUNK_BYTES_MAX, REWRITE_SUFFIX};
use relay_proto::batch::{BatchHeader, HEADER_BYTES};
use std::fs::OpenOptions;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

/// Bytes of a batch before its length field's count starts (offset + length).
const LOG_OVERHEAD_BYTES: u64 = 12;
/// Where the magic byte sits in a batch.
const MAGIC_POSITION: usize = 16;
const MAGIC_V2: u8 = 2;
/// The unit a disk writes whole or not at all.
const SECTOR_BYTES: u64 = 512;
/// Zeros from a sector boundary that count as a sector never written.
const UNWRITTEN_RUN_BYTES_MIN: u64 = 64;

/// Where a segment stands, which decides how its end is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentRole {
    /// Not the last segment: fsynced whole before the next began at `next_base`.
    Sealed { next_base: i64 },
    /// The last segment after a crash, whose tail may be an append torn by it.
    Active,
    /// The last segment of a running log: every append in it was whole and
    /// it ends at its in-memory next offset, so nothing at its end is torn.
    Live,
}

/// Bytes that held no valid batch, set aside in a quarantine file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptSpan {
    pub position: u64,
    pub bytes: u64,
    /// The offsets these bytes held: a gap for consumers.
    pub offsets: Range<i64>,
    pub reason: String,
    pub quarantine: PathBuf,
}

/// What a recovery scan found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverySummary {
    pub batches: u64,
    pub valid_bytes: u64,
    /// Bytes cut from the end: a zero-filled tail, or a torn append.
    pub truncated_bytes: u64,
    /// Why the tail was cut, when it was.
    pub truncation_reason: Option<String>,
    /// Corrupt spans set aside, in file order.
    pub set_aside: Vec<CorruptSpan>,
}

/// The plan a scan makes before anything is changed.
#[derive(Default)]
struct Plan {
    batches: u64,
    corrupt: Vec<CorruptSpan>,
    cut: Option<(u64, String)>,
    /// One past the last offset a valid batch or a corrupt span held.
    end_offset: i64,
}

fn be_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

impl Segment {
    /// Scans every batch with its CRC, sets corrupt spans aside, cuts only a
    /// zero-filled or torn tail, and rebuilds both indexes. Used after a crash
    /// and when a read finds a corrupt batch.
    pub fn recover(&mut self, role: SegmentRole) -> Result<RecoverySummary> {
        let file_bytes = self.log.metadata().map_err(io_error("stat", &self.log_path))?.len();
        self.size_bytes = file_bytes;
        let mut plan = self.plan(role, file_bytes)?;
        let cut_at = plan.cut.as_ref().map_or(file_bytes, |(position, _)| *position);
        let mut corrupt = std::mem::take(&mut plan.corrupt);
        if corrupt.is_empty() {
            if cut_at < file_bytes {
                self.log.set_len(cut_at).map_err(io_error("truncate", &self.log_path))?;
            }
        } else {
            let dir = self
                .log_path
                .parent()
                .expect("a segment lives in a directory")
                .to_path_buf();
            // Set aside before the rewrite: the bytes exist somewhere at every instant.
            for span in &mut corrupt {
                span.quarantine = quarantine::set_aside(&dir, &span.offsets, &self.log, span.position, span.bytes)?;
            }
            self.rewrite_without(&corrupt, cut_at)?;
        }
        self.finish(plan, corrupt, file_bytes, cut_at)
    }

    fn finish(
        &mut self,
        plan: Plan,
        set_aside: Vec<CorruptSpan>,
        file_bytes: u64,
        cut_at: u64,
    ) -> Result<RecoverySummary> {
        // What the scan kept may still be only in the page cache (a process
        // crash keeps it there): it is served and counted as durable from now
        // on, so make it durable before that.
        self.faults
            .sync_data(&self.log)
            .map_err(io_error("fsync", &self.log_path))?;
        self.size_bytes = self.log.metadata().map_err(io_error("stat", &self.log_path))?.len();
        self.rebuild_indexes()?;
        self.next_offset = self.next_offset.max(plan.end_offset);
        for span in &set_aside {
            tracing::error!(
                segment = %self.log_path.display(),
                position = span.position,
                bytes = span.bytes,
                offsets = %format!("{}..{}", span.offsets.start, span.offsets.end),
                quarantine = %span.quarantine.display(),
                reason = %span.reason,
                "corrupt batch set aside; its offsets are a gap for consumers, every other batch is served"
            );
        }
        Ok(RecoverySummary {
            batches: plan.batches,
            valid_bytes: self.size_bytes,
            truncated_bytes: file_bytes - cut_at,
            truncation_reason: plan.cut.map(|(_, reason)| reason),
            set_aside,
        })
    }

    /// Walks the file and decides what is kept, set aside and cut.
    fn plan(&self, role: SegmentRole, file_bytes: u64) -> Result<Plan> {
        let upper = match role {
            SegmentRole::Sealed { next_base } => Some(next_base),
            SegmentRole::Live => Some(self.next_offset),
            SegmentRole::Active => None,
        };
        let mut plan = Plan {
            end_offset: self.base_offset,
            ..Plan::default()
        };
        let mut buffer = Vec::new();
        let mut position = 0u64;
        while position < file_bytes {
            let reason = match self.valid_batch_at(position, plan.end_offset, upper, &mut buffer) {
                Ok(last_offset) => {
                    plan.batches += 1;
                    plan.end_offset = last_offset + 1;
                    position += buffer.len() as u64;
                    continue;
                }
                Err(reason) => reason,
            };
            let resynced = self.resync(position, plan.end_offset, upper, file_bytes, &mut buffer)?;
            let invalid_end = resynced.map_or(file_bytes, |(next, _)| next);
            if role == SegmentRole::Active && self.shows_unwritten_sectors(position, invalid_end)? {
                // Bytes the crash left unwritten: no fsync covered them, nor
                // anything appended after them. Never acknowledged.
                plan.cut = Some((position, format!("torn append, unwritten sectors ({reason})")));
                break;
            }
            if let Some((next, next_base)) = resynced {
                plan.corrupt
                    .push(self.span(position, next - position, plan.end_offset..next_base, reason));
                plan.end_offset = next_base;
                position = next;
                continue;
            }
            self.judge_tail(&mut plan, role, position, file_bytes, reason)?;
            break;
        }
        Ok(plan)
    }

    fn span(&self, position: u64, bytes: u64, offsets: Range<i64>, reason: String) -> CorruptSpan {
        CorruptSpan {
            position,
            bytes,
            offsets,
            reason,
            quarantine: PathBuf::new(),
        }
    }

    /// Decides what the bytes from `position` to the end, which hold no valid
    /// batch, are: a tail to cut, or a corrupt span to set aside.
    fn judge_tail(
        &self,
        plan: &mut Plan,
        role: SegmentRole,
        position: u64,
        file_bytes: u64,
        reason: String,
    ) -> Result<()> {
        let expected = plan.end_offset;
        // Where the offsets of this segment are known to end, when they are.
        let known_end = match role {
            SegmentRole::Sealed { next_base } => Some(next_base),
            SegmentRole::Live => Some(self.next_offset),
            SegmentRole::Active => None,
        };
        let loses_offsets = known_end.is_some_and(|end| end > expected);
        if !loses_offsets && self.all_zero(position, file_bytes)? {
            plan.cut = Some((position, format!("zero-filled tail ({reason})")));
            return Ok(());
        }
        let offsets = match (role, known_end) {
            (_, Some(end)) => expected..end.max(expected),
            (_, None) => match self.declared_offsets(position, file_bytes)? {
                Some(count) => expected..expected + count,
                None => {
                    plan.cut = Some((position, format!("torn append ({reason})")));
                    return Ok(());
                }
            },
        };
        plan.end_offset = offsets.end;
        plan.corrupt
            .push(self.span(position, file_bytes - position, offsets, reason));
        Ok(())
    }

    /// The last offset of the valid batch at `position` (read into `buffer`),
    /// or why the bytes there are not one.
    fn valid_batch_at(
        &self,
        position: u64,
        expected: i64,
        upper: Option<i64>,
        buffer: &mut Vec<u8>,
    ) -> std::result::Result<i64, String> {
        self.check_batch_at(position, buffer)?;
        let header = BatchHeader::parse(buffer).expect("checked").expect("whole");
        if header.base_offset() < expected {
            return Err(format!(
                "batch base offset {} is below {expected}, where the one before it ended",
                header.base_offset()
            ));
        }
        if header.last_offset() - self.base_offset > i64::from(u32::MAX) {
            return Err(format!(
                "batch ends at offset {}, beyond what a segment based at {} can index",
                header.last_offset(),
                self.base_offset
            ));
        }
        if let Some(upper) = upper.filter(|upper| header.last_offset() >= *upper) {
            return Err(format!(
                "batch ends at offset {}, at or past the next segment's base {upper}",
                header.last_offset()
            ));
        }
        Ok(header.last_offset())
    }

    /// The next valid batch after the invalid one at `from`: where its
    /// declared length ends first, else the first place a valid batch starts.
    /// Returns its position and base offset.
    fn resync(
        &self,
        from: u64,
        expected: i64,
        upper: Option<i64>,
        file_bytes: u64,
        buffer: &mut Vec<u8>,
    ) -> Result<Option<(u64, i64)>> {
        let mut found = |position: u64| -> Option<(u64, i64)> {
            self.valid_batch_at(position, expected, upper, buffer).ok()?;
            let header = BatchHeader::parse(buffer).ok()??;
            Some((position, header.base_offset()))
        };
        if let Ok(Some(header)) = self.read_header(from) {
            let declared = LOG_OVERHEAD_BYTES as i64 + i64::from(be_i32(&header, 8));
            if declared >= HEADER_BYTES as i64 && from + declared as u64 + HEADER_BYTES as u64 <= file_bytes {
                if let Some(hit) = found(from + declared as u64) {
                    return Ok(Some(hit));
                }
            }
        }
        let mut chunk = vec![0u8; COPY_CHUNK_BYTES_MAX];
        let mut start = from + 1;
        while start + HEADER_BYTES as u64 <= file_bytes {
            let length = (file_bytes - start).min(chunk.len() as u64) as usize;
            self.log
                .read_exact_at(&mut chunk[..length], start)
                .map_err(io_error("read", &self.log_path))?;
            let candidates = length.saturating_sub(MAGIC_POSITION);
            for at in (0..candidates).filter(|&at| chunk[at + MAGIC_POSITION] == MAGIC_V2) {
                if let Some(hit) = found(start + at as u64) {
                    return Ok(Some(hit));
                }
            }
            start += candidates.max(1) as u64;
        }
        Ok(None)
    }

    /// Whether the invalid bytes from `from` to `to` hold a sector left
    /// unwritten: from a [`SECTOR_BYTES`] boundary, zeros to the sector's end
    /// or `to`, at least [`UNWRITTEN_RUN_BYTES_MIN`] of them. A crash leaves
    /// such holes where pages never reached the disk; a flipped bit does not
    /// make them, and record bytes (JSON text) do not hold them.
    fn shows_unwritten_sectors(&self, from: u64, to: u64) -> Result<bool> {
        let mut sector = from.div_ceil(SECTOR_BYTES) * SECTOR_BYTES;
        while sector < to {
            let end = (sector + SECTOR_BYTES).min(to);
            if end - sector >= UNWRITTEN_RUN_BYTES_MIN && self.all_zero(sector, end)? {
                return Ok(true);
            }
            sector += SECTOR_BYTES;
        }
        Ok(false)
    }

    fn all_zero(&self, from: u64, to: u64) -> Result<bool> {
        let mut chunk = vec![0u8; COPY_CHUNK_BYTES_MAX.min((to - from) as usize)];
        let mut position = from;
        while position < to {
            let length = (to - position).min(chunk.len() as u64) as usize;
            self.log
                .read_exact_at(&mut chunk[..length], position)
                .map_err(io_error("read", &self.log_path))?;
            if chunk[..length].iter().any(|&byte| byte != 0) {
                return Ok(false);
            }
            position += length as u64;
        }
        Ok(true)
    }

    /// How many offsets the whole-length batches from `from` to `to` declare,
    /// or `None` when their length fields do not chain exactly to `to` (a
    /// torn append). Each batch counts the larger of its last offset delta
    /// plus one and its record count (either may be the corrupt field; both
    /// are bounded by its bytes), so no acknowledged offset is reused.
    fn declared_offsets(&self, from: u64, to: u64) -> Result<Option<i64>> {
        let mut position = from;
        let mut count = 0i64;
        while position < to {
            let Some(header) = self.read_header(position)? else {
                return Ok(None);
            };
            let total = LOG_OVERHEAD_BYTES as i64 + i64::from(be_i32(&header, 8));
            if total < HEADER_BYTES as i64 || position + total as u64 > to {
                return Ok(None);
            }
            let last_offset_delta = i64::from(be_i32(&header, 23));
            let record_count = i64::from(be_i32(&header, 57));
            count += (last_offset_delta + 1).max(record_count).clamp(1, total);
            position += total as u64;
        }
        Ok(Some(count))
    }

    /// Replaces the log file by a copy without `spans` and without the bytes
    /// from `cut_at`, made durable before it takes the old file's name.
    fn rewrite_without(&mut self, spans: &[CorruptSpan], cut_at: u64) -> Result<()> {
        let temporary = self.log_path.with_extension(&REWRITE_SUFFIX[1..]);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temporary)
            .map_err(io_error("create", &temporary))?;
        let mut from = 0u64;
        let mut written = 0u64;
        let keep = |start: u64, end: u64, written: &mut u64| -> Result<()> {
            copy_range(&self.log, start, end - start, &file, *written).map_err(io_error("copy into", &temporary))?;
            *written += end - start;
            Ok(())
        };
        for span in spans.iter().filter(|span| span.position < cut_at) {
            keep(from, span.position, &mut written)?;
            from = span.position + span.bytes;
        }
        if from < cut_at {
            keep(from, cut_at, &mut written)?;
        }
        self.faults.sync_data(&file).map_err(io_error("fsync", &temporary))?;
        std::fs::rename(&temporary, &self.log_path).map_err(io_error("rename", &temporary))?;
        sync_dir(self.log_path.parent().expect("a segment lives in a directory"))?;
        self.log = Arc::new(file);
        self.size_bytes = written;
        Ok(())
    }
}
