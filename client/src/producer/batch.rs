//! A closed batch ([`Batch`]): its records, the identity and base sequence
//! it was numbered with, its encoding as one Kafka record batch (v2,
//! compressed with the configured codec; byte layout in Kafka's
//! `DefaultRecordBatch` and `proto-spec/STORAGE.md`), and its split into two
//! halves that share its sequence range ([`Batch::split`]). Never numbers a
//! batch afresh or sends one: the worker does both.

use super::batch_size::{body_bytes_without_timestamp, varlong_bytes, Next};
use super::record::Queued;
use super::sequence::{sequence_after, Identity, Sequencer};
use crate::error::{ClientError, Result};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
use kafka_protocol::records::Compression;
use relay_proto::batch::{HEADER_BYTES, LOG_OVERHEAD_BYTES, MAGIC_V2};
use relay_proto::crc::seal_batch_crc;
use relay_proto::varint::{put_varint, put_varlong};

/// A closed batch: its records, and the sequence numbering it was given.
pub(super) struct Batch {
    pub records: Vec<Queued>,
    pub base_sequence: i32,
    pub identity: Identity,
}

impl Batch {
    /// The batch in two halves, in order, for a broker that refused it as too
    /// large (or an encoding over the cap). The halves keep the identity and
    /// share out the batch's own sequence range: the first half starts at its
    /// base sequence, the second where the first ends. That range is the
    /// broker's next expected one (a refused batch is not written, and the
    /// batches behind it fail with OUT_OF_ORDER_SEQUENCE_NUMBER and are sent
    /// again after the halves), so the halves are new batches to the broker:
    /// neither a duplicate of anything written nor a gap. Kafka's Java client
    /// splits the same way (`ProducerBatch.split`).
    pub fn split(mut self) -> (Batch, Batch) {
        assert!(self.records.len() >= 2, "a batch of one record cannot be split");
        let second_records = self.records.split_off(self.records.len() / 2);
        let second = Batch {
            base_sequence: sequence_after(self.base_sequence, self.records.len()),
            identity: self.identity,
            records: second_records,
        };
        (self, second)
    }
}

/// Numbers `batches` again, in order, under `identity`: from where
/// `sequencer` was rewound when that is the identity it counts in, from 0
/// when the identity is new. The worker does this only to batches the broker
/// has not written (see `worker`'s numbering invariant).
pub(super) fn renumber<'a>(
    batches: impl IntoIterator<Item = &'a mut Batch>,
    sequencer: &mut Sequencer,
    identity: Identity,
) {
    for batch in batches {
        batch.identity = identity;
        batch.base_sequence = sequencer.assign(identity, batch.records.len());
    }
}

/// The batch as the records bytes of a Produce request's partition: one
/// Kafka record batch v2 (`proto-spec/STORAGE.md`, "Record batch v2"),
/// written straight from the queued records into one buffer (no per-record
/// intermediate), the records section compressed with the configured codec.
/// Timestamp deltas count from the smallest timestamp, as
/// [`super::batch_size`] assumes. A header named in `sticky` goes only where
/// [`super::sticky`] says the consumer cannot inherit it.
pub(super) fn encode(
    batch: &Batch,
    compression: Compression,
    sticky: &[Bytes],
    topic: &str,
    partition: i32,
) -> Result<Bytes> {
    let first_timestamp = batch.records.iter().map(|q| q.timestamp_ms).min().unwrap_or(0);
    let max_timestamp = batch.records.iter().map(|q| q.timestamp_ms).max().unwrap_or(0);
    let next = |index: usize| Next {
        record: &batch.records[index].record,
        previous: index.checked_sub(1).map(|before| &batch.records[before].record),
        sticky,
    };
    let capacity: usize = batch
        .records
        .iter()
        .enumerate()
        .map(|(index, queued)| record_bytes(next(index), queued.timestamp_ms - first_timestamp, index) + 5)
        .sum();
    let mut out: Vec<u8> = Vec::with_capacity(HEADER_BYTES + capacity);
    out.resize(HEADER_BYTES, 0); // the header, written once the length is known
    for (index, queued) in batch.records.iter().enumerate() {
        let timestamp_delta = queued.timestamp_ms - first_timestamp;
        put_varint(&mut out, record_bytes(next(index), timestamp_delta, index) as i32);
        out.push(0); // record attributes: unused in v2
        put_varlong(&mut out, timestamp_delta);
        put_varint(&mut out, index as i32);
        put_nullable(&mut out, queued.record.key.as_deref());
        put_nullable(&mut out, queued.record.value.as_deref());
        let headers = next(index).wire_headers();
        put_varint(&mut out, headers.clone().count() as i32);
        for (name, value) in headers {
            put_nullable(&mut out, Some(name));
            put_nullable(&mut out, value);
        }
    }
    compress_records(&mut out, compression, topic, partition)?;
    let batch_length = (out.len() - LOG_OVERHEAD_BYTES) as i32;
    let mut header = &mut out[..HEADER_BYTES];
    header.put_i64(0); // base offset: the broker assigns it
    header.put_i32(batch_length);
    header.put_i32(-1); // partition leader epoch: none, as producers send
    header.put_i8(MAGIC_V2);
    header.put_u32(0); // CRC, sealed below
    header.put_i16(codec_id(compression)); // attributes: codec, create time
    header.put_i32(batch.records.len() as i32 - 1);
    header.put_i64(first_timestamp);
    header.put_i64(max_timestamp);
    header.put_i64(batch.identity.producer_id);
    header.put_i16(batch.identity.epoch);
    header.put_i32(batch.base_sequence);
    header.put_i32(batch.records.len() as i32);
    debug_assert!(header.is_empty());
    seal_batch_crc(&mut out);
    Ok(Bytes::from(out))
}

