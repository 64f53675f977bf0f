//! Records out of fetched bytes: whole batches are split with relay-proto's
//! CRC-checked iterator (a trailing partial batch, which Kafka brokers may
//! send, is ignored and fetched again). An uncompressed batch is walked in
//! place with relay-proto's `RecordIter`: keys and values are slices of the
//! fetched buffer (`Bytes::slice_ref`, no copy) and the CRC is checked once,
//! by the splitter. A compressed batch is decoded with the `kafka-protocol`
//! decoder, which handles every codec.
//!
//! Sticky headers (the consumer's `sticky_header_keys`, the producer's rule
//! in `producer/sticky.rs`): walking each batch from its first record, a
//! record without a sticky key gets the latest value of that key before it
//! in the batch, placed before its own headers; a sticky key with a null
//! value means "none" and is left out. Records before the fetch offset are
//! walked for this too, then dropped.

use crate::error::{ClientError, Result};
use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use relay_proto::batch::{BatchHeader, Compression};
use relay_proto::records::RecordIter;
use relay_proto::{BatchError, RecordBatches};

/// One consumed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Set when a batch passed its CRC check but its records cannot be
    /// decoded (garbage inside, an unknown codec): this one record then
    /// stands for the whole batch, `offset` is the batch's last offset,
    /// `value` its raw bytes, and this says why. Consumers move past it;
    /// a loader rejects it with its bytes.
    pub undecodable: Option<String>,
}

/// Decodes the records at or after `from_offset` in `bytes`; returns them
/// and the offset after the last whole batch (the next fetch position).
/// `sticky` names the sticky header keys.
pub fn decode(
    topic: &str,
    partition: i32,
    bytes: &Bytes,
    from_offset: i64,
    sticky: &[Bytes],
) -> Result<(Vec<ConsumerRecord>, Option<i64>)> {
    let mut records = Vec::new();
    let next_offset = decode_into(topic, partition, bytes, from_offset, sticky, &mut records)?;
    Ok((records, next_offset))
}

/// As [`decode`], appending to `records` (a fetch's records of every
/// partition go into one vector, moved once); returns the offset after the
/// last whole batch. On an error `records` may hold part of `bytes`' records.
pub fn decode_into(
    topic: &str,
    partition: i32,
    bytes: &Bytes,
    from_offset: i64,
    sticky: &[Bytes],
    records: &mut Vec<ConsumerRecord>,
) -> Result<Option<i64>> {
    let mut next_offset = None;
    for item in RecordBatches::new(bytes) {
        let (position, header, whole) = match item {
            Ok(batch) => batch,
            Err(BatchError::TrailingBytes { .. }) => break,
            Err(error) => {
                return Err(ClientError::Invalid(format!(
                    "corrupt batch from {topic}/{partition} at offset {from_offset}: {error}"
                )))
            }
        };
        next_offset = Some(header.last_offset() + 1);
        if header.is_control() || header.last_offset() < from_offset {
            continue;
        }
        let raw = bytes.slice(position..position + whole.len());
        let sticky = StickyHeaders::new(sticky);
        let decoded = if header.compression() == Compression::None {
            walk_uncompressed(topic, partition, &raw, &header, from_offset, sticky, records)
        } else {
            decode_compressed(topic, partition, &raw, from_offset, sticky, records)
        };
        if let Err(error) = decoded {
            records.push(ConsumerRecord {
                topic: topic.to_owned(),
                partition,
                offset: header.last_offset(),
                timestamp_ms: header.max_timestamp(),
                key: None,
                value: Some(raw),
                headers: Vec::new(),
                undecodable: Some(format!(
                    "batch of offsets {}..={} passed its CRC check but cannot be decoded: {error}",
                    header.base_offset(),
                    header.last_offset()
                )),
            });
        }
    }
    Ok(next_offset)
}

/// The records of an uncompressed batch (`raw`, whole), at or after
/// `from_offset`, appended to `out` as slices of `raw`. On a malformed
/// record nothing of the batch is kept and the error says where.
fn walk_uncompressed(
    topic: &str,
    partition: i32,
    raw: &Bytes,
    header: &BatchHeader<'_>,
    from_offset: i64,
    mut sticky: StickyHeaders<'_>,
    out: &mut Vec<ConsumerRecord>,
) -> std::result::Result<(), String> {
    let kept = out.len();
    let count = usize::try_from(header.record_count()).unwrap_or(0);
    out.reserve(count);
    let log_append_time = header.is_log_append_time().then(|| header.max_timestamp());
    let slice = |part: Option<&[u8]>| part.map(|part| raw.slice_ref(part));
    for view in RecordIter::of_uncompressed_batch(raw, count) {
        let view = view.map_err(|error| {
            out.truncate(kept);
            error.to_string()
        })?;
        let offset = header.base_offset() + i64::from(view.offset_delta);
        let skipped = offset < from_offset;
        if skipped && sticky.is_empty() {
            continue;
        }
        let headers = sticky.apply(
            view.headers()
                .map(|(name, value)| (String::from_utf8_lossy(name).into_owned(), slice(value)))
                .collect(),
        );
        if skipped {
            continue;
        }
        out.push(ConsumerRecord {
            topic: topic.to_owned(),
            partition,
            offset,
            timestamp_ms: log_append_time.unwrap_or(header.first_timestamp() + view.timestamp_delta_ms),
            key: slice(view.key),
            value: slice(view.value),
            headers,
            undecodable: None,
        });
    }
    Ok(())
}

