//! The loader's account of records it can never load: finding offsets the
//! broker deleted before they were loaded (a gap, recorded in `relay_gaps`
//! in the batch's own transaction), and telling readers of the broker's
//! committed offsets how many gaps nobody acknowledged yet (the metadata
//! contract of [`relay_proto::offset_metadata`]).

use super::probe;
use super::{Loader, LoaderError};
use crate::config::OnGap;
use crate::sink::{Gap, GapCause};
use relay_client::consumer::{list_offset, TopicPartition};
use relay_client::records::{RecordView, Records};
use relay_proto::offset_metadata;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often the loader looks whether gaps were acknowledged: an operator's
/// UPDATE shows in `relay lag` within this long.
const GAPS_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// ListOffsets' timestamp for a partition's first offset.
const EARLIEST_TIMESTAMP: i64 = -2;

impl Loader {
    /// Commits `offsets` to the broker too, for `relay lag` (best effort:
    /// the warehouse is the truth), each with its partition's count of
    /// unacknowledged gaps in the metadata, so `relay lag` and `relay status`
    /// can say so without the warehouse.
    pub(super) async fn mirror_to_broker(&mut self, offsets: Vec<(TopicPartition, i64)>) {
        let Some((generation, member)) = self.consumer.generation() else {
            // Between two generations: committed once the group is joined again.
            self.mirror_failed = true;
            return;
        };
        let metadata: Vec<String> = offsets
            .iter()
            .map(|(tp, _)| offset_metadata::encode_gaps(self.open_gaps.get(tp).copied().unwrap_or(0)))
            .collect();
        let with_metadata: Vec<(TopicPartition, i64, &str)> = offsets
            .into_iter()
            .zip(&metadata)
            .map(|((tp, offset), metadata)| (tp, offset, metadata.as_str()))
            .collect();
        let committed = self
            .consumer
            .commit_offsets_with_metadata(&with_metadata, generation, &member)
            .await;
        self.mirror_failed = committed.is_err();
        if let Err(error) = committed {
            // WARN, not DEBUG: the committed offsets carry the count of open
            // gaps that `relay lag` and `relay status` show.
            tracing::warn!(%error, "committing offsets and open gap counts to the broker failed (the warehouse has them; `relay lag` may show old values until the next commit)");
        }
    }

    /// Re-reads the unacknowledged gaps (someone may have acknowledged one)
    /// at most every [`GAPS_REFRESH_INTERVAL`]; when the counts changed, or
    /// the last commit to the broker failed, the broker's mirror is
    /// committed again.
    pub(super) async fn refresh_open_gaps(&mut self, force: bool) -> Result<(), LoaderError> {
        if !force && self.gaps_checked.elapsed() < GAPS_REFRESH_INTERVAL {
            return Ok(());
        }
        self.gaps_checked = Instant::now();
        let open = self
            .retry("reading relay_gaps", |sink, group| Box::pin(sink.open_gaps(group)))
            .await?;
        let open: HashMap<TopicPartition, i64> = open
            .into_iter()
            .map(|((topic, partition), count)| (TopicPartition { topic, partition }, count))
            .collect();
        if open != self.open_gaps || self.mirror_failed {
            self.open_gaps = open;
            let offsets: Vec<(TopicPartition, i64)> = self
                .stored
                .iter()
                .filter_map(|(tp, offset)| offset.map(|offset| (tp.clone(), offset)))
                .collect();
            self.mirror_to_broker(offsets).await;
        }
        Ok(())
    }