/// Compresses the records section of `out` (after its header bytes) in
/// place with `compression`; nothing to do for `Compression::None`.
fn compress_records(out: &mut Vec<u8>, compression: Compression, topic: &str, partition: i32) -> Result<()> {
    if compression == Compression::None {
        return Ok(());
    }
    let failed =
        |error: anyhow::Error| ClientError::Invalid(format!("compressing a batch for {topic}/{partition}: {error:#}"));
    let section = &out[HEADER_BYTES..];
    let write = |into: &mut BytesMut| -> anyhow::Result<()> {
        into.extend_from_slice(section);
        Ok(())
    };
    let mut compressed = BytesMut::with_capacity(section.len() / 2);
    match compression {
        Compression::Gzip => Gzip::compress(&mut compressed, write),
        Compression::Snappy => Snappy::compress(&mut compressed, write),
        Compression::Lz4 => Lz4::compress(&mut compressed, write),
        Compression::Zstd => Zstd::compress(&mut compressed, write),
        Compression::None => unreachable!("checked above"),
    }
    .map_err(failed)?;
    out.truncate(HEADER_BYTES);
    out.extend_from_slice(&compressed);
    Ok(())
}

/// A record's encoded bytes after its length prefix.
fn record_bytes(next: Next<'_>, timestamp_delta: i64, offset_delta: usize) -> usize {
    body_bytes_without_timestamp(next, offset_delta) + varlong_bytes(timestamp_delta)
}

/// The attributes' codec bits (Kafka's `CompressionType` ids).
fn codec_id(compression: Compression) -> i16 {
    match compression {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
    }
}

/// A length-prefixed byte string, or the prefix -1 alone for null.
fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(bytes) => {
            put_varint(out, bytes.len() as i32);
            out.extend_from_slice(bytes);
        }
    }
}

