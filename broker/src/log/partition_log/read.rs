//! The read path of a partition log: whole batches from an offset (CRC
//! checked again before they are served) and the offset for a time. Reads see
//! only the visible end, so a record is never served and then lost in a
//! crash; they go on while the log is poisoned.
//!
//! Locks: only `state`. Lookups walk batch headers under it; the bulk read of
//! a fetch happens after releasing it.

use super::PartitionLog;
use crate::log::error::{io_error, LogError, Result};
use relay_proto::RecordBatches;
use std::os::unix::fs::FileExt;

/// Whole batches read from the log, with the bounds a fetch response reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    pub bytes: Vec<u8>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

impl PartitionLog {
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
}
