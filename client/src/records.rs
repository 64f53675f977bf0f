//! Records out of fetched bytes: whole batches are split with relay-proto's
//! CRC-checked iterator (a trailing partial batch, which Kafka brokers may
//! send, is ignored and fetched again). An uncompressed batch is walked in
//! place with relay-proto's `RecordIter`: each record becomes a fixed-size
//! slot of offsets into the fetched buffer (key, value, header names and
//! values; nothing copied or allocated per record) and the CRC is checked
//! once, by the splitter. A compressed batch is decoded with the
//! `kafka-protocol` decoder, which handles every codec, and its records
//! copied into one buffer of their own. [`Records`] (`records/view.rs`)
//! holds the buffers and slots and lends [`RecordView`]s; the owned
//! [`ConsumerRecord`] is made only on request.
//!
//! Sticky headers (the consumer's `sticky_header_keys`, the producer's rule
//! in `producer/sticky.rs`): walking each batch from its first record, a
//! record without a sticky key gets the latest value of that key before it
//! in the batch, placed before its own headers; a sticky key with a null
//! value means "none" and is left out. Records before the fetch offset are
//! walked for this too, then dropped.

mod view;

pub use view::{RecordView, Records};

use crate::error::{ClientError, Result};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::RecordBatchDecoder;
use relay_proto::batch::{BatchHeader, Compression};
use relay_proto::records::RecordIter;
use relay_proto::{BatchError, RecordBatches};
use std::sync::Arc;
use view::{HeaderSpan, Part, Slot, Span, BUFFER_BYTES_MAX};

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
) -> Result<(Records, Option<i64>)> {
    let mut records = Records::default();
    let next_offset = records.decode_into(&Arc::from(topic), partition, bytes, from_offset, sticky)?;
    Ok((records, next_offset))
}

/// Where the records being decoded go: their `Part` and its buffer.
struct Placed<'b> {
    part: u32,
    buffer: &'b [u8],
}

/// A record's own place in its buffer, before its headers are settled.
struct Walked {
    offset: i64,
    timestamp_ms: i64,
    key: Span,
    value: Span,
}

