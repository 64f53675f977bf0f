//! Lookups inside one segment: the batch that holds an offset (through the
//! sparse offset index, then a forward walk of batch headers), the first
//! record at or after a time (through the time index), and the first record
//! with the largest timestamp (ListOffsets MAX_TIMESTAMP).
//!
//! A lookup by time that lands in a compressed batch decompresses that one
//! batch to find the exact record, as Kafka does; it is the only place the
//! log decompresses. Lookups never read past the limit position they are
//! given, so they see only what readers may see.

use super::{BatchLocation, Segment, NO_TIMESTAMP};
use crate::log::error::Result;
use crate::log::offset_index::IndexEntry;
use relay_proto::batch::BatchHeader;
use relay_proto::records::RecordIter;
use relay_proto::Compression;

impl Segment {
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
    /// The exact record is found inside a compressed batch too, by
    /// decompressing it; a batch the codec cannot read answers with its base
    /// offset and first timestamp.
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
        let fallback = (location.base_offset, location.max_timestamp_ms);
        let Some(records) = self.record_times(location)? else {
            return Ok(fallback);
        };
        Ok(records
            .into_iter()
            .find(|(_, record_timestamp_ms)| *record_timestamp_ms >= timestamp_ms)
            .unwrap_or(fallback))
    }

    /// The first visible record with the largest timestamp in this segment,
    /// as (offset, timestamp), looking only before `limit_position`; `None`
    /// when nothing is visible. The batch that first reached the segment's
    /// maximum is known without reading; when it lies past the visible limit
    /// (an active segment whose tail waits for its fsync) the visible batch
    /// headers are walked instead. Either way only the chosen batch is read
    /// whole, to name the record's own offset.
    pub fn find_max_timestamp_record(&mut self, limit_position: u64) -> Result<Option<(i64, i64)>> {
        if self.max_timestamp_ms == NO_TIMESTAMP || limit_position == 0 {
            return Ok(None);
        }
        let known = self
            .find_batch(self.offset_of_max_timestamp, limit_position)?
            .filter(|location| {
                location.max_timestamp_ms == self.max_timestamp_ms
                    && location.position + location.total_bytes <= limit_position
            });
        let location = match known {
            Some(location) => location,
            None => match self.first_batch_with_largest_timestamp(limit_position)? {
                Some(location) => location,
                None => return Ok(None),
            },
        };
        self.record_with_largest_timestamp(&location).map(Some)
    }

    /// Walks the batch headers before `limit_position`: the first batch whose
    /// max timestamp is the largest.
    fn first_batch_with_largest_timestamp(&self, limit_position: u64) -> Result<Option<BatchLocation>> {
        let mut best: Option<BatchLocation> = None;
        let mut position = 0;
        while position < limit_position.min(self.size_bytes) {
            let Some(location) = self.location_at(position)? else {
                break;
            };
            if best.is_none_or(|b| location.max_timestamp_ms > b.max_timestamp_ms) {
                best = Some(location);
            }
            position += location.total_bytes;
        }
        Ok(best)
    }

    /// The first record of the batch with the batch's largest record
    /// timestamp, as (offset, timestamp). A batch the codec cannot read
    /// answers with its base offset and header max timestamp.
    fn record_with_largest_timestamp(&self, location: &BatchLocation) -> Result<(i64, i64)> {
        let fallback = (location.base_offset, location.max_timestamp_ms);
        let Some(records) = self.record_times(location)? else {
            return Ok(fallback);
        };
        let best = records
            .into_iter()
            .fold(None, |best: Option<(i64, i64)>, record| match best {
                Some(b) if b.1 >= record.1 => Some(b),
                _ => Some(record),
            });
        Ok(best.unwrap_or(fallback))
    }

    /// Every record of the batch at `location` as (offset, timestamp),
    /// decompressing it when needed; `None` when the codec cannot read it.
    /// A log-append-time batch gives every record the batch's max timestamp,
    /// as Kafka does.
    fn record_times(&self, location: &BatchLocation) -> Result<Option<Vec<(i64, i64)>>> {
        let batch = self.read_at(location.position, location.total_bytes as usize)?;
        let header = BatchHeader::parse_whole(&batch)
            .map_err(|e| self.corrupt(location.position, e.to_string()))?
            .ok_or_else(|| self.corrupt(location.position, "short batch"))?;
        let append_time = header.is_log_append_time().then(|| header.max_timestamp());
        let mut times = Vec::with_capacity(header.record_count().max(0) as usize);
        if header.compression() == Compression::None {
            for record in RecordIter::of_uncompressed_batch(&batch, header.record_count() as usize) {
                let record = record.map_err(|e| self.corrupt(location.position, e.to_string()))?;
                let timestamp_ms = header.first_timestamp() + record.timestamp_delta_ms;
                times.push((
                    location.base_offset + i64::from(record.offset_delta),
                    append_time.unwrap_or(timestamp_ms),
                ));
            }
            return Ok(Some(times));
        }
        let mut bytes = bytes::Bytes::from(batch);
        match kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes) {
            Ok(set) => {
                times.extend(
                    set.records
                        .iter()
                        .map(|record| (record.offset, append_time.unwrap_or(record.timestamp))),
                );
                Ok(Some(times))
            }
            Err(error) => {
                tracing::warn!(segment = %self.log_path.display(), position = location.position, %error, "cannot decompress batch for a time lookup");
                Ok(None)
            }
        }
    }
}
