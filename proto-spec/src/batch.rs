//! Zero-copy view of a Kafka record batch v2 (magic 2) header.
//!
//! Byte layout (big-endian; `proto-spec/STORAGE.md` has the full table):
//!
//! ```text
//! 0   base_offset            i64   patched by the broker; outside the CRC
//! 8   batch_length           i32   bytes after this field (total - 12)
//! 12  partition_leader_epoch i32
//! 16  magic                  i8    must be 2
//! 17  crc                    u32   CRC-32C of bytes 21..end
//! 21  attributes             i16   bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control
//! 23  last_offset_delta      i32
//! 27  first_timestamp        i64
//! 35  max_timestamp          i64
//! 43  producer_id            i64
//! 51  producer_epoch         i16
//! 53  base_sequence          i32
//! 57  record_count           i32
//! 61  records...
//! ```
//!
//! This module never allocates and never decompresses: it reads fixed
//! positions and checks the CRC over the bytes as they are.

pub use crate::crc::{CRC_COVERED_START, CRC_POSITION};

use crate::crc::batch_crc;
use crate::error::{BatchError, Result};

/// Bytes of a v2 batch header, up to the first record.
pub const HEADER_BYTES: usize = 61;
/// Bytes before the part that `batch_length` counts: base offset + length.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// Position of the magic byte.
pub const MAGIC_POSITION: usize = 16;
/// The only record batch format Relay stores.
pub const MAGIC_V2: i8 = 2;

/// Largest batch accepted anywhere: 100 MiB, the default request size limit,
/// since a batch larger than a request could never arrive. Offset index
/// positions are u32, and segments roll before 2 GiB, so this also fits.
pub const BATCH_BYTES_MAX: usize = 100 * 1024 * 1024;

const _: () = assert!(HEADER_BYTES == 61);
const _: () = assert!(BATCH_BYTES_MAX < i32::MAX as usize);

const ATTRIBUTE_CODEC_MASK: i16 = 0x07;
const ATTRIBUTE_LOG_APPEND_TIME: i16 = 0x08;
const ATTRIBUTE_TRANSACTIONAL: i16 = 0x10;
const ATTRIBUTE_CONTROL: i16 = 0x20;

/// Compression codec named in a batch's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    fn from_bits(codec: u8) -> Result<Self> {
        Ok(match codec {
            0 => Self::None,
            1 => Self::Gzip,
            2 => Self::Snappy,
            3 => Self::Lz4,
            4 => Self::Zstd,
            codec => return Err(BatchError::UnknownCompression { codec }),
        })
    }
}

/// A checked view of one batch header. Holds at least [`HEADER_BYTES`] bytes;
/// the records may or may not follow in the same slice.
#[derive(Clone, Copy)]
pub struct BatchHeader<'a> {
    bytes: &'a [u8],
}

impl std::fmt::Debug for BatchHeader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchHeader")
            .field("base_offset", &self.base_offset())
            .field("batch_length", &self.batch_length())
            .field("last_offset_delta", &self.last_offset_delta())
            .field("record_count", &self.record_count())
            .field("max_timestamp", &self.max_timestamp())
            .field("producer_id", &self.producer_id())
            .field("base_sequence", &self.base_sequence())
            .finish()
    }
}