impl Records {
    /// As [`decode`], appending to these records (a fetch's records of
    /// every partition go into one `Records`); returns the offset after the
    /// last whole batch. On an error these may hold part of `bytes`' records.
    pub fn decode_into(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        bytes: &Bytes,
        from_offset: i64,
        sticky: &[Bytes],
    ) -> Result<Option<i64>> {
        if bytes.len() > BUFFER_BYTES_MAX {
            return Err(ClientError::Invalid(format!(
                "{topic}/{partition}: a fetch of {} bytes is over {BUFFER_BYTES_MAX}",
                bytes.len()
            )));
        }
        let fetched = self.parts.len() as u32;
        self.parts.push(Part {
            topic: Arc::clone(topic),
            partition,
            buffer: bytes.clone(),
        });
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
            let raw = &bytes[position..position + whole.len()];
            let sticky = StickyHeaders::new(sticky);
            let decoded = if header.compression() == Compression::None {
                let placed = Placed {
                    part: fetched,
                    buffer: bytes,
                };
                self.walk_uncompressed(&placed, raw, &header, from_offset, sticky)
            } else {
                self.decode_compressed(topic, partition, raw, from_offset, sticky)
            };
            if let Err(error) = decoded {
                self.push_undecodable(fetched, bytes, raw, &header, error);
            }
        }
        Ok(next_offset)
    }

    /// The record standing for a batch whose records cannot be decoded.
    fn push_undecodable(&mut self, part: u32, buffer: &[u8], raw: &[u8], header: &BatchHeader<'_>, error: String) {
        self.reasons.push(format!(
            "batch of offsets {}..={} passed its CRC check but cannot be decoded: {error}",
            header.base_offset(),
            header.last_offset()
        ));
        let first = self.headers.len() as u32;
        self.slots.push(Slot {
            part,
            offset: header.last_offset(),
            timestamp_ms: header.max_timestamp(),
            key: Span::NONE,
            value: Span::within(buffer, Some(raw)),
            headers: (first, first),
            undecodable: self.reasons.len() as u32,
        });
    }

    /// The records of an uncompressed batch (`raw`, whole, inside
    /// `placed.buffer`), at or after `from_offset`, placed where they lie.
    /// On a malformed record nothing of the batch is kept and the error
    /// says where.
    fn walk_uncompressed(
        &mut self,
        placed: &Placed<'_>,
        raw: &[u8],
        header: &BatchHeader<'_>,
        from_offset: i64,
        mut sticky: StickyHeaders<'_>,
    ) -> std::result::Result<(), String> {
        let kept = (self.slots.len(), self.headers.len());
        let count = usize::try_from(header.record_count()).unwrap_or(0);
        self.slots.reserve(count);
        let log_append_time = header.is_log_append_time().then(|| header.max_timestamp());
        let mut own = Vec::new();
        for view in RecordIter::of_uncompressed_batch(raw, count) {
            let view = view.map_err(|error| {
                self.slots.truncate(kept.0);
                self.headers.truncate(kept.1);
                error.to_string()
            })?;
            let offset = header.base_offset() + i64::from(view.offset_delta);
            let skipped = offset < from_offset;
            if skipped && sticky.is_empty() {
                continue;
            }
            own.clear();
            own.extend(view.headers().map(|(name, value)| HeaderSpan {
                name: Span::within(placed.buffer, Some(name)),
                value: Span::within(placed.buffer, value),
            }));
            let walked = Walked {
                offset,
                timestamp_ms: log_append_time.unwrap_or(header.first_timestamp() + view.timestamp_delta_ms),
                key: Span::within(placed.buffer, view.key),
                value: Span::within(placed.buffer, view.value),
            };
            self.push(placed, walked, &own, &mut sticky, skipped);
        }
        Ok(())
    }

    /// The records of a compressed batch (`raw`, whole) at or after
    /// `from_offset`, decompressed and decoded by `kafka-protocol`, copied
    /// into one buffer of their own.
    fn decode_compressed(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        raw: &[u8],
        from_offset: i64,
        mut sticky: StickyHeaders<'_>,
    ) -> std::result::Result<(), String> {
        let set = RecordBatchDecoder::decode(&mut Bytes::copy_from_slice(raw)).map_err(|error| format!("{error:#}"))?;
        let kept = (self.slots.len(), self.headers.len());
        let part = self.parts.len() as u32;
        let mut buffer = BytesMut::new();
        let mut own = Vec::new();
        for record in set.records {
            let skipped = record.offset < from_offset;
            if skipped && sticky.is_empty() {
                continue;
            }
            own.clear();
            for (name, value) in &record.headers {
                own.push(HeaderSpan {
                    name: Span::appended(&mut buffer, Some(name.as_bytes())),
                    value: Span::appended(&mut buffer, value.as_deref()),
                });
            }
            let walked = Walked {
                offset: record.offset,
                timestamp_ms: record.timestamp,
                key: Span::appended(&mut buffer, record.key.as_deref()),
                value: Span::appended(&mut buffer, record.value.as_deref()),
            };
            if buffer.len() > BUFFER_BYTES_MAX {
                self.slots.truncate(kept.0);
                self.headers.truncate(kept.1);
                return Err(format!("decompressed past {BUFFER_BYTES_MAX} bytes"));
            }
            self.push(&Placed { part, buffer: &buffer }, walked, &own, &mut sticky, skipped);
        }
        self.parts.push(Part {
            topic: Arc::clone(topic),
            partition,
            buffer: buffer.freeze(),
        });
        Ok(())
    }

    /// Places one walked record with its headers as the consumer sees them
    /// (sticky ones inherited); a record before the fetch offset (`skipped`)
    /// only updates the sticky values.
    fn push(
        &mut self,
        placed: &Placed<'_>,
        walked: Walked,
        own: &[HeaderSpan],
        sticky: &mut StickyHeaders<'_>,
        skipped: bool,
    ) {
        let first = self.headers.len();
        sticky.apply(placed.buffer, own, &mut self.headers);
        if skipped {
            self.headers.truncate(first);
            return;
        }
        self.slots.push(Slot {
            part: placed.part,
            offset: walked.offset,
            timestamp_ms: walked.timestamp_ms,
            key: walked.key,
            value: walked.value,
            headers: (first as u32, self.headers.len() as u32),
            undecodable: 0,
        });
    }
}

