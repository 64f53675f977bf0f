//! Fetch positions and fetching for a consumer's owned partitions: where a
//! partition starts (its committed offset, else the start position), one
//! Fetch request per leader, decoding what came back, advancing each
//! position past the records returned, and resetting a position the broker
//! reports out of range. A position only moves forward while fetching, and
//! only when the whole fetch completes (a dropped fetch moves nothing).
//! Never joins a group or commits: the consumer does.

use super::config::ConsumerConfig;
use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::error::{check, ClientError, Result};
use crate::offsets::list_offset;
use crate::records::Records;
use crate::types::{StartPosition, TopicPartition};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// The next offset to fetch of each partition that has one, and each
/// partition's high watermark as the latest fetch reported it.
#[derive(Debug, Default, Clone)]
pub(super) struct Positions {
    next_offsets: HashMap<TopicPartition, i64>,
    high_watermarks: HashMap<TopicPartition, i64>,
}

impl Positions {
    pub fn get(&self, partition: &TopicPartition) -> Option<i64> {
        self.next_offsets.get(partition).copied()
    }

    pub fn seek(&mut self, partition: TopicPartition, offset: i64) {
        self.next_offsets.insert(partition, offset);
    }

    pub fn forget(&mut self, partition: &TopicPartition) {
        self.next_offsets.remove(partition);
    }

    /// Drops the positions of partitions not in `assigned`.
    pub fn retain(&mut self, assigned: &[TopicPartition]) {
        self.next_offsets.retain(|tp, _| assigned.contains(tp));
    }

    pub fn high_watermark(&self, partition: &TopicPartition) -> Option<i64> {
        self.high_watermarks.get(partition).copied()
    }

    /// Whether every partition of `assignment` is read up to its high watermark.
    pub fn at_end(&self, assignment: &[TopicPartition]) -> bool {
        assignment
            .iter()
            .all(|tp| match (self.next_offsets.get(tp), self.high_watermarks.get(tp)) {
                (Some(position), Some(mark)) => position >= mark,
                _ => false,
            })
    }

    /// The partitions of `assignment` without a position, in its order.
    pub fn missing(&self, assignment: &[TopicPartition]) -> Vec<TopicPartition> {
        assignment
            .iter()
            .filter(|tp| !self.next_offsets.contains_key(*tp))
            .cloned()
            .collect()
    }

    /// Takes in one partition's fetched data: notes its high watermark,
    /// decodes the records at or after the position (a batch may start
    /// earlier; `sticky` names the sticky header keys), and moves the position past the last whole batch. Data for
    /// a partition without a position is ignored.
    fn accept(
        &mut self,
        tp: TopicPartition,
        topic: &Arc<str>,
        high_watermark: i64,
        bytes: Option<Bytes>,
        sticky: &[Bytes],
        records: &mut Records,
    ) -> Result<()> {
        let Some(position) = self.get(&tp) else {
            return Ok(());
        };
        self.high_watermarks.insert(tp.clone(), high_watermark);
        let Some(bytes) = bytes.filter(|b| !b.is_empty()) else {
            return Ok(());
        };
        let first = records.len();
        let batches_end = records.decode_into(topic, tp.partition, &bytes, position, sticky)?;
        let next = (records.len() > first)
            .then(|| records.get(records.len() - 1))
            .flatten()
            .map(|r| r.offset + 1)
            .into_iter()
            .chain(batches_end)
            .max();
        if let Some(next) = next.filter(|n| *n > position) {
            self.next_offsets.insert(tp, next);
        }
        Ok(())
    }
}

/// Where a partition starts: its committed offset when the group has one.
pub(super) fn committed_position(committed: Option<i64>) -> Option<i64> {
    committed.filter(|offset| *offset >= 0)
}

/// Where a position the broker reports out of range goes: the end when the
/// consumer starts from the end, else the log start (records were deleted
/// under it, or the offset was never written).
pub(super) fn out_of_range_reset(start: StartPosition) -> StartPosition {
    if start == StartPosition::Latest {
        StartPosition::Latest
    } else {
        StartPosition::Earliest
    }
}

