//! A closed batch ([`Batch`]): its records, the identity and base sequence
//! it was numbered with, and its encoding as one Kafka record batch (v2,
//! compressed with the configured codec; byte layout in Kafka's
//! `DefaultRecordBatch`, written by `kafka-protocol`). Never numbers or
//! sends a batch: the worker does both.

use super::record::Queued;
use super::sequence::{record_sequence, Identity};
use crate::error::{ClientError, Result};
use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// A closed batch: its records, and the sequence numbering it was given.
pub(super) struct Batch {
    pub records: Vec<Queued>,
    pub base_sequence: i32,
    pub identity: Identity,
}

/// The batch as the records bytes of a Produce request's partition.
pub(super) fn encode(batch: &Batch, compression: Compression, topic: &str, partition: i32) -> Result<Bytes> {
    let first_timestamp = batch.records.iter().map(|q| q.timestamp_ms).min().unwrap_or(0);
    let records: Vec<KafkaRecord> = batch
        .records
        .iter()
        .enumerate()
        .map(|(index, queued)| KafkaRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: batch.identity.producer_id,
            producer_epoch: batch.identity.epoch,
            timestamp_type: TimestampType::Creation,
            offset: index as i64,
            sequence: record_sequence(batch.base_sequence, index),
            timestamp: queued.timestamp_ms.max(first_timestamp),
            key: queued.record.key.clone(),
            value: queued.record.value.clone(),
            headers: queued
                .record
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut out, &records, &options)
        .map_err(|e| ClientError::Invalid(format!("encoding a batch for {topic}/{partition}: {e:#}")))?;
    Ok(out.freeze())
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
    use crate::producer::record::ProducerRecord;
    use kafka_protocol::records::RecordBatchDecoder;
    use std::sync::Arc;
    use tokio::sync::{oneshot, Semaphore};

    fn queued(value: &'static str, timestamp_ms: i64) -> Queued {
        let budget = Arc::new(Semaphore::new(1));
        Queued {
            record: ProducerRecord {
                topic: "events".into(),
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::from_static(value.as_bytes())),
                headers: vec![("h".into(), Some(Bytes::from_static(b"v")))],
                ..ProducerRecord::default()
            },
            timestamp_ms,
            bytes: 1,
            delivery: oneshot::channel().0,
            _permit: budget.try_acquire_owned().expect("one permit"),
        }
    }

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
        let mut bytes = encode(&batch, Compression::None, "events", 0).unwrap();
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
    fn acknowledged_records_get_consecutive_offsets_or_minus_one() {
        assert_eq!(record_offset(100, 0), 100);
        assert_eq!(record_offset(100, 3), 103);
        assert_eq!(record_offset(-1, 3), -1);
    }
}
