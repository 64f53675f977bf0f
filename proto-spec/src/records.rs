//! Walks the records of an uncompressed batch without copying them.
//!
//! Used where the broker must look inside a batch without decompressing, such
//! as finding the first record at or after a timestamp, and by clients after
//! they decompressed a batch themselves. Layout: see [`crate::builder`].

use crate::batch::HEADER_BYTES;
use crate::error::{BatchError, Result};
use crate::varint::{get_varint, get_varlong, VARLONG_BYTES_MAX};

/// One record inside a batch; byte fields borrow from the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub offset_delta: i32,
    pub timestamp_delta_ms: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    headers: &'a [u8],
    header_count: usize,
}

impl<'a> RecordView<'a> {
    /// The record's headers as (key, value) pairs.
    pub fn headers(&self) -> HeaderIter<'a> {
        HeaderIter {
            bytes: self.headers,
            remaining: self.header_count,
        }
    }
}

/// Iterates the records of `records`, the bytes after a batch header (or after
/// decompression), expecting `record_count` of them.
pub struct RecordIter<'a> {
    bytes: &'a [u8],
    position: usize,
    remaining: usize,
    index: usize,
}

impl<'a> RecordIter<'a> {
    pub fn new(records: &'a [u8], record_count: usize) -> Self {
        Self {
            bytes: records,
            position: 0,
            remaining: record_count,
            index: 0,
        }
    }

    /// The records of a whole uncompressed batch (header included).
    pub fn of_uncompressed_batch(batch: &'a [u8], record_count: usize) -> Self {
        Self::new(&batch[HEADER_BYTES.min(batch.len())..], record_count)
    }

    fn malformed(&self) -> BatchError {
        BatchError::MalformedRecord {
            index: self.index,
            position: self.position,
        }
    }

    fn parse_one(&self) -> Option<(RecordView<'a>, usize)> {
        let bytes = &self.bytes[self.position..];
        let (length, used) = get_varint(bytes)?;
        let end = used.checked_add(usize::try_from(length).ok()?)?;
        let body = bytes.get(used..end)?;
        let mut at = 1; // attributes
        let (timestamp_delta_ms, n) = get_varlong(body.get(at..)?, VARLONG_BYTES_MAX)?;
        at += n;
        let (offset_delta, n) = get_varint(body.get(at..)?)?;
        at += n;
        let (key, n) = take_bytes(body.get(at..)?)?;
        at += n;
        let (value, n) = take_bytes(body.get(at..)?)?;
        at += n;
        let (header_count, n) = get_varint(body.get(at..)?)?;
        at += n;
        let header_count = usize::try_from(header_count).ok()?;
        let headers = body.get(at..)?;
        let mut check = HeaderIter {
            bytes: headers,
            remaining: header_count,
        };
        for _ in 0..header_count {
            check.next()?;
        }
        if !check.bytes.is_empty() {
            return None;
        }
        let view = RecordView {
            offset_delta,
            timestamp_delta_ms,
            key,
            value,
            headers,
            header_count,
        };
        Some((view, end))
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<RecordView<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        match self.parse_one() {
            Some((view, used)) => {
                self.position += used;
                self.remaining -= 1;
                self.index += 1;
                Some(Ok(view))
            }
            None => {
                let error = self.malformed();
                self.remaining = 0;
                Some(Err(error))
            }
        }
    }
}

/// Iterates a record's headers.
pub struct HeaderIter<'a> {
    bytes: &'a [u8],
    remaining: usize,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let (key, used_key) = take_bytes(self.bytes)?;
        let (value, used_value) = take_bytes(self.bytes.get(used_key..)?)?;
        self.bytes = &self.bytes[used_key + used_value..];
        self.remaining -= 1;
        Some((key.unwrap_or_default(), value))
    }
}

fn take_bytes(bytes: &[u8]) -> Option<(Option<&[u8]>, usize)> {
    let (length, used) = get_varint(bytes)?;
    if length < 0 {
        return Some((None, used));
    }
    let end = used.checked_add(length as usize)?;
    Some((Some(bytes.get(used..end)?), end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BatchHeader;
    use crate::builder::{BatchBuilder, RecordSpec};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn built_records_read_back(
            records in proptest::collection::vec(
                (proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
                 proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
                 0i64..100_000,
                 proptest::collection::vec(("[a-z]{0,8}", proptest::option::of(proptest::collection::vec(any::<u8>(), 0..10))), 0..3)),
                1..40)
        ) {
            let mut builder = BatchBuilder::new(1_000);
            for (key, value, delta, headers) in &records {
                builder.push(RecordSpec { key: key.clone(), value: value.clone(), headers: headers.clone(), timestamp_delta_ms: *delta });
            }
            let batch = builder.build();
            let header = BatchHeader::parse_whole(&batch).unwrap().unwrap();
            prop_assert_eq!(header.record_count() as usize, records.len());
            let max_delta = records.iter().map(|r| r.2).max().unwrap();
            prop_assert_eq!(header.max_timestamp(), 1_000 + max_delta);
            let views: Vec<_> = RecordIter::of_uncompressed_batch(&batch, records.len()).collect::<Result<_>>().unwrap();
            for (index, (view, (key, value, delta, headers))) in views.iter().zip(&records).enumerate() {
                prop_assert_eq!(view.offset_delta as usize, index);
                prop_assert_eq!(view.timestamp_delta_ms, *delta);
                prop_assert_eq!(view.key, key.as_deref());
                prop_assert_eq!(view.value, value.as_deref());
                let read: Vec<_> = view.headers().map(|(k, v)| (String::from_utf8(k.to_vec()).unwrap(), v.map(<[u8]>::to_vec))).collect();
                prop_assert_eq!(&read, headers);
            }
        }
    }

    #[test]
    fn truncated_records_are_malformed_not_panics() {
        let mut builder = BatchBuilder::new(0);
        builder.push(RecordSpec::value(b"hello".to_vec()));
        let batch = builder.build();
        let records = &batch[HEADER_BYTES..];
        for cut in 0..records.len() {
            let result: Result<Vec<_>> = RecordIter::new(&records[..cut], 1).collect();
            assert!(result.is_err(), "cut at {cut} parsed");
        }
    }
}