/// Resolves a start position to an offset of `partition`.
pub(super) async fn start_offset(cluster: &Cluster, partition: &TopicPartition, start: StartPosition) -> Result<i64> {
    start
        .resolve(|timestamp| list_offset(cluster, partition, timestamp))
        .await
        .map_err(|error| match error {
            ClientError::Invalid(reason) => {
                ClientError::Invalid(format!("{}/{}: {reason}", partition.topic, partition.partition))
            }
            other => other,
        })
}

/// Gives each of `missing` a position: its offset in `committed`, else `start`.
pub(super) async fn initialize(
    cluster: &Cluster,
    start: StartPosition,
    missing: Vec<TopicPartition>,
    committed: &HashMap<TopicPartition, i64>,
    positions: &mut Positions,
) -> Result<()> {
    for tp in missing {
        let position = match committed_position(committed.get(&tp).copied()) {
            Some(offset) => offset,
            None => start_offset(cluster, &tp, start).await?,
        };
        positions.seek(tp, position);
    }
    Ok(())
}

/// Fetch requests already on their way (one per leader), sent ahead from
/// the positions in `from` (the assignment's, in order) while the caller
/// worked on the previous fetch's records. Dropping it abandons their
/// answers; the tasks run to their end (aborting one could cut a request
/// frame in the middle of the connection's stream).
pub(super) struct Ahead {
    from: Vec<(TopicPartition, Option<i64>)>,
    requests: Vec<Request>,
}

/// One leader's Fetch, answered by its own task.
type Request = (Arc<Connection>, JoinHandle<Result<FetchResponse>>);

impl Ahead {
    /// Whether these requests fetch exactly what a fetch now would.
    fn matches(&self, assignment: &[TopicPartition], positions: &Positions) -> bool {
        self.from.len() == assignment.len()
            && self
                .from
                .iter()
                .zip(assignment)
                .all(|((tp, offset), now)| tp == now && *offset == positions.get(now))
    }
}

fn snapshot(assignment: &[TopicPartition], positions: &Positions) -> Vec<(TopicPartition, Option<i64>)> {
    assignment.iter().map(|tp| (tp.clone(), positions.get(tp))).collect()
}

/// Sends one Fetch per leader of `assignment`, from each partition's
/// position; each is answered by its own task.
async fn send_requests(
    cluster: &Cluster,
    config: &ConsumerConfig,
    assignment: &[TopicPartition],
    positions: &Positions,
) -> Result<Vec<Request>> {
    let mut by_leader: HashMap<String, (Arc<Connection>, Vec<TopicPartition>)> = HashMap::new();
    for tp in assignment {
        let connection = cluster.leader(&tp.topic, tp.partition).await?;
        by_leader
            .entry(connection.address().to_owned())
            .or_insert_with(|| (connection, Vec::new()))
            .1
            .push(tp.clone());
    }
    Ok(by_leader
        .into_values()
        .map(|(connection, partitions)| {
            let request = fetch_request(config, &partitions, positions);
            let sender = Arc::clone(&connection);
            let answer = tokio::spawn(async move { sender.send(ApiKey::Fetch, &request).await });
            (connection, answer)
        })
        .collect())
}

