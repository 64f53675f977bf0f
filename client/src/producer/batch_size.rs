//! The encoded size of a batch while it fills ([`BatchSize`]), so that a
//! partition worker can close a batch before a record would take it past
//! `ProducerConfig::batch_bytes_max`. It counts Kafka's record batch v2
//! (`proto-spec/STORAGE.md`, "Record batch v2"): the 61-byte header, then per
//! record a varint length, attributes (1 byte), a varlong timestamp delta, a
//! varint offset delta, key, value and the headers that go on the wire
//! ([`super::sticky`]: a sticky header the consumer inherits is not
//! counted), uncompressed. It never
//! encodes anything ([`super::batch::encode`] does) and never undercounts
//! what that encoding writes without compression.
//!
//! The count is exact but where it must guess ahead: every record's
//! timestamp delta is counted at the width of the batch's whole timestamp
//! span (the encoder measures deltas from the smallest timestamp, which a
//! later record can lower), and its length prefix as if that delta took the
//! widest varlong. Both only overcount, and only when timestamps spread over
//! more than 63 ms or a record's length sits just under a varint boundary.

use super::record::Outgoing;
use super::sticky::{wire_headers, WireHeader};
use bytes::Bytes;
use relay_proto::batch::HEADER_BYTES;
use relay_proto::varint::VARLONG_BYTES_MAX;

/// What a batch's records add up to, encoded.
#[derive(Debug, Default, Clone)]
pub(super) struct BatchSize {
    records: usize,
    /// Every record's bytes but its timestamp delta.
    records_bytes: usize,
    /// The smallest and largest timestamp, once a record is in.
    timestamps: Option<(i64, i64)>,
}

impl BatchSize {
    /// The encoded batch's bytes; 0 while it has no record.
    pub fn bytes(&self) -> usize {
        let Some((min, max)) = self.timestamps else {
            return 0;
        };
        HEADER_BYTES + self.records_bytes + self.records * varlong_bytes(max.saturating_sub(min))
    }

    /// What [`BatchSize::bytes`] would be with `record` added.
    #[cfg(test)]
    pub fn bytes_with(&self, next: Next<'_>, timestamp_ms: i64) -> usize {
        self.with(next, timestamp_ms).bytes()
    }

    /// This count with `next` added (self unchanged).
    pub fn with(&self, next: Next<'_>, timestamp_ms: i64) -> BatchSize {
        let mut added = self.clone();
        added.add(next, timestamp_ms);
        added
    }

    /// Counts `next`, the next record of the batch.
    pub fn add(&mut self, next: Next<'_>, timestamp_ms: i64) {
        self.records_bytes += record_bytes_without_timestamp(next, self.records);
        self.records += 1;
        self.timestamps = Some(match self.timestamps {
            None => (timestamp_ms, timestamp_ms),
            Some((min, max)) => (min.min(timestamp_ms), max.max(timestamp_ms)),
        });
    }
}

/// A record as the batch will encode it: the record, the one before it in
/// the batch (`None` for the first) and the sticky header keys, which
/// together say which headers go on the wire.
#[derive(Clone, Copy)]
pub(super) struct Next<'a> {
    pub record: &'a Outgoing,
    pub previous: Option<&'a Outgoing>,
    pub sticky: &'a [Bytes],
}

impl<'a> Next<'a> {
    /// The record's headers that go on the wire.
    pub fn wire_headers(self) -> impl Iterator<Item = WireHeader<'a>> + Clone + 'a {
        wire_headers(self.record, self.previous, self.sticky)
    }
}

/// A record's encoded bytes but its timestamp delta, at offset delta
/// `offset_delta`; its length prefix is counted for the widest delta.
fn record_bytes_without_timestamp(next: Next<'_>, offset_delta: usize) -> usize {
    let body = body_bytes_without_timestamp(next, offset_delta);
    varlong_bytes((body + VARLONG_BYTES_MAX) as i64) + body
}

