//! What the broker holds at one offset, for telling a gap from a jump that
//! loses nothing: one Fetch of a single partition at that offset, read only
//! as far as the first batch's header (Kafka record batch v2,
//! `proto-spec/STORAGE.md`: base offset i64 at byte 0, attributes i16 at 21
//! with bit 5 marking a control batch, last offset delta i32 at 23). Never
//! moves a consumer position and never decodes a record.

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use relay_client::consumer::TopicPartition;
use relay_client::error::check;
use relay_client::{Cluster, Result};

/// Bytes asked for: one batch header. The broker answers at least the whole
/// first batch whatever the limit (as Kafka does), so this only keeps the
/// answer to one batch.
const PROBE_BYTES_MAX: i32 = 1;

/// Bytes of a batch header up to and including its last offset delta.
const HEADER_BYTES_MIN: usize = 27;
/// A control batch (transaction marker) carries this attributes bit.
const CONTROL_ATTRIBUTE: i16 = 1 << 5;

/// The first batch the broker serves at or after an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    /// A transaction marker: its offsets hold no record, and none is lost.
    pub control: bool,
}

/// Reads the header of the first batch in a Fetch answer's bytes.
pub fn first_batch(bytes: &[u8]) -> Option<FirstBatch> {
    if bytes.len() < HEADER_BYTES_MIN {
        return None;
    }
    let base_offset = i64::from_be_bytes(bytes[0..8].try_into().ok()?);
    let attributes = i16::from_be_bytes(bytes[21..23].try_into().ok()?);
    let last_offset_delta = i32::from_be_bytes(bytes[23..27].try_into().ok()?);
    Some(FirstBatch {
        base_offset,
        last_offset: base_offset + i64::from(last_offset_delta),
        control: attributes & CONTROL_ATTRIBUTE != 0,
    })
}

/// The first batch `tp`'s leader serves from `offset` on (`None`: nothing
/// there, the offset is at or past the end).
pub async fn batch_at(cluster: &Cluster, tp: &TopicPartition, offset: i64) -> Result<Option<FirstBatch>> {
    let connection = cluster.leader(&tp.topic, tp.partition).await?;
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(PROBE_BYTES_MAX)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(tp.topic.clone())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(tp.partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(PROBE_BYTES_MAX)])]);
    let response: FetchResponse = connection.send(ApiKey::Fetch, &request).await?;
    check(response.error_code, || {
        format!("probing {}/{} at offset {offset}", tp.topic, tp.partition)
    })?;
    let Some(partition) = response.responses.first().and_then(|t| t.partitions.first()) else {
        return Ok(None);
    };
    check(partition.error_code, || {
        format!("probing {}/{} at offset {offset}", tp.topic, tp.partition)
    })?;
    Ok(partition.records.as_ref().map(Bytes::as_ref).and_then(first_batch))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(base_offset: i64, attributes: i16, last_offset_delta: i32) -> Vec<u8> {
        let mut bytes = vec![0u8; 61];
        bytes[0..8].copy_from_slice(&base_offset.to_be_bytes());
        bytes[21..23].copy_from_slice(&attributes.to_be_bytes());
        bytes[23..27].copy_from_slice(&last_offset_delta.to_be_bytes());
        bytes
    }

    #[test]
    fn a_batch_header_gives_its_offsets_and_whether_it_is_a_marker() {
        assert_eq!(
            first_batch(&header(1000, 0, 999)),
            Some(FirstBatch {
                base_offset: 1000,
                last_offset: 1999,
                control: false
            })
        );
        assert!(first_batch(&header(7, CONTROL_ATTRIBUTE, 0)).unwrap().control);
        assert_eq!(first_batch(&[0u8; 20]), None, "too short for a header");
    }
}