    /// Offsets this loader needed and will never load: wherever a
    /// partition's records in `records` go on past the offset expected next
    /// (the warehouse's next offset, then each record's successor), the
    /// offsets jumped over are deleted by retention, not served by the
    /// broker (a corrupt batch set aside), or jumped past by the position;
    /// transaction markers of a Kafka cluster are passed over. With
    /// `on_gap = "stop"` a gap is an error instead.
    pub(super) async fn gaps(&self, records: &[Records]) -> Result<Vec<Gap>, LoaderError> {
        let mut gaps = Vec::new();
        // A partition without a stored offset expects its first record where it was started.
        let expected: HashMap<TopicPartition, Option<i64>> = self
            .stored
            .iter()
            .map(|(tp, stored)| (tp.clone(), stored.or_else(|| self.started_at.get(tp).copied())))
            .collect();
        for (tp, expected, found) in jumps(&expected, records.iter().flat_map(Records::iter)) {
            gaps.extend(self.missing(&tp, expected, found).await?);
        }
        if self.config.on_gap == OnGap::Stop {
            if let Some(gap) = gaps.first().cloned() {
                return Err(LoaderError::Gap {
                    topic: gap.topic,
                    partition: gap.partition,
                    first: gap.first_offset,
                    last: gap.last_offset,
                });
            }
        }
        Ok(gaps)
    }

    /// The gaps in `expected..found` of `tp`: what retention deleted, then,
    /// batch by batch from the log's start, what the broker does not serve
    /// or still holds (at most [`JUMP_PROBES_MAX`] probes).
    async fn missing(&self, tp: &TopicPartition, expected: i64, found: i64) -> Result<Vec<Gap>, LoaderError> {
        let gap = |first: i64, last: i64, cause: GapCause| Gap {
            topic: tp.topic.clone(),
            partition: tp.partition,
            first_offset: first,
            last_offset: last,
            cause,
        };
        let mut gaps = Vec::new();
        let mut cursor = expected;
        let log_start = list_offset(&self.cluster, tp, EARLIEST_TIMESTAMP).await?;
        if log_start > cursor {
            gaps.push(gap(cursor, found.min(log_start) - 1, GapCause::Retention));
            cursor = log_start;
        }
        let mut probes = 0;
        while cursor < found {
            probes += 1;
            let batch = if probes > JUMP_PROBES_MAX {
                None
            } else {
                probe::batch_at(&self.cluster, tp, cursor).await?
            };
            match batch {
                Some(batch) if batch.base_offset > cursor => {
                    let last = found.min(batch.base_offset) - 1;
                    gaps.push(gap(cursor, last, GapCause::NotServed));
                    cursor = batch.base_offset;
                }
                Some(batch) if batch.control => cursor = batch.last_offset + 1,
                Some(_) => {
                    gaps.push(gap(cursor, found - 1, GapCause::Skipped));
                    break;
                }
                None => {
                    gaps.push(gap(cursor, found - 1, GapCause::NotServed));
                    break;
                }
            }
        }
        assert_jump_accounted(tp, expected, found, cursor, &gaps);
        Ok(gaps)
    }
}

/// The batch's offsets jump only where a gap is recorded: every offset of
/// `expected..found` is in one of `gaps` (in order, apart, inside the jump)
/// or was passed over by `cursor` as a transaction marker.
fn assert_jump_accounted(tp: &TopicPartition, expected: i64, found: i64, cursor: i64, gaps: &[Gap]) {
    let mut from = expected;
    for gap in gaps {
        assert!(
            from <= gap.first_offset && gap.first_offset <= gap.last_offset && gap.last_offset < found,
            "{}/{}: gap {}..={} is not inside the jump {expected}..{found} after {from}",
            tp.topic,
            tp.partition,
            gap.first_offset,
            gap.last_offset
        );
        from = gap.last_offset + 1;
    }
    assert!(
        from.max(cursor) >= found,
        "{}/{}: the jump {expected}..{found} is accounted for only up to {}",
        tp.topic,
        tp.partition,
        from.max(cursor)
    );
}

/// Probes spent walking one jump over offsets the log still covers (each
/// transaction marker of a Kafka cluster costs one): past it, the rest of
/// the jump is recorded as not served rather than walked any further.
const JUMP_PROBES_MAX: usize = 64;

