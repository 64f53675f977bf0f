//! A plain encoder of uncompressed record batches v2, for tests, benches and
//! golden files. relay-client's producer has its own encoder (straight from
//! its queued records, any codec), checked byte for byte against this one;
//! this builder exists so lower layers can make exact bytes without it.
//!
//! Record layout inside a batch (all varints zig-zag):
//! `length, attributes i8, timestamp_delta varlong, offset_delta varint,
//! key_length varint (-1 = null), key, value_length varint, value,
//! header_count varint, (key_length, key, value_length, value)*`.

use crate::batch::{HEADER_BYTES, LOG_OVERHEAD_BYTES, MAGIC_V2};
use crate::crc::seal_batch_crc;
use crate::varint::{put_varint, put_varlong};

/// One record to put in a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSpec {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Milliseconds after the batch's first timestamp.
    pub timestamp_delta_ms: i64,
}

impl RecordSpec {
    pub fn value(value: Vec<u8>) -> Self {
        Self {
            value: Some(value),
            ..Self::default()
        }
    }
}

/// Builds one uncompressed batch with base offset 0.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    first_timestamp_ms: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    records: Vec<u8>,
    record_count: i32,
    max_timestamp_delta_ms: i64,
}

impl BatchBuilder {
    pub fn new(first_timestamp_ms: i64) -> Self {
        Self {
            first_timestamp_ms,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records: Vec::new(),
            record_count: 0,
            max_timestamp_delta_ms: 0,
        }
    }

    /// Marks the batch as sent by an idempotent producer.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn push(&mut self, record: RecordSpec) -> &mut Self {
        let mut body = Vec::with_capacity(16 + record.value.as_ref().map_or(0, Vec::len));
        body.push(0); // record attributes: unused in v2
        put_varlong(&mut body, record.timestamp_delta_ms);
        put_varint(&mut body, self.record_count);
        put_bytes(&mut body, record.key.as_deref());
        put_bytes(&mut body, record.value.as_deref());
        put_varint(&mut body, record.headers.len() as i32);
        for (key, value) in &record.headers {
            put_bytes(&mut body, Some(key.as_bytes()));
            put_bytes(&mut body, value.as_deref());
        }
        put_varint(&mut self.records, body.len() as i32);
        self.records.extend_from_slice(&body);
        self.record_count += 1;
        self.max_timestamp_delta_ms = self.max_timestamp_delta_ms.max(record.timestamp_delta_ms);
        self
    }

    pub fn record_count(&self) -> i32 {
        self.record_count
    }

    /// The finished batch, CRC included.
    ///
    /// # Panics
    /// If no record was pushed: Kafka has no empty batches.
    pub fn build(&self) -> Vec<u8> {
        assert!(self.record_count > 0, "a batch needs at least one record");
        let total = HEADER_BYTES + self.records.len();
        let mut batch = Vec::with_capacity(total);
        batch.extend_from_slice(&0i64.to_be_bytes());
        batch.extend_from_slice(&((total - LOG_OVERHEAD_BYTES) as i32).to_be_bytes());
        batch.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch: none, as producers send
        batch.push(MAGIC_V2 as u8);
        batch.extend_from_slice(&0u32.to_be_bytes()); // CRC, sealed below
        batch.extend_from_slice(&0i16.to_be_bytes()); // attributes: no codec, create time
        batch.extend_from_slice(&(self.record_count - 1).to_be_bytes());
        batch.extend_from_slice(&self.first_timestamp_ms.to_be_bytes());
        let max_timestamp_ms = self.first_timestamp_ms + self.max_timestamp_delta_ms;
        batch.extend_from_slice(&max_timestamp_ms.to_be_bytes());
        batch.extend_from_slice(&self.producer_id.to_be_bytes());
        batch.extend_from_slice(&self.producer_epoch.to_be_bytes());
        batch.extend_from_slice(&self.base_sequence.to_be_bytes());
        batch.extend_from_slice(&self.record_count.to_be_bytes());
        debug_assert_eq!(batch.len(), HEADER_BYTES);
        batch.extend_from_slice(&self.records);
        seal_batch_crc(&mut batch);
        batch
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(bytes) => {
            put_varint(out, bytes.len() as i32);
            out.extend_from_slice(bytes);
        }
    }
}
