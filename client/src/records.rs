//! Records out of fetched bytes: whole batches are split with relay-proto's
//! CRC-checked iterator (a trailing partial batch, which Kafka brokers may
//! send, is ignored and fetched again), then decoded with the
//! `kafka-protocol` decoder, which handles every codec.

use crate::error::{ClientError, Result};
use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
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
pub fn decode(
    topic: &str,
    partition: i32,
    bytes: &Bytes,
    from_offset: i64,
) -> Result<(Vec<ConsumerRecord>, Option<i64>)> {
    let mut records = Vec::new();
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
        let set = match RecordBatchDecoder::decode(&mut raw.clone()) {
            Ok(set) => set,
            Err(error) => {
                records.push(ConsumerRecord {
                    topic: topic.to_owned(),
                    partition,
                    offset: header.last_offset(),
                    timestamp_ms: header.max_timestamp(),
                    key: None,
                    value: Some(raw),
                    headers: Vec::new(),
                    undecodable: Some(format!(
                        "batch of offsets {}..={} passed its CRC check but cannot be decoded: {error:#}",
                        header.base_offset(),
                        header.last_offset()
                    )),
                });
                continue;
            }
        };
        for record in set.records {
            if record.offset < from_offset {
                continue;
            }
            records.push(ConsumerRecord {
                topic: topic.to_owned(),
                partition,
                offset: record.offset,
                timestamp_ms: record.timestamp,
                key: record.key,
                value: record.value,
                headers: record.headers.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                undecodable: None,
            });
        }
    }
    Ok((records, next_offset))
}