/// (partition, offset expected next, offset found) wherever a partition's
/// records go on past the offset expected: the warehouse's next offset
/// (`stored`) for its first record, each record's successor after that, so
/// a position that jumped between two fetches of one batch is seen too.
/// Partitions not in `stored` (not ours) or without a stored offset yet
/// start wherever they start. An undecodable batch's record stands for the
/// whole batch at its last offset: it jumps nothing.
pub(super) fn jumps<'r>(
    stored: &HashMap<TopicPartition, Option<i64>>,
    records: impl IntoIterator<Item = RecordView<'r>>,
) -> Vec<(TopicPartition, i64, i64)> {
    // Records come in runs per partition: the maps are looked up once a run.
    let mut next: HashMap<TopicPartition, Option<i64>> = HashMap::new();
    let mut run: Option<Run> = None;
    let mut found = Vec::new();
    for record in records {
        let same = run
            .as_ref()
            .is_some_and(|run| run.tp.partition == record.partition && run.tp.topic == record.topic);
        if !same {
            if let Some(done) = run.take().filter(|done| done.ours) {
                next.insert(done.tp, done.expected);
            }
            let tp = TopicPartition {
                topic: record.topic.to_owned(),
                partition: record.partition,
            };
            let known = next.get(&tp).or_else(|| stored.get(&tp)).copied();
            run = Some(Run {
                tp,
                ours: known.is_some(),
                expected: known.flatten(),
            });
        }
        let run = run.as_mut().expect("a run for this record");
        if !run.ours {
            continue;
        }
        if let Some(expected) = run.expected {
            if record.offset > expected && record.undecodable.is_none() {
                found.push((run.tp.clone(), expected, record.offset));
            }
        }
        run.expected = Some(run.expected.map_or(record.offset + 1, |e| e.max(record.offset + 1)));
    }
    found
}

/// One partition's run of records in [`jumps`]: whether it is ours, and
/// the offset expected next.
struct Run {
    tp: TopicPartition,
    ours: bool,
    expected: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_client::records::ConsumerRecord;

    fn record(partition: i32, offset: i64) -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".into(),
            partition,
            offset,
            timestamp_ms: 0,
            key: None,
            value: None,
            headers: Vec::new(),
            undecodable: None,
        }
    }

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition {
            topic: "t".into(),
            partition,
        }
    }

    #[test]
    fn a_position_that_jumps_between_two_fetches_of_one_batch_is_a_jump() {
        // Two polls feed one batch: 0..=9, then (an out-of-range reset or a
        // batch the broker set aside) 500..=501.
        let stored = HashMap::from([(tp(0), Some(0))]);
        let records: Vec<_> = (0..10).chain(500..502).map(|o| record(0, o)).collect();
        assert_eq!(jumps(&stored, Records::from(records).iter()), vec![(tp(0), 10, 500)]);
    }

    #[test]
    fn every_jump_of_every_partition_is_found_from_the_stored_offset() {
        let stored = HashMap::from([(tp(0), Some(5)), (tp(1), None)]);
        let records = vec![
            record(0, 7),
            record(0, 8),
            record(1, 40),
            record(1, 41),
            record(0, 20),
            record(2, 99),
        ];
        assert_eq!(
            jumps(&stored, Records::from(records).iter()),
            vec![(tp(0), 5, 7), (tp(0), 9, 20)],
            "partition 1 has no stored offset (starts where it starts); 2 is not ours"
        );
    }

    #[test]
    fn contiguous_records_and_an_undecodable_batch_jump_nothing() {
        let stored = HashMap::from([(tp(0), Some(3))]);
        let mut undecodable = record(0, 9);
        undecodable.undecodable = Some("garbage".into());
        let records = vec![record(0, 3), record(0, 4), undecodable, record(0, 10)];
        assert_eq!(jumps(&stored, Records::from(records).iter()), Vec::new());
    }
}