fn be_i16(bytes: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn be_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn be_i64(bytes: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

impl<'a> BatchHeader<'a> {
    /// Reads the header at the front of `bytes`.
    ///
    /// Returns `Ok(None)` when fewer than [`HEADER_BYTES`] bytes are present,
    /// and an error when the length or magic is impossible. The CRC is not
    /// checked here because the records may not be in `bytes`; see
    /// [`BatchHeader::check_crc`].
    pub fn parse(bytes: &'a [u8]) -> Result<Option<Self>> {
        if bytes.len() < HEADER_BYTES {
            return Ok(None);
        }
        let header = Self {
            bytes: &bytes[..HEADER_BYTES],
        };
        let magic = bytes[MAGIC_POSITION] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic { magic });
        }
        let batch_length = header.batch_length();
        let min = (HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32;
        let max = (BATCH_BYTES_MAX - LOG_OVERHEAD_BYTES) as i32;
        if !(min..=max).contains(&batch_length) {
            return Err(BatchError::InvalidLength { batch_length, min, max });
        }
        let record_count = header.record_count();
        let last_offset_delta = header.last_offset_delta();
        if record_count < 1 || last_offset_delta != record_count - 1 {
            return Err(BatchError::InconsistentCount {
                record_count,
                last_offset_delta,
            });
        }
        Compression::from_bits((header.attributes() & ATTRIBUTE_CODEC_MASK) as u8)?;
        Ok(Some(header))
    }

    /// Parses the header and checks the CRC of a slice that holds the whole batch
    /// (and possibly more after it).
    pub fn parse_whole(bytes: &'a [u8]) -> Result<Option<Self>> {
        let Some(header) = Self::parse(bytes)? else {
            return Ok(None);
        };
        if bytes.len() < header.total_bytes() {
            return Ok(None);
        }
        header.check_crc(&bytes[..header.total_bytes()])?;
        Ok(Some(header))
    }

    /// Checks the stored CRC against `batch`, the whole batch this header heads.
    pub fn check_crc(&self, batch: &[u8]) -> Result<()> {
        debug_assert_eq!(batch.len(), self.total_bytes());
        let computed = batch_crc(batch);
        let stored = self.crc();
        if computed != stored {
            return Err(BatchError::CrcMismatch { stored, computed });
        }
        Ok(())
    }

    /// Bytes of the whole batch, header included.
    pub fn total_bytes(&self) -> usize {
        self.batch_length() as usize + LOG_OVERHEAD_BYTES
    }

    pub fn base_offset(&self) -> i64 {
        be_i64(self.bytes, 0)
    }
    pub fn batch_length(&self) -> i32 {
        be_i32(self.bytes, 8)
    }
    pub fn partition_leader_epoch(&self) -> i32 {
        be_i32(self.bytes, 12)
    }
    pub fn crc(&self) -> u32 {
        be_i32(self.bytes, CRC_POSITION) as u32
    }
    pub fn attributes(&self) -> i16 {
        be_i16(self.bytes, 21)
    }
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.bytes, 23)
    }
    pub fn first_timestamp(&self) -> i64 {
        be_i64(self.bytes, 27)
    }
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.bytes, 35)
    }
    pub fn producer_id(&self) -> i64 {
        be_i64(self.bytes, 43)
    }
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.bytes, 51)
    }
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.bytes, 53)
    }
    pub fn record_count(&self) -> i32 {
        be_i32(self.bytes, 57)
    }

    /// Offset of the last record: base offset + last offset delta.
    pub fn last_offset(&self) -> i64 {
        self.base_offset() + i64::from(self.last_offset_delta())
    }

    /// Sequence number of the last record, wrapping as Kafka's does at i32::MAX.
    pub fn last_sequence(&self) -> i32 {
        let base = self.base_sequence();
        if base < 0 {
            return base;
        }
        let last = i64::from(base) + i64::from(self.last_offset_delta());
        (last % (i64::from(i32::MAX) + 1)) as i32
    }

    pub fn compression(&self) -> Compression {
        Compression::from_bits((self.attributes() & ATTRIBUTE_CODEC_MASK) as u8).expect("checked in parse")
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & ATTRIBUTE_LOG_APPEND_TIME != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes() & ATTRIBUTE_TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & ATTRIBUTE_CONTROL != 0
    }
    /// True when the producer asked for idempotence (a producer id was assigned).
    pub fn has_producer_id(&self) -> bool {
        self.producer_id() >= 0
    }
}

