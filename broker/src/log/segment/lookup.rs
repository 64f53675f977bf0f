//! Lookups inside one segment: the batch that holds an offset (through the
//! sparse offset index, then a forward walk of batch headers) and the first
//! record at or after a time (through the time index).
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
}