/// One Fetch per leader of `assignment`, from each partition's position
/// (taken from `ahead` when it was sent from the same positions; `None`:
/// nothing is sent ahead). While the
/// partitions hold more than was fetched, the next Fetch is sent at once
/// into `ahead`, so the broker reads it while the caller works on these
/// records; caught up, nothing is sent ahead (a long-polling Fetch would
/// hold the connection's other requests behind it).
pub(super) async fn fetch(
    cluster: &Cluster,
    config: &ConsumerConfig,
    assignment: &[TopicPartition],
    positions: &mut Positions,
    mut ahead: Option<&mut Option<Ahead>>,
) -> Result<Records> {
    let requests = match ahead.as_mut().and_then(|ahead| ahead.take()) {
        Some(sent) if sent.matches(assignment, positions) => sent.requests,
        _ => send_requests(cluster, config, assignment, positions).await?,
    };
    // Positions move on a copy, taken over only once every answer is in:
    // a fetch dropped at any await (a stop, a caller that stops waiting)
    // leaves them where they were, so no fetched record is skipped.
    let mut moved = positions.clone();
    let mut records = Records::default();
    for (connection, answer) in requests {
        let response = answer
            .await
            .map_err(|error| ClientError::Invalid(format!("fetch task failed: {error}")))??;
        check(response.error_code, || {
            format!("fetching from {}", connection.address())
        })?;
        for topic in response.responses {
            // One topic name per topic of the answer, shared by its records.
            let name: Arc<str> = Arc::from(topic.topic.as_str());
            for partition in topic.partitions {
                let tp = TopicPartition {
                    topic: name.to_string(),
                    partition: partition.partition_index,
                };
                apply_fetched(cluster, config, &mut moved, (tp, &name), partition, &mut records).await?;
            }
        }
    }
    *positions = moved;
    let ahead = ahead.filter(|_| !records.is_empty() && !positions.at_end(assignment));
    if let Some(ahead) = ahead {
        if let Ok(requests) = send_requests(cluster, config, assignment, positions).await {
            *ahead = Some(Ahead {
                from: snapshot(assignment, positions),
                requests,
            });
        }
    }
    Ok(records)
}

/// Fetch requests built so far: each lists its partitions starting one
/// further along, so that when a response's byte budget runs out (only the
/// first non-empty partition may exceed it, KIP-74) the partitions left
/// without data are not always the same ones.
static FETCH_ROTATION: AtomicUsize = AtomicUsize::new(0);

