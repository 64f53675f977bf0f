//! Retention of every partition, with the protection a topic's
//! `protected_groups` ask for: retention does not pass the lowest committed
//! offset of those groups, until the partition is larger than
//! `retention_bytes_hard`; what the cap then deletes unread is logged at
//! ERROR, naming the groups and offsets, and counted per group.
//!
//! The floor of a partition is the minimum of its protected groups'
//! committed offsets. A group with no committed offset there protects the
//! whole partition: it may be a loader that has not committed yet, or one
//! not started yet, and "not yet" must not mean "nothing to keep".
//!
//! This layer does not reach into the group offsets: the caller hands them
//! in as [`CommittedOffsets`] (the broker's upkeep and the metrics answer
//! from the group coordinator's store). The log only ever sees an offset.

use super::{Topic, Topics};
use crate::log::{RetentionFloor, RetentionOutcome};
use metrics::counter;
use std::ops::Range;

/// Records the hard cap deleted that a protected group had not read, by
/// topic and group (exported by the broker's metrics).
pub use crate::metric_names::RETENTION_PROTECTED_DELETED_RECORDS as PROTECTED_DELETED_RECORDS_METRIC;

/// How far groups have read, as retention needs to know it.
pub trait CommittedOffsets {
    /// The group's committed offset (the next offset it reads) of a
    /// partition; `None` when the group has not committed it.
    fn committed_offset(&self, group: &str, topic: &str, partition: i32) -> Option<i64>;
}

/// Records one protected group had not read when retention deleted them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadDeletion {
    pub topic: String,
    pub partition: i32,
    pub group: String,
    /// From the group's committed offset (or the first offset deleted) to
    /// the end of what was deleted.
    pub offsets: Range<i64>,
}

impl Topic {
    /// The offset retention keeps from in `partition`: the lowest position
    /// of the topic's protected groups, or unprotected when it has none.
    pub fn retention_floor(&self, partition: i32, committed: &dyn CommittedOffsets) -> RetentionFloor {
        floor_of(&self.protected_positions(partition, committed))
    }

    /// Each protected group with the offset it reads next in `partition`; 0
    /// (the whole partition) for a group that has committed nothing there.
    fn protected_positions(&self, partition: i32, committed: &dyn CommittedOffsets) -> Vec<(String, i64)> {
        self.settings
            .protected_groups()
            .iter()
            .map(|group| {
                let position = committed.committed_offset(group, &self.name, partition).unwrap_or(0);
                (group.clone(), position.max(0))
            })
            .collect()
    }
}

fn floor_of(positions: &[(String, i64)]) -> RetentionFloor {
    match positions.iter().map(|(_, position)| *position).min() {
        Some(offset) => RetentionFloor::KeepFrom(offset),
        None => RetentionFloor::Unprotected,
    }
}

impl Topics {
    /// Runs retention on every partition, keeping what protected groups have
    /// not read (up to the hard cap). Returns, and logs and counts, what the
    /// hard cap deleted unread.
    pub fn enforce_retention(&self, now_ms: i64, committed: &dyn CommittedOffsets) -> Vec<UnreadDeletion> {
        let mut unread = Vec::new();
        for topic in self.list() {
            for (index, log) in topic.partitions.iter().enumerate() {
                let partition = index as i32;
                let positions = topic.protected_positions(partition, committed);
                match log.enforce_retention(now_ms, floor_of(&positions)) {
                    Ok(outcome) if !outcome.unread_offsets_deleted.is_empty() => {
                        let deletions = unread_deletions(&topic, partition, &positions, &outcome);
                        report(&topic, partition, &outcome, &deletions);
                        unread.extend(deletions);
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(dir = %log.dir().display(), %error, "retention failed"),
                }
            }
        }
        unread
    }
}

/// What each protected group lost of `outcome`'s deleted offsets.
fn unread_deletions(
    topic: &Topic,
    partition: i32,
    positions: &[(String, i64)],
    outcome: &RetentionOutcome,
) -> Vec<UnreadDeletion> {
    let deleted = &outcome.offsets_deleted;
    positions
        .iter()
        .filter_map(|(group, position)| {
            let start = (*position).max(deleted.start);
            (start < deleted.end).then(|| UnreadDeletion {
                topic: topic.name.clone(),
                partition,
                group: group.clone(),
                offsets: start..deleted.end,
            })
        })
        .collect()
}

fn report(topic: &Topic, partition: i32, outcome: &RetentionOutcome, deletions: &[UnreadDeletion]) {
    let unread = &outcome.unread_offsets_deleted;
    let groups: Vec<&str> = deletions.iter().map(|d| d.group.as_str()).collect();
    tracing::error!(
        topic = %topic.name,
        partition,
        groups = %groups.join(", "),
        first_offset = unread.start,
        last_offset = unread.end - 1,
        records = unread.end - unread.start,
        retention_bytes_hard = topic.log_config.retention_hard_bytes_max().unwrap_or(0),
        "retention deleted records protected groups had not read: the partition passed retention_bytes_hard. \
         Their consumers (loaders) are stopped or too slow; bring them back, or raise retention_bytes_hard. \
         A loader records the offsets it lost as a gap"
    );
    for deletion in deletions {
        counter!(
            PROTECTED_DELETED_RECORDS_METRIC,
            "topic" => deletion.topic.clone(),
            "group" => deletion.group.clone()
        )
        .increment((deletion.offsets.end - deletion.offsets.start) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_is_the_lowest_position_and_none_without_groups() {
        let positions = vec![("a".to_owned(), 700), ("b".to_owned(), 300)];
        assert_eq!(floor_of(&positions), RetentionFloor::KeepFrom(300));
        assert_eq!(floor_of(&[]), RetentionFloor::Unprotected);
    }
}