/// Writes `base_offset` into the first 8 bytes of a batch. The field lies
/// outside the CRC, so the batch stays valid.
pub fn patch_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Iterates over the whole, CRC-checked batches of a record set (the bytes of
/// a Produce request's `records` field, or a run of a segment file).
pub struct RecordBatches<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> RecordBatches<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    /// Byte position of the next batch within the record set.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl<'a> Iterator for RecordBatches<'a> {
    /// The batch's position in the record set, its header, and its bytes.
    type Item = Result<(usize, BatchHeader<'a>, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.bytes[self.position..];
        if rest.is_empty() {
            return None;
        }
        match BatchHeader::parse_whole(rest) {
            Ok(Some(header)) => {
                let at = self.position;
                let whole = &rest[..header.total_bytes()];
                self.position += header.total_bytes();
                Some(Ok((at, header, whole)))
            }
            Ok(None) => {
                self.position = self.bytes.len();
                Some(Err(BatchError::TrailingBytes {
                    trailing_bytes: rest.len(),
                }))
            }
            Err(error) => {
                self.position = self.bytes.len();
                Some(Err(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::{BatchBuilder, RecordSpec};

    fn sample() -> Vec<u8> {
        let mut builder = BatchBuilder::new(1_700_000_000_000);
        for index in 0..3 {
            builder.push(RecordSpec::value(format!("line {index}").into_bytes()));
        }
        builder.build()
    }

    #[test]
    fn header_fields_read_back() {
        let batch = sample();
        let header = BatchHeader::parse_whole(&batch).unwrap().unwrap();
        assert_eq!(header.base_offset(), 0);
        assert_eq!(header.total_bytes(), batch.len());
        assert_eq!(header.record_count(), 3);
        assert_eq!(header.last_offset_delta(), 2);
        assert_eq!(header.first_timestamp(), 1_700_000_000_000);
        assert_eq!(header.compression(), Compression::None);
        assert!(!header.has_producer_id());
    }

    #[test]
    fn short_input_needs_more_bytes() {
        let batch = sample();
        for cut in 0..batch.len() {
            assert_eq!(BatchHeader::parse_whole(&batch[..cut]).map(|h| h.is_some()), Ok(false));
        }
    }

    #[test]
    fn every_flipped_covered_byte_fails_the_crc() {
        let batch = sample();
        for at in CRC_COVERED_START..batch.len() {
            let mut bad = batch.clone();
            bad[at] ^= 0x40;
            assert!(BatchHeader::parse_whole(&bad).is_err(), "flip at {at} passed");
        }
    }

    #[test]
    fn patching_base_offset_keeps_crc_valid() {
        let mut batch = sample();
        patch_base_offset(&mut batch, 1234);
        let header = BatchHeader::parse_whole(&batch).unwrap().unwrap();
        assert_eq!(header.base_offset(), 1234);
        assert_eq!(header.last_offset(), 1236);
    }

    #[test]
    fn wrong_magic_is_refused() {
        let mut batch = sample();
        batch[MAGIC_POSITION] = 1;
        assert_eq!(
            BatchHeader::parse(&batch).unwrap_err(),
            BatchError::UnsupportedMagic { magic: 1 }
        );
    }

    #[test]
    fn impossible_length_is_refused() {
        let mut batch = sample();
        batch[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert!(matches!(
            BatchHeader::parse(&batch),
            Err(BatchError::InvalidLength { .. })
        ));
        batch[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            BatchHeader::parse(&batch),
            Err(BatchError::InvalidLength { .. })
        ));
    }

    #[test]
    fn record_set_iterates_batches_and_flags_trailing_bytes() {
        let mut set = sample();
        set.extend_from_slice(&sample());
        set.extend_from_slice(&[0, 0, 0]);
        let items: Vec<_> = RecordBatches::new(&set).collect();
        assert_eq!(items.len(), 3);
        assert!(items[0].is_ok() && items[1].is_ok());
        assert_eq!(
            items[2].as_ref().unwrap_err(),
            &BatchError::TrailingBytes { trailing_bytes: 3 }
        );
    }

    #[test]
    fn last_sequence_wraps_at_i32_max() {
        let mut builder = BatchBuilder::new(0).producer(7, 0, i32::MAX);
        builder.push(RecordSpec::value(b"a".to_vec()));
        builder.push(RecordSpec::value(b"b".to_vec()));
        let batch = builder.build();
        let header = BatchHeader::parse_whole(&batch).unwrap().unwrap();
        assert_eq!(header.last_sequence(), 0);
    }
}
