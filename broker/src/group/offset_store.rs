//! Durable committed offsets and group membership, kept in the internal
//! partition log `<data_dir>/__relay_offsets-0` (layout: [`super::records`]).
//!
//! A commit of several partitions is one batch, so it is all-or-nothing; it
//! returns only when the log's fsync policy is satisfied, so an acknowledged
//! commit survives `kill -9`. The log takes the `[broker.log]` policy: under
//! `interval` the broker's interval timer fsyncs it as it does the topics'
//! partitions ([`OffsetStore::flush_if_interval`]), so at most the last
//! interval of acknowledged commits is lost in a machine crash. On open the
//! log is replayed (latest record per key wins). When the log has grown past a
//! few segments, the current state is written again as fresh records, fsynced
//! whatever the policy, and only then are the segments before it deleted.
//!
//! Blocking: every method may fsync; async callers use `spawn_blocking`.

use super::records::{self, CommittedOffset, Entry, OffsetKey, StoredGroup};
use crate::log::{FaultInjector, FsyncPolicy, LogConfig, LogError, PartitionLog, Result};
use parking_lot::Mutex;
use relay_proto::clock::now_ms;
use relay_proto::records::RecordIter;
use relay_proto::{BatchBuilder, RecordBatches, RecordSpec};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

pub const OFFSETS_LOG_DIR: &str = "__relay_offsets-0";
/// Segment size of the offsets log: compaction rewrites the live state, so
/// segments only need to hold a few minutes of commits.
const OFFSETS_SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
/// Compact once the log has more segments than this.
const OFFSETS_SEGMENTS_MAX: usize = 4;
/// Records per batch when writing the compacted state.
const COMPACTION_BATCH_RECORDS_MAX: usize = 1000;

#[derive(Default)]
struct State {
    offsets: BTreeMap<OffsetKey, CommittedOffset>,
    groups: HashMap<String, StoredGroup>,
    /// The last membership of each group deleted since open: a store of that
    /// very membership still queued when the group was deleted (a leave
    /// stored without anyone waiting) is stale and must not bring it back.
    deleted: HashMap<String, StoredGroup>,
}

pub struct OffsetStore {
    log: PartitionLog,
    state: Mutex<State>,
}

/// The smallest offset key of `group`: its offsets follow it in key order.
fn first_key_of(group: &str) -> OffsetKey {
    OffsetKey {
        group: group.into(),
        topic: String::new(),
        partition: i32::MIN,
    }
}

impl OffsetStore {
    pub fn open(data_dir: &Path, base: &LogConfig, faults: FaultInjector) -> Result<Arc<Self>> {
        let config = LogConfig {
            // A commit of many partitions, or a compaction batch of many
            // groups, may pass a producer's 1 MiB; one segment is the bound.
            message_bytes_max: OFFSETS_SEGMENT_BYTES as usize,
            segment_bytes: OFFSETS_SEGMENT_BYTES,
            retention_bytes: -1,
            retention_ms: -1,
            index_bytes_max: 1024 * 1024,
            ..base.clone()
        };
        let (log, _) = PartitionLog::open(&data_dir.join(OFFSETS_LOG_DIR), config, faults)?;
        let store = Self {
            log,
            state: Mutex::new(State::default()),
        };
        store.replay()?;
        let store = Arc::new(store);
        store.compact_if_needed()?;
        Ok(store)
    }

    fn replay(&self) -> Result<()> {
        let mut state = self.state.lock();
        let mut offset = self.log.log_start_offset();
        loop {
            let read = self.log.read(offset, 1024 * 1024)?;
            if read.bytes.is_empty() {
                break;
            }
            for item in RecordBatches::new(&read.bytes) {
                let (_, header, batch) = item.map_err(|e| LogError::Corrupt {
                    path: self.log.dir().to_path_buf(),
                    position: 0,
                    reason: e.to_string(),
                })?;
                for record in RecordIter::of_uncompressed_batch(batch, header.record_count() as usize) {
                    let Ok(record) = record else { continue };
                    match record.key.and_then(|key| records::decode(key, record.value)) {
                        Some(Entry::Offset(key, Some(value))) => {
                            state.offsets.insert(key, value);
                        }
                        Some(Entry::Offset(key, None)) => {
                            state.offsets.remove(&key);
                        }
                        Some(Entry::Group(name, Some(group))) => {
                            state.groups.insert(name, group);
                        }
                        Some(Entry::Group(name, None)) => {
                            state.groups.remove(&name);
                        }
                        None => tracing::warn!(dir = %self.log.dir().display(), "skipping unreadable offsets record"),
                    }
                }
                offset = header.last_offset() + 1;
            }
        }
        Ok(())
    }