/// The records of a compressed batch (`raw`, whole) at or after
/// `from_offset`, decompressed and decoded by `kafka-protocol`.
fn decode_compressed(
    topic: &str,
    partition: i32,
    raw: &Bytes,
    from_offset: i64,
    mut sticky: StickyHeaders<'_>,
    out: &mut Vec<ConsumerRecord>,
) -> std::result::Result<(), String> {
    let set = RecordBatchDecoder::decode(&mut raw.clone()).map_err(|error| format!("{error:#}"))?;
    for record in set.records {
        let skipped = record.offset < from_offset;
        if skipped && sticky.is_empty() {
            continue;
        }
        let headers = sticky.apply(record.headers.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        if skipped {
            continue;
        }
        out.push(ConsumerRecord {
            topic: topic.to_owned(),
            partition,
            offset: record.offset,
            timestamp_ms: record.timestamp,
            key: record.key,
            value: record.value,
            headers,
            undecodable: None,
        });
    }
    Ok(())
}

/// The sticky keys' latest values while one batch is walked in order.
struct StickyHeaders<'k> {
    keys: &'k [Bytes],
    /// Per key: the latest non-null value before the current record, with
    /// its name as consumers see it.
    latest: Vec<Option<(String, Bytes)>>,
}

impl<'k> StickyHeaders<'k> {
    fn new(keys: &'k [Bytes]) -> Self {
        Self {
            keys,
            latest: vec![None; keys.len()],
        }
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn is_sticky(&self, name: &str) -> bool {
        self.keys.iter().any(|key| key == name.as_bytes())
    }

    /// The next record's headers as the consumer sees them, given `own`,
    /// the ones it carries: the values it inherits first, then its own but
    /// null sticky ones. Notes the values it carries for the records after.
    fn apply(&mut self, own: Vec<(String, Option<Bytes>)>) -> Vec<(String, Option<Bytes>)> {
        if self.keys.is_empty() {
            return own;
        }
        let mut headers = Vec::new();
        for (key, latest) in self.keys.iter().zip(&mut self.latest) {
            match own.iter().rev().find(|(name, _)| name.as_bytes() == key) {
                Some((name, value)) => *latest = value.clone().map(|value| (name.clone(), value)),
                None => headers.extend(latest.iter().map(|(name, value)| (name.clone(), Some(value.clone())))),
            }
        }
        if headers.is_empty() && !own.iter().any(|(name, value)| value.is_none() && self.is_sticky(name)) {
            return own;
        }
        headers.extend(
            own.into_iter()
                .filter(|(name, value)| value.is_some() || !self.is_sticky(name)),
        );
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_proto::batch::patch_base_offset;
    use relay_proto::builder::{BatchBuilder, RecordSpec};

    const T0_MS: i64 = 1_767_225_600_000;

    fn batch(base_offset: i64, values: &[&str]) -> Vec<u8> {
        let mut builder = BatchBuilder::new(T0_MS);
        for (index, value) in values.iter().enumerate() {
            builder.push(RecordSpec {
                key: (index == 0).then(|| b"k".to_vec()),
                value: Some(value.as_bytes().to_vec()),
                headers: vec![("source_position".into(), Some(b"42".to_vec())), ("none".into(), None)],
                timestamp_delta_ms: index as i64 * 5,
            });
        }
        let mut bytes = builder.build();
        patch_base_offset(&mut bytes, base_offset);
        relay_proto::crc::seal_batch_crc(&mut bytes);
        bytes
    }

    #[test]
    fn uncompressed_records_come_out_as_slices_of_the_fetch_from_the_offset_asked() {
        let mut fetched = batch(10, &["a", "b", "c"]);
        fetched.extend(batch(13, &["d"]));
        let fetched = Bytes::from(fetched);
        let (records, next) = decode("events", 2, &fetched, 11, &[]).unwrap();
        assert_eq!(next, Some(14));
        let seen: Vec<(i64, i64, &[u8])> = records
            .iter()
            .map(|r| (r.offset, r.timestamp_ms, r.value.as_deref().unwrap()))
            .collect();
        assert_eq!(
            seen,
            vec![(11, T0_MS + 5, &b"b"[..]), (12, T0_MS + 10, b"c"), (13, T0_MS, b"d")]
        );
        assert_eq!(records[2].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(
            records[0].headers,
            vec![
                ("source_position".to_owned(), Some(Bytes::from_static(b"42"))),
                ("none".to_owned(), None)
            ]
        );
        // No copy: the value points into the fetched buffer.
        let value = records[0].value.as_ref().unwrap();
        let inside = fetched.as_ptr() as usize..fetched.as_ptr() as usize + fetched.len();
        assert!(inside.contains(&(value.as_ptr() as usize)));
    }

    #[test]
    fn a_malformed_record_behind_a_good_crc_stands_for_its_batch_as_undecodable() {
        let mut bad = batch(0, &["aaaa", "bbbb"]);
        // The first record's length varint now claims far more than the batch holds.
        let first_record = relay_proto::batch::HEADER_BYTES;
        bad[first_record] = 0x7e;
        relay_proto::crc::seal_batch_crc(&mut bad);
        let mut fetched = bad;
        fetched.extend(batch(2, &["c"]));
        let (records, next) = decode("events", 0, &Bytes::from(fetched), 0, &[]).unwrap();
        assert_eq!(next, Some(3));
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].offset, 1, "the bad batch's last offset");
        assert!(records[0].undecodable.as_ref().unwrap().contains("cannot be decoded"));
        assert_eq!(records[1].value.as_deref(), Some(&b"c"[..]));
        assert!(records[1].undecodable.is_none());
    }
}