/// A record's body (what its length prefix counts) but its timestamp delta,
/// at offset delta `offset_delta`. The encoder sizes its length prefixes
/// with this plus the delta's own bytes.
pub(super) fn body_bytes_without_timestamp(next: Next<'_>, offset_delta: usize) -> usize {
    let (count, headers) = next
        .wire_headers()
        .fold((0usize, 0usize), |(count, bytes), (key, value)| {
            (
                count + 1,
                bytes + varlong_bytes(key.len() as i64) + key.len() + nullable_bytes(value),
            )
        });
    let record = next.record;
    1 // attributes
        + varlong_bytes(offset_delta as i64)
        + nullable_bytes(record.key.as_deref())
        + nullable_bytes(record.value.as_deref())
        + varlong_bytes(count as i64)
        + headers
}

/// A length-prefixed byte string, or the prefix −1 alone for null.
fn nullable_bytes(bytes: Option<&[u8]>) -> usize {
    match bytes {
        None => varlong_bytes(-1),
        Some(bytes) => varlong_bytes(bytes.len() as i64) + bytes.len(),
    }
}

/// Bytes of the zig-zag varint encoding of `value`: 7 bits a byte, and at
/// least one byte (for 0).
pub(super) fn varlong_bytes(value: i64) -> usize {
    let zigzag = ((value << 1) ^ (value >> 63)) as u64;
    let bits = 64 - (zigzag | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::batch::{encode, Batch};
    use crate::producer::record::{queued_for_test, ProducerRecord};
    use crate::producer::sequence::Identity;
    use bytes::Bytes;
    use kafka_protocol::records::Compression;
    use proptest::prelude::*;

    fn record(key: Option<&[u8]>, value_bytes: usize, headers: &[(&str, Option<&[u8]>)]) -> ProducerRecord {
        ProducerRecord {
            topic: "events".into(),
            key: key.map(Bytes::copy_from_slice),
            value: Some(Bytes::from(vec![b'v'; value_bytes])),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(Bytes::copy_from_slice)))
                .collect(),
            ..ProducerRecord::default()
        }
    }

    fn outgoing(record: &ProducerRecord) -> Outgoing {
        queued_for_test(record.clone(), 0).record
    }

    fn first(record: &Outgoing) -> Next<'_> {
        Next {
            record,
            previous: None,
            sticky: &[],
        }
    }

    /// The count and the real encoding of `records` at `timestamps`.
    fn counted_and_encoded(records: &[ProducerRecord], timestamps: &[i64]) -> (usize, usize) {
        counted_and_encoded_sticky(records, timestamps, &[])
    }

    /// As [`counted_and_encoded`], with `sticky` naming the sticky header keys.
    fn counted_and_encoded_sticky(records: &[ProducerRecord], timestamps: &[i64], sticky: &[Bytes]) -> (usize, usize) {
        let mut size = BatchSize::default();
        let outgoing: Vec<Outgoing> = records.iter().map(outgoing).collect();
        for (index, &timestamp) in timestamps.iter().enumerate() {
            let previous = index.checked_sub(1).map(|before| &outgoing[before]);
            size.add(
                Next {
                    record: &outgoing[index],
                    previous,
                    sticky,
                },
                timestamp,
            );
        }
        let batch = Batch {
            records: records
                .iter()
                .zip(timestamps)
                .map(|(record, &timestamp)| queued_for_test(record.clone(), timestamp))
                .collect(),
            base_sequence: 0,
            identity: Identity {
                producer_id: 3,
                epoch: 0,
            },
        };
        let encoded = encode(&batch, Compression::None, sticky, "events", 0).unwrap();
        (size.bytes(), encoded.len())
    }

    #[test]
    fn varlong_widths_follow_zigzag_groups_of_seven_bits() {
        assert_eq!(varlong_bytes(0), 1);
        assert_eq!(varlong_bytes(-1), 1);
        assert_eq!(varlong_bytes(63), 1);
        assert_eq!(varlong_bytes(64), 2);
        assert_eq!(varlong_bytes(-64), 1);
        assert_eq!(varlong_bytes(-65), 2);
        assert_eq!(varlong_bytes(8_191), 2);
        assert_eq!(varlong_bytes(8_192), 3);
        assert_eq!(varlong_bytes(i64::MAX), VARLONG_BYTES_MAX);
        assert_eq!(varlong_bytes(i64::MIN), VARLONG_BYTES_MAX);
    }

    #[test]
    fn empty_batch_counts_nothing_and_one_record_counts_header_and_framing() {
        assert_eq!(BatchSize::default().bytes(), 0);
        // 61 header + 1 length + 1 attributes + 1 timestamp delta + 1 offset
        // delta + 1 null key + (1 + 10) value + 1 header count = 78.
        let (counted, encoded) = counted_and_encoded(&[record(None, 10, &[])], &[1_000]);
        assert_eq!((counted, encoded), (78, 78));
    }

    #[test]
    fn count_equals_the_encoding_for_records_stamped_together() {
        let records = vec![
            record(Some(b"player-7"), 100, &[("source", Some(b"app.jsonl:42"))]),
            record(None, 0, &[("tombstone", None)]),
            record(Some(b""), 921_600, &[]),
            record(Some(b"k"), 300, &[("a", Some(b"1")), ("b", None)]),
            record(None, 1_048_476, &[]),
        ];
        let timestamps = vec![1_767_225_600_000; records.len()];
        let (counted, encoded) = counted_and_encoded(&records, &timestamps);
        assert_eq!(counted, encoded);
    }

    #[test]
    fn bytes_with_is_what_adding_the_record_gives() {
        let mut size = BatchSize::default();
        size.add(first(&outgoing(&record(None, 50, &[]))), 2_000);
        let next = outgoing(&record(Some(b"key"), 70_000, &[]));
        let predicted = size.bytes_with(first(&next), 1_000);
        size.add(first(&next), 1_000);
        assert_eq!(predicted, size.bytes());
        assert!(predicted > 70_000 + HEADER_BYTES);
    }

    #[test]
    fn count_equals_the_encoding_and_leaves_out_inherited_sticky_headers() {
        let source: &[u8] = b"host and path of one file";
        let records: Vec<ProducerRecord> = (0..5)
            .map(|i| {
                let source = if i < 3 { source } else { b"another file" };
                record(None, 100, &[("src", Some(source)), ("p", Some(&[i as u8]))])
            })
            .chain([record(None, 100, &[("p", Some(b"x"))])])
            .collect();
        let timestamps = vec![1_767_225_600_000; records.len()];
        let sticky = [Bytes::from_static(b"src")];
        let (counted, encoded) = counted_and_encoded_sticky(&records, &timestamps, &sticky);
        assert_eq!(counted, encoded);
        let (all_headers, _) = counted_and_encoded(&records, &timestamps);
        // Records 1, 2 and 4 leave out (1 + 3 + 1 + value) bytes; record 5
        // carries a null marker (1 + 3 + 1).
        let saved = 2 * (5 + source.len()) + (5 + b"another file".len()) - 5;
        assert_eq!(all_headers - counted, saved);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn count_never_undercounts_and_overcounts_at_most_ten_bytes_a_record(
            shapes in proptest::collection::vec((0usize..20_000, proptest::option::of(0usize..40), 0i64..100_000), 1..40),
        ) {
            let records: Vec<ProducerRecord> = shapes
                .iter()
                .map(|(value_bytes, key_bytes, _)| {
                    let key = key_bytes.map(|n| vec![b'k'; n]);
                    record(key.as_deref(), *value_bytes, &[("h", Some(b"x"))])
                })
                .collect();
            let timestamps: Vec<i64> = shapes.iter().map(|(_, _, delta)| 1_767_225_600_000 + delta).collect();
            let (counted, encoded) = counted_and_encoded(&records, &timestamps);
            prop_assert!(counted >= encoded, "counted {counted} < encoded {encoded}");
            prop_assert!(counted - encoded <= 10 * records.len(), "counted {counted}, encoded {encoded}");
        }
    }
}