/// The offset of the record `index` places into an acknowledged batch
/// (-1 when the broker reported no base offset).
pub(super) fn record_offset(base_offset: i64, index: usize) -> i64 {
    if base_offset >= 0 {
        base_offset + index as i64
    } else {
        -1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::record::{queued_for_test, ProducerRecord};
    use crate::producer::sequence::SEQUENCE_NONE;
    use kafka_protocol::records::RecordBatchDecoder;

    fn queued(value: &'static str, timestamp_ms: i64) -> Queued {
        let record = ProducerRecord {
            topic: "events".into(),
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(value.as_bytes())),
            headers: vec![("h".into(), Some(Bytes::from_static(b"v")))],
            ..ProducerRecord::default()
        };
        queued_for_test(record, timestamp_ms)
    }

    fn batch_of(values: &[&'static str], base_sequence: i32, identity: Identity) -> Batch {
        Batch {
            records: values.iter().map(|value| queued(value, 1_000)).collect(),
            base_sequence,
            identity,
        }
    }

    fn values(batch: &Batch) -> Vec<&[u8]> {
        batch
            .records
            .iter()
            .map(|queued| queued.record.value.as_deref().unwrap())
            .collect()
    }

    const PRODUCER: Identity = Identity {
        producer_id: 9,
        epoch: 2,
    };

    #[test]
    fn encoded_batch_carries_identity_and_consecutive_sequences() {
        let batch = Batch {
            records: vec![queued("a", 1_000), queued("b", 1_005), queued("c", 1_002)],
            base_sequence: 41,
            identity: Identity {
                producer_id: 9,
                epoch: 2,
            },
        };
        let mut bytes = encode(&batch, Compression::None, &[], "events", 0).unwrap();
        let decoded = RecordBatchDecoder::decode(&mut bytes).unwrap();
        let seen: Vec<(i64, i32, i64, i16, i64)> = decoded
            .records
            .iter()
            .map(|r| (r.offset, r.sequence, r.producer_id, r.producer_epoch, r.timestamp))
            .collect();
        assert_eq!(
            seen,
            vec![(0, 41, 9, 2, 1_000), (1, 42, 9, 2, 1_005), (2, 43, 9, 2, 1_002)]
        );
        let values: Vec<&[u8]> = decoded.records.iter().map(|r| r.value.as_deref().unwrap()).collect();
        assert_eq!(values, vec![&b"a"[..], b"b", b"c"]);
        assert_eq!(decoded.records[0].headers.len(), 1);
    }

    #[test]
    fn uncompressed_encoding_is_byte_for_byte_the_reference_builders() {
        let mut records = vec![queued("a", 1_000), queued("bb", 1_070), queued("", 990)];
        records[1].record.key = None;
        records[2].record.value = None;
        let batch = Batch {
            records,
            base_sequence: 7,
            identity: PRODUCER,
        };
        let mut builder = relay_proto::builder::BatchBuilder::new(990).producer(9, 2, 7);
        for (queued, delta) in batch.records.iter().zip([10, 80, 0]) {
            builder.push(relay_proto::builder::RecordSpec {
                key: queued.record.key.as_ref().map(|k| k.to_vec()),
                value: queued.record.value.as_ref().map(|v| v.to_vec()),
                headers: vec![("h".into(), Some(b"v".to_vec()))],
                timestamp_delta_ms: delta,
            });
        }
        let encoded = encode(&batch, Compression::None, &[], "events", 0).unwrap();
        assert_eq!(&encoded[..], &builder.build()[..]);
    }

    #[test]
    fn every_codec_decodes_to_the_records_sent() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let batch = batch_of(&["first", "second", "third"], 3, PRODUCER);
            let mut bytes = encode(&batch, compression, &[], "events", 0).unwrap();
            let decoded = RecordBatchDecoder::decode(&mut bytes).unwrap();
            assert_eq!(decoded.compression, compression);
            let values: Vec<&[u8]> = decoded.records.iter().map(|r| r.value.as_deref().unwrap()).collect();
            assert_eq!(values, vec![&b"first"[..], b"second", b"third"], "{compression:?}");
            let sequences: Vec<i32> = decoded.records.iter().map(|r| r.sequence).collect();
            assert_eq!(sequences, vec![3, 4, 5], "{compression:?}");
            let headers: Vec<(&str, Option<&[u8]>)> = decoded.records[2]
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_deref()))
                .collect();
            assert_eq!(headers, vec![("h", Some(&b"v"[..]))], "{compression:?}");
        }
    }

    #[test]
    fn acknowledged_records_get_consecutive_offsets_or_minus_one() {
        assert_eq!(record_offset(100, 0), 100);
        assert_eq!(record_offset(100, 3), 103);
        assert_eq!(record_offset(-1, 3), -1);
    }

    #[test]
    fn split_halves_keep_order_identity_and_the_sequence_range() {
        let (first, second) = batch_of(&["a", "b", "c", "d", "e"], 40, PRODUCER).split();
        assert_eq!(values(&first), vec![&b"a"[..], b"b"]);
        assert_eq!(values(&second), vec![&b"c"[..], b"d", b"e"]);
        assert_eq!((first.base_sequence, first.identity), (40, PRODUCER));
        assert_eq!((second.base_sequence, second.identity), (42, PRODUCER));
    }

    #[test]
    fn split_second_half_wraps_its_sequence_like_the_broker() {
        let (first, second) = batch_of(&["a", "b", "c", "d"], i32::MAX - 1, PRODUCER).split();
        assert_eq!((first.base_sequence, second.base_sequence), (i32::MAX - 1, 0));
    }

    #[test]
    fn split_without_a_producer_id_carries_no_sequence() {
        let (first, second) = batch_of(&["a", "b"], SEQUENCE_NONE, Identity::NONE).split();
        assert_eq!(
            (first.base_sequence, second.base_sequence),
            (SEQUENCE_NONE, SEQUENCE_NONE)
        );
        assert_eq!((first.records.len(), second.records.len()), (1, 1));
    }

    #[test]
    fn split_halves_encode_as_the_records_of_the_whole_batch() {
        let whole = batch_of(&["a", "b", "c"], 7, PRODUCER);
        let mut bytes = encode(&whole, Compression::None, &[], "events", 0).unwrap();
        let whole_sequences: Vec<i32> = RecordBatchDecoder::decode(&mut bytes)
            .unwrap()
            .records
            .iter()
            .map(|r| r.sequence)
            .collect();
        let (first, second) = whole.split();
        let mut halves_sequences = Vec::new();
        for half in [&first, &second] {
            let mut bytes = encode(half, Compression::None, &[], "events", 0).unwrap();
            halves_sequences.extend(
                RecordBatchDecoder::decode(&mut bytes)
                    .unwrap()
                    .records
                    .iter()
                    .map(|r| r.sequence),
            );
        }
        assert_eq!(whole_sequences, vec![7, 8, 9]);
        assert_eq!(halves_sequences, whole_sequences);
    }

    #[test]
    #[should_panic(expected = "a batch of one record cannot be split")]
    fn a_batch_of_one_record_is_never_split() {
        let _ = batch_of(&["a"], 0, PRODUCER).split();
    }

    #[test]
    fn batches_behind_a_refused_record_take_over_its_sequences_in_order() {
        // Batches at 0 (2 records), 2 (the refused record), 3 (3) and 6 (1).
        let mut sequencer = Sequencer::default();
        let mut batches: Vec<Batch> = [2, 1, 3, 1]
            .iter()
            .map(|&count| {
                let records = vec!["r"; count];
                batch_of(&records, sequencer.assign(PRODUCER, count), PRODUCER)
            })
            .collect();
        let refused = batches.remove(1);
        sequencer.rewind(refused.identity, refused.base_sequence);
        renumber(&mut batches[1..], &mut sequencer, PRODUCER);
        let numbered: Vec<i32> = batches.iter().map(|b| b.base_sequence).collect();
        assert_eq!(numbered, vec![0, 2, 5]);
        assert_eq!(sequencer.assign(PRODUCER, 1), 6, "the next batch follows without a gap");
    }

    #[test]
    fn after_an_epoch_bump_every_waiting_batch_is_numbered_from_zero_in_order() {
        let mut sequencer = Sequencer::default();
        let mut batches: Vec<Batch> = [4, 2, 3]
            .iter()
            .map(|&count| batch_of(&vec!["r"; count], sequencer.assign(PRODUCER, count + 10), PRODUCER))
            .collect();
        let bumped = Identity {
            epoch: PRODUCER.epoch + 1,
            ..PRODUCER
        };
        sequencer.rewind(PRODUCER, batches[0].base_sequence);
        renumber(&mut batches, &mut sequencer, bumped);
        let numbered: Vec<(i32, Identity)> = batches.iter().map(|b| (b.base_sequence, b.identity)).collect();
        assert_eq!(numbered, vec![(0, bumped), (4, bumped), (6, bumped)]);
        // A failed bump leaves the identity: the same numbers again.
        sequencer.rewind(bumped, 0);
        renumber(&mut batches, &mut sequencer, bumped);
        assert_eq!(
            batches.iter().map(|b| b.base_sequence).collect::<Vec<_>>(),
            vec![0, 4, 6]
        );
    }
}