    fn append(&self, records: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        let mut builder = BatchBuilder::new(now_ms());
        for (key, value) in records {
            builder.push(RecordSpec {
                key: Some(key),
                value,
                ..RecordSpec::default()
            });
        }
        let mut batch = builder.build();
        self.log.append(&mut batch).map(|_| ())
    }

    /// Stores the offsets of one commit request atomically.
    pub fn commit(&self, group: &str, offsets: &[(String, i32, CommittedOffset)]) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut state = self.state.lock();
        let records = offsets
            .iter()
            .map(|(topic, partition, value)| {
                let key = OffsetKey {
                    group: group.into(),
                    topic: topic.clone(),
                    partition: *partition,
                };
                (records::offset_key(&key), Some(records::offset_value(value)))
            })
            .collect();
        self.append(records)?;
        for (topic, partition, value) in offsets {
            let key = OffsetKey {
                group: group.into(),
                topic: topic.clone(),
                partition: *partition,
            };
            state.offsets.insert(key, value.clone());
        }
        Ok(())
    }

    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<CommittedOffset> {
        let key = OffsetKey {
            group: group.into(),
            topic: topic.into(),
            partition,
        };
        self.state.lock().offsets.get(&key).cloned()
    }

    /// Every committed offset of a group, by (topic, partition).
    pub fn group_offsets(&self, group: &str) -> Vec<(String, i32, CommittedOffset)> {
        let state = self.state.lock();
        state
            .offsets
            .range(first_key_of(group)..)
            .take_while(|(key, _)| key.group == group)
            .map(|(key, value)| (key.topic.clone(), key.partition, value.clone()))
            .collect()
    }

    /// Groups that have committed offsets.
    pub fn groups_with_offsets(&self) -> Vec<String> {
        let state = self.state.lock();
        let mut groups: Vec<String> = state.offsets.keys().map(|k| k.group.clone()).collect();
        groups.dedup();
        groups
    }

    /// Removes every offset of a topic (when it is deleted).
    pub fn forget_topic(&self, topic: &str) -> Result<()> {
        let mut state = self.state.lock();
        let doomed: Vec<OffsetKey> = state.offsets.keys().filter(|k| k.topic == topic).cloned().collect();
        if doomed.is_empty() {
            return Ok(());
        }
        self.append(doomed.iter().map(|key| (records::offset_key(key), None)).collect())?;
        for key in doomed {
            state.offsets.remove(&key);
        }
        Ok(())
    }

    /// Stores a group's membership; an older generation never overwrites a
    /// newer one, and a membership already stored is not written again (it is
    /// as durable as the policy makes it: the state changes only after the
    /// append returned).
    pub fn save_group(&self, group: &StoredGroup) -> Result<()> {
        let mut state = self.state.lock();
        if state.deleted.get(&group.group) == Some(group) {
            return Ok(());
        }
        state.deleted.remove(&group.group);
        if state
            .groups
            .get(&group.group)
            .is_some_and(|stored| stored.generation > group.generation || stored == group)
        {
            return Ok(());
        }
        self.append(vec![(
            records::group_key(&group.group),
            Some(records::group_value(group)),
        )])?;
        state.groups.insert(group.group.clone(), group.clone());
        Ok(())
    }

    /// Deletes a group: its membership and every offset it committed, as one
    /// batch of tombstones (null values), so the deletion is stored entirely
    /// or not at all and a replay after a restart does not bring any of it
    /// back. `last` is the membership the coordinator held when it deleted
    /// the group; a store of it that arrives later is ignored. Returns how
    /// many committed offsets were deleted.
    pub fn delete_group(&self, group: &str, last: Option<StoredGroup>) -> Result<usize> {
        let mut state = self.state.lock();
        let doomed: Vec<OffsetKey> = state
            .offsets
            .range(first_key_of(group)..)
            .take_while(|(key, _)| key.group == group)
            .map(|(key, _)| key.clone())
            .collect();
        let mut tombstones: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            doomed.iter().map(|key| (records::offset_key(key), None)).collect();
        tombstones.push((records::group_key(group), None));
        self.append(tombstones)?;
        for key in &doomed {
            state.offsets.remove(key);
        }
        state.groups.remove(group);
        match last {
            Some(last) => state.deleted.insert(group.to_owned(), last),
            None => state.deleted.remove(group),
        };
        Ok(doomed.len())
    }

    /// Whether the store knows `group`: a stored membership or an offset.
    pub fn knows_group(&self, group: &str) -> bool {
        let state = self.state.lock();
        state.groups.contains_key(group)
            || state
                .offsets
                .range(first_key_of(group)..)
                .next()
                .is_some_and(|(key, _)| key.group == group)
    }

    pub fn stored_groups(&self) -> Vec<StoredGroup> {
        self.state.lock().groups.values().cloned().collect()
    }

    /// fsyncs everything appended so far when the log's policy is
    /// `interval`: the broker's interval timer calls it with the topics'
    /// partitions. Under `always` every append already waited for its fsync;
    /// under `never` flushing is left to the operating system.
    pub fn flush_if_interval(&self) -> Result<()> {
        if self.log.config().fsync != FsyncPolicy::Interval {
            return Ok(());
        }
        self.log.flush()
    }

    /// Rewrites the live state and deletes the segments it supersedes once the
    /// log has more than a few segments. The rewritten state is fsynced before
    /// any segment is deleted, whatever the fsync policy: the deletions are
    /// made durable (directory fsync), and under `interval` or `never` a
    /// power loss could otherwise keep them and lose the snapshot, and with
    /// it every committed offset.
    pub fn compact_if_needed(&self) -> Result<()> {
        if self.log.segment_count() <= OFFSETS_SEGMENTS_MAX {
            return Ok(());
        }
        let state = self.state.lock();
        let snapshot_start = self.log.end_offset();
        let mut records: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        for (key, value) in &state.offsets {
            records.push((records::offset_key(key), Some(records::offset_value(value))));
        }
        for group in state.groups.values() {
            records.push((records::group_key(&group.group), Some(records::group_value(group))));
        }
        while !records.is_empty() {
            let rest = records.split_off(records.len().min(COMPACTION_BATCH_RECORDS_MAX));
            self.append(std::mem::replace(&mut records, rest))?;
        }
        self.log.flush()?;
        let deleted = self.log.delete_segments_before(snapshot_start)?;
        tracing::info!(segments_deleted = deleted, "compacted the group offsets log");
        Ok(())
    }

    pub fn close(&self) -> Result<()> {
        self.log.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::file_names::{parse_segment_file, LOG_SUFFIX};
    use std::time::Duration;

    /// Longer than any test: an `interval` append never fsyncs by itself.
    const INTERVAL_NEVER_DUE_MS: u64 = 3_600_000;

    fn interval_config() -> LogConfig {
        LogConfig {
            fsync: FsyncPolicy::Interval,
            fsync_interval_ms: INTERVAL_NEVER_DUE_MS,
            ..LogConfig::default()
        }
    }

    fn offset(value: i64) -> CommittedOffset {
        CommittedOffset {
            offset: value,
            leader_epoch: 0,
            commit_timestamp_ms: 1,
            metadata: String::new(),
        }
    }

    fn segment_files(data_dir: &Path) -> usize {
        std::fs::read_dir(data_dir.join(OFFSETS_LOG_DIR))
            .unwrap()
            .filter(|entry| {
                let name = entry.as_ref().unwrap().file_name();
                parse_segment_file(&name.to_string_lossy()).is_some_and(|(_, suffix)| suffix == LOG_SUFFIX)
            })
            .count()
    }

    #[test]
    fn the_interval_flush_fsyncs_commits_an_append_left_unsynced() {
        let dir = tempfile::tempdir().unwrap();
        let faults = FaultInjector::default();
        let store = OffsetStore::open(dir.path(), &interval_config(), faults.clone()).unwrap();
        store.commit("g", &[("t".into(), 0, offset(7))]).unwrap();
        // The commit did not fsync (the interval is not due), so the flush
        // must: the armed failure proves it tried.
        faults.fail_next_fsyncs(1);
        assert!(store.flush_if_interval().is_err(), "the flush did not fsync the commit");
        assert!(
            matches!(
                store.commit("g", &[("t".into(), 0, offset(8))]),
                Err(LogError::Poisoned { .. })
            ),
            "a failed interval fsync poisons the offsets log as it does a partition"
        );
    }

    #[test]
    fn the_interval_flush_leaves_other_policies_alone() {
        for fsync in [FsyncPolicy::Never, FsyncPolicy::Always] {
            let dir = tempfile::tempdir().unwrap();
            let faults = FaultInjector::default();
            let config = LogConfig {
                fsync,
                ..LogConfig::default()
            };
            let store = OffsetStore::open(dir.path(), &config, faults.clone()).unwrap();
            store.commit("g", &[("t".into(), 0, offset(7))]).unwrap();
            faults.fail_next_fsyncs(1);
            store.flush_if_interval().unwrap();
            faults.fail_next_fsyncs(0);
            store.commit("g", &[("t".into(), 0, offset(8))]).unwrap();
        }
    }

    fn membership(generation: i32) -> StoredGroup {
        StoredGroup {
            group: "g".into(),
            generation,
            protocol_type: "consumer".into(),
            protocol_name: String::new(),
            leader: String::new(),
            members: Vec::new(),
        }
    }

    #[test]
    fn a_deleted_group_stays_deleted_when_its_last_membership_is_stored_late() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig::default();
        let store = OffsetStore::open(dir.path(), &config, FaultInjector::default()).unwrap();
        store
            .commit("g", &[("t".into(), 0, offset(7)), ("u".into(), 1, offset(8))])
            .unwrap();
        store.commit("h", &[("t".into(), 0, offset(9))]).unwrap();
        store.save_group(&membership(3)).unwrap();
        assert_eq!(store.delete_group("g", Some(membership(4))).unwrap(), 2);
        // The empty group's store, queued before the deletion, arrives after it.
        store.save_group(&membership(4)).unwrap();
        assert!(!store.knows_group("g"));
        store.close().unwrap();
        drop(store);

        let store = OffsetStore::open(dir.path(), &config, FaultInjector::default()).unwrap();
        assert!(!store.knows_group("g"), "the deletion survives a reopen");
        assert!(store.stored_groups().is_empty());
        assert_eq!(store.committed("g", "t", 0), None);
        assert_eq!(store.committed("h", "t", 0).map(|c| c.offset), Some(9));
        // A new group of that name is stored as any other.
        store.save_group(&membership(1)).unwrap();
        assert_eq!(store.stored_groups(), vec![membership(1)]);
    }

    /// Writes commits into more segments than compaction allows (a segment
    /// per commit: `segment_ms` of 1), then closes the store cleanly.
    fn store_needing_compaction(data_dir: &Path, partitions: i32) {
        let config = LogConfig {
            segment_ms: 1,
            ..interval_config()
        };
        let store = OffsetStore::open(data_dir, &config, FaultInjector::default()).unwrap();
        for partition in 0..partitions {
            std::thread::sleep(Duration::from_millis(5));
            store
                .commit("g", &[("t".into(), partition, offset(100 + i64::from(partition)))])
                .unwrap();
        }
        store.close().unwrap();
        assert!(segment_files(data_dir) > OFFSETS_SEGMENTS_MAX);
    }

    #[test]
    fn compaction_deletes_no_segment_before_its_snapshot_is_fsynced() {
        let dir = tempfile::tempdir().unwrap();
        let partitions = OFFSETS_SEGMENTS_MAX as i32 + 2;
        store_needing_compaction(dir.path(), partitions);
        let segments = segment_files(dir.path());

        // Opening compacts; the snapshot's fsync fails.
        let faults = FaultInjector::default();
        faults.fail_next_fsyncs(1);
        assert!(
            OffsetStore::open(dir.path(), &interval_config(), faults).is_err(),
            "compaction went on without a durable snapshot"
        );
        assert_eq!(
            segment_files(dir.path()),
            segments,
            "segments were deleted before the snapshot replacing them was durable"
        );

        // With a working disk compaction completes and keeps every offset.
        let store = OffsetStore::open(dir.path(), &interval_config(), FaultInjector::default()).unwrap();
        assert!(segment_files(dir.path()) < segments, "compaction deleted nothing");
        for partition in 0..partitions {
            assert_eq!(
                store.committed("g", "t", partition).map(|c| c.offset),
                Some(100 + i64::from(partition))
            );
        }
    }
}
