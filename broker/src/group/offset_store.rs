//! Durable committed offsets and group membership, kept in the internal
//! partition log `<data_dir>/__relay_offsets-0` (layout: [`super::records`]).
//!
//! A commit of several partitions is one batch, so it is all-or-nothing; it
//! returns only when the log's fsync policy is satisfied, so an acknowledged
//! commit survives `kill -9`. On open the log is replayed (latest record per
//! key wins). When the log has grown past a few segments, the current state is
//! written again as fresh records and the segments before it are deleted.
//!
//! Blocking: every method may fsync; async callers use `spawn_blocking`.

use super::records::{self, CommittedOffset, Entry, OffsetKey, StoredGroup};
use crate::log::{FaultInjector, LogConfig, LogError, PartitionLog, Result};
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
}

pub struct OffsetStore {
    log: PartitionLog,
    state: Mutex<State>,
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
        let start = OffsetKey {
            group: group.into(),
            topic: String::new(),
            partition: i32::MIN,
        };
        state
            .offsets
            .range(start..)
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

    /// Stores a group's membership; an older generation never overwrites a newer one.
    pub fn save_group(&self, group: &StoredGroup) -> Result<()> {
        let mut state = self.state.lock();
        if state
            .groups
            .get(&group.group)
            .is_some_and(|stored| stored.generation > group.generation)
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

    pub fn stored_groups(&self) -> Vec<StoredGroup> {
        self.state.lock().groups.values().cloned().collect()
    }

    /// Rewrites the live state and deletes the segments it supersedes once the
    /// log has more than a few segments.
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
        let deleted = self.log.delete_segments_before(snapshot_start)?;
        tracing::info!(segments_deleted = deleted, "compacted the group offsets log");
        Ok(())
    }

    pub fn close(&self) -> Result<()> {
        self.log.close()
    }
}