fn fetch_request(config: &ConsumerConfig, partitions: &[TopicPartition], positions: &Positions) -> FetchRequest {
    let start = match partitions.len() {
        0 => 0,
        count => FETCH_ROTATION.fetch_add(1, Ordering::Relaxed) % count,
    };
    // Topics in the order their first partition comes in the rotated list.
    let mut topics: Vec<(String, Vec<FetchPartition>)> = Vec::new();
    for tp in partitions[start..].iter().chain(&partitions[..start]) {
        let partition = FetchPartition::default()
            .with_partition(tp.partition)
            .with_fetch_offset(positions.next_offsets[tp])
            .with_partition_max_bytes(config.partition_bytes_max);
        match topics.iter_mut().find(|(topic, _)| *topic == tp.topic) {
            Some((_, listed)) => listed.push(partition),
            None => topics.push((tp.topic.clone(), vec![partition])),
        }
    }
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(config.fetch_wait_ms_max)
        .with_min_bytes(1)
        .with_max_bytes(config.fetch_bytes_max)
        .with_session_epoch(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(topic, partitions)| {
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(topic)))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

/// One partition's part of a Fetch answer: its records, or what its error
/// code means for the position.
async fn apply_fetched(
    cluster: &Cluster,
    config: &ConsumerConfig,
    positions: &mut Positions,
    (tp, topic): (TopicPartition, &Arc<str>),
    partition: PartitionData,
    records: &mut Records,
) -> Result<()> {
    let Some(position) = positions.get(&tp) else {
        return Ok(());
    };
    match ResponseError::try_from_code(partition.error_code) {
        None => positions.accept(
            tp,
            topic,
            partition.high_watermark,
            partition.records,
            &config.sticky_header_keys,
            records,
        ),
        Some(ResponseError::OffsetOutOfRange) => {
            let offset = start_offset(cluster, &tp, out_of_range_reset(config.start)).await?;
            tracing::warn!(topic = %tp.topic, partition = tp.partition, position, reset_to = offset, "offset out of range; resetting");
            positions.seek(tp, offset);
            Ok(())
        }
        Some(error) if error.is_retriable() => {
            cluster.invalidate(&tp.topic);
            Ok(())
        }
        Some(error) => Err(ClientError::broker(
            format!("fetching {}/{}", tp.topic, tp.partition),
            error,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    /// Successive requests start their partition lists at different
    /// partitions (each lists every partition once), so a response budget
    /// spent early does not always leave the same partitions without data.
    #[test]
    fn successive_fetch_requests_rotate_their_partitions() {
        let partitions: Vec<TopicPartition> = (0..3)
            .map(|partition| TopicPartition {
                topic: "t".into(),
                partition,
            })
            .collect();
        let mut positions = Positions::default();
        for tp in &partitions {
            positions.seek(tp.clone(), 0);
        }
        let config = ConsumerConfig::new(vec!["t".into()], None);
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..6 {
            let request = fetch_request(&config, &partitions, &positions);
            let listed: Vec<i32> = request.topics[0].partitions.iter().map(|p| p.partition).collect();
            let mut sorted = listed.clone();
            sorted.sort();
            assert_eq!(sorted, vec![0, 1, 2], "every partition once: {listed:?}");
            firsts.insert(listed[0]);
        }
        assert!(firsts.len() > 1, "always the same first partition: {firsts:?}");
    }

    /// `Positions::accept` into a fresh vector.
    fn accept(
        positions: &mut Positions,
        tp: TopicPartition,
        high_watermark: i64,
        bytes: Option<Bytes>,
    ) -> Result<Records> {
        let mut records = Records::default();
        let topic: Arc<str> = Arc::from(tp.topic.as_str());
        positions.accept(tp, &topic, high_watermark, bytes, &[], &mut records)?;
        Ok(records)
    }

    fn events(partition: i32) -> TopicPartition {
        TopicPartition {
            topic: "events".into(),
            partition,
        }
    }

    /// One record batch holding offsets `base_offset..base_offset + count`.
    fn batch(base_offset: i64, count: i64) -> BytesMut {
        let records: Vec<Record> = (base_offset..base_offset + count)
            .map(|offset| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset,
                // The encoder keeps records in one batch while offset minus
                // sequence stays the same; -1 is the base without a producer.
                sequence: (offset - base_offset) as i32 - 1,
                timestamp: 1_000 + offset,
                key: None,
                value: Some(Bytes::from(format!("record {offset}"))),
                headers: IndexMap::new(),
            })
            .collect();
        let mut out = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut out, &records, &options).unwrap();
        assert_eq!(relay_proto::RecordBatches::new(&out).count(), 1, "one batch");
        out
    }

    fn fetched(batches: &[BytesMut]) -> Option<Bytes> {
        Some(batches.concat().into())
    }

    fn offsets(records: &Records) -> Vec<i64> {
        records.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn position_advances_past_the_last_record_of_a_fetched_batch() {
        let mut positions = Positions::default();
        positions.seek(events(0), 10);
        let records = accept(&mut positions, events(0), 30, fetched(&[batch(10, 5)])).unwrap();
        assert_eq!(offsets(&records), vec![10, 11, 12, 13, 14]);
        assert_eq!(records.get(2).unwrap().value, Some(&b"record 12"[..]));
        assert_eq!(positions.get(&events(0)), Some(15));
        assert_eq!(positions.high_watermark(&events(0)), Some(30));
    }

    #[test]
    fn records_below_the_position_are_skipped_in_a_batch_that_starts_earlier() {
        let mut positions = Positions::default();
        positions.seek(events(0), 12);
        let records = accept(&mut positions, events(0), 15, fetched(&[batch(10, 5)])).unwrap();
        assert_eq!(offsets(&records), vec![12, 13, 14]);
        assert_eq!(positions.get(&events(0)), Some(15));
    }

    #[test]
    fn position_advances_past_every_whole_batch_and_ignores_a_partial_tail() {
        let mut positions = Positions::default();
        positions.seek(events(0), 10);
        let mut tail = batch(15, 4);
        tail.truncate(tail.len() - 3);
        let records = accept(&mut positions, events(0), 19, fetched(&[batch(10, 5), tail])).unwrap();
        assert_eq!(offsets(&records), vec![10, 11, 12, 13, 14]);
        assert_eq!(positions.get(&events(0)), Some(15));

        let records = accept(&mut positions, events(0), 19, fetched(&[batch(15, 4)])).unwrap();
        assert_eq!(offsets(&records), vec![15, 16, 17, 18]);
        assert_eq!(positions.get(&events(0)), Some(19));
    }

    #[test]
    fn position_never_moves_back_for_a_batch_wholly_below_it() {
        let mut positions = Positions::default();
        positions.seek(events(0), 20);
        let records = accept(&mut positions, events(0), 25, fetched(&[batch(10, 5)])).unwrap();
        assert!(records.is_empty());
        assert_eq!(positions.get(&events(0)), Some(20));
    }

    #[test]
    fn empty_fetch_keeps_the_position_and_notes_the_high_watermark() {
        let mut positions = Positions::default();
        positions.seek(events(0), 7);
        assert!(accept(&mut positions, events(0), 7, None).unwrap().is_empty());
        assert!(accept(&mut positions, events(0), 9, Some(Bytes::new()))
            .unwrap()
            .is_empty());
        assert_eq!(positions.get(&events(0)), Some(7));
        assert_eq!(positions.high_watermark(&events(0)), Some(9));
    }

    #[test]
    fn data_for_a_partition_without_a_position_is_ignored() {
        let mut positions = Positions::default();
        let records = accept(&mut positions, events(1), 15, fetched(&[batch(10, 5)])).unwrap();
        assert!(records.is_empty());
        assert_eq!(positions.get(&events(1)), None);
        assert_eq!(positions.high_watermark(&events(1)), None);
    }

    #[test]
    fn corrupt_fetched_bytes_are_an_error_and_keep_the_position() {
        let mut positions = Positions::default();
        positions.seek(events(0), 10);
        let mut corrupt = batch(10, 5);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        assert!(accept(&mut positions, events(0), 15, fetched(&[corrupt])).is_err());
        assert_eq!(positions.get(&events(0)), Some(10));
    }

    #[test]
    fn out_of_range_resets_to_the_end_only_when_starting_from_the_end() {
        assert_eq!(out_of_range_reset(StartPosition::Latest), StartPosition::Latest);
        assert_eq!(out_of_range_reset(StartPosition::Earliest), StartPosition::Earliest);
        assert_eq!(out_of_range_reset(StartPosition::Offset(5)), StartPosition::Earliest);
        assert_eq!(
            out_of_range_reset(StartPosition::Timestamp(1_000)),
            StartPosition::Earliest
        );
    }

    #[test]
    fn committed_offset_wins_over_the_start_position_when_present() {
        assert_eq!(committed_position(Some(0)), Some(0));
        assert_eq!(committed_position(Some(42)), Some(42));
        assert_eq!(committed_position(Some(-1)), None);
        assert_eq!(committed_position(None), None);
    }

    #[test]
    fn missing_lists_assigned_partitions_without_a_position_in_order() {
        let mut positions = Positions::default();
        positions.seek(events(1), 3);
        let assignment = [events(2), events(1), events(0)];
        assert_eq!(positions.missing(&assignment), vec![events(2), events(0)]);
    }

    #[test]
    fn a_rebalance_keeps_only_the_positions_still_assigned() {
        let mut positions = Positions::default();
        positions.seek(events(0), 3);
        positions.seek(events(1), 4);
        positions.retain(&[events(1), events(2)]);
        assert_eq!(positions.get(&events(0)), None);
        assert_eq!(positions.get(&events(1)), Some(4));
        positions.forget(&events(1));
        assert_eq!(positions.get(&events(1)), None);
    }

    #[test]
    fn at_end_needs_every_partition_at_its_high_watermark() {
        let mut positions = Positions::default();
        let assignment = [events(0), events(1)];
        positions.seek(events(0), 10);
        positions.seek(events(1), 10);
        assert!(!positions.at_end(&assignment), "no high watermark yet");
        accept(&mut positions, events(0), 10, None).unwrap();
        accept(&mut positions, events(1), 11, None).unwrap();
        assert!(!positions.at_end(&assignment));
        positions.seek(events(1), 11);
        assert!(positions.at_end(&assignment));
        assert!(positions.at_end(&[]));
    }
}