/// The sticky keys' latest values while one batch is walked in order.
struct StickyHeaders<'k> {
    keys: &'k [Bytes],
    /// Per key: the latest non-null header with it before the current
    /// record (its name as consumers see it), in the batch's buffer.
    latest: Vec<Option<HeaderSpan>>,
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

    fn is_sticky(&self, name: &[u8]) -> bool {
        self.keys.iter().any(|key| key == name)
    }

    /// Appends to `out` the next record's headers as the consumer sees
    /// them, given `own`, the ones it carries (in `buffer`): the values it
    /// inherits first, then its own but null sticky ones. Notes the values
    /// it carries for the records after.
    fn apply(&mut self, buffer: &[u8], own: &[HeaderSpan], out: &mut Vec<HeaderSpan>) {
        if self.keys.is_empty() {
            out.extend_from_slice(own);
            return;
        }
        let name = |header: &HeaderSpan| header.name.of(buffer).unwrap_or_default();
        for (key, latest) in self.keys.iter().zip(&mut self.latest) {
            match own.iter().rev().find(|header| name(header) == key) {
                Some(header) => *latest = header.value.is_some().then_some(*header),
                None => out.extend(latest.iter().copied()),
            }
        }
        out.extend(
            own.iter()
                .filter(|header| header.value.is_some() || !self.is_sticky(name(header))),
        );
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
            .map(|r| (r.offset, r.timestamp_ms, r.value.unwrap()))
            .collect();
        assert_eq!(
            seen,
            vec![(11, T0_MS + 5, &b"b"[..]), (12, T0_MS + 10, b"c"), (13, T0_MS, b"d")]
        );
        assert_eq!(records.get(2).unwrap().key, Some(&b"k"[..]));
        let first = records.get(0).unwrap();
        assert_eq!(
            first.headers().collect::<Vec<_>>(),
            vec![(&b"source_position"[..], Some(&b"42"[..])), (&b"none"[..], None)]
        );
        assert_eq!(
            first.to_owned().headers,
            vec![
                ("source_position".to_owned(), Some(Bytes::from_static(b"42"))),
                ("none".to_owned(), None)
            ]
        );
        // No copy: the value points into the fetched buffer, in the view
        // and in an owned copy.
        let owned = first.to_owned();
        for value in [first.value.unwrap(), owned.value.as_deref().unwrap()] {
            let inside = fetched.as_ptr() as usize..fetched.as_ptr() as usize + fetched.len();
            assert!(inside.contains(&(value.as_ptr() as usize)));
        }
        assert_eq!(first.topic, "events");
        assert!(
            Arc::ptr_eq(&first.shared_topic(), &records.get(1).unwrap().shared_topic()),
            "one topic per partition"
        );
        let value = first.value.unwrap();
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
        let (bad, good) = (records.get(0).unwrap(), records.get(1).unwrap());
        assert_eq!(bad.offset, 1, "the bad batch's last offset");
        assert!(bad.undecodable.unwrap().contains("cannot be decoded"));
        assert!(
            bad.value.unwrap().len() > relay_proto::batch::HEADER_BYTES,
            "the batch's bytes"
        );
        assert_eq!(good.value, Some(&b"c"[..]));
        assert!(good.undecodable.is_none());
    }

    #[test]
    fn owned_records_go_into_records_and_come_back_the_same() {
        let fetched = Bytes::from(batch(10, &["a", "b"]));
        let (decoded, _) = decode("events", 1, &fetched, 0, &[]).unwrap();
        let mut owned = decoded.to_owned_records();
        owned.push(ConsumerRecord {
            topic: "other".into(),
            partition: 0,
            offset: 5,
            timestamp_ms: 7,
            key: None,
            value: Some(Bytes::from_static(b"raw")),
            headers: Vec::new(),
            undecodable: Some("garbage".into()),
        });
        let records = Records::from(owned.clone());
        assert_eq!(records.to_owned_records(), owned);
        let views: Vec<RecordView<'_>> = records.iter().collect();
        assert_eq!(views[1].header("source_position"), Some(&b"42"[..]));
        assert_eq!(views[1].header("none"), None);
        assert_eq!(views[2].undecodable, Some("garbage"));
        assert_eq!(owned[2].view().value, Some(&b"raw"[..]));
    }
}
