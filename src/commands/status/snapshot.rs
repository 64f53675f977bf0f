//! One look at the cluster for `relay status` ([`look`]): topics with their
//! end offsets and size on disk, groups with their lag, and what the user may
//! do; the oldest unloaded record of each lagging group partition
//! ([`super::age`]); and what earlier looks tell ([`History`]). Asking
//! only: nothing here draws.

use super::age::{oldest_unloaded, Lagging};
use relay_client::admin::{Admin, PartitionLag};
use relay_client::consumer::TopicPartition;
use relay_client::permissions::{permissions, Permissions};
use relay_client::ClientError;
use std::collections::HashMap;
use std::time::Instant;

/// A topic, its partitions summed.
pub(super) struct TopicRow {
    pub(super) name: String,
    pub(super) partitions: usize,
    pub(super) end_offsets: i64,
    pub(super) size_bytes: i64,
}

/// A group and its lag per partition it committed.
pub(super) struct GroupRow {
    pub(super) group: String,
    pub(super) state: String,
    pub(super) members: usize,
    pub(super) lags: Vec<PartitionLag>,
}

/// One look at the cluster.
pub(super) struct Snapshot {
    pub(super) at: Instant,
    /// The same moment on the wall clock (ms since the epoch), for lag in time.
    pub(super) at_ms: i64,
    pub(super) cluster_id: String,
    pub(super) topics: Vec<TopicRow>,
    pub(super) groups: Vec<GroupRow>,
    /// What the user may do; the error when the broker would not say.
    pub(super) access: Result<Permissions, String>,
    /// Timestamp (ms) of the record at each lagging partition's committed
    /// offset, by (group, topic, partition): the oldest it has not loaded.
    pub(super) oldest_ms: HashMap<(String, String, i32), i64>,
}

impl Snapshot {
    /// Seconds since the oldest record `group` has not loaded from
    /// `topic`/`partition` was written; `None` when unknown.
    pub(super) fn lag_seconds(&self, group: &str, lag: &PartitionLag) -> Option<f64> {
        if lag.lag <= 0 {
            return Some(0.0);
        }
        let written = self
            .oldest_ms
            .get(&(group.to_owned(), lag.topic.clone(), lag.partition))?;
        Some((self.at_ms - written).max(0) as f64 / 1000.0)
    }

    /// The largest lag in time of a group's partitions whose age is known;
    /// `None` when none is.
    pub(super) fn group_lag_seconds(&self, group: &GroupRow) -> Option<f64> {
        group
            .lags
            .iter()
            .filter_map(|lag| self.lag_seconds(&group.group, lag))
            .reduce(f64::max)
    }
}

/// What earlier looks tell: previous end offsets, when committed offsets moved.
#[derive(Default)]
pub(super) struct History {
    pub(super) started: Option<Instant>,
    pub(super) previous: Option<(Instant, HashMap<String, i64>)>,
    pub(super) commits: HashMap<(String, TopicPartition), (i64, Option<Instant>)>,
}

/// Asks the broker for everything the screen shows; a broker that cannot
/// tell partition sizes (DescribeLogDirs) shows none, with a warning.
pub(super) async fn look(admin: &Admin) -> Result<Snapshot, ClientError> {
    let at = Instant::now();
    let at_ms = relay_proto::clock::now_ms();
    let cluster_id = admin.cluster().cluster_id().unwrap_or_else(|| "?".into());
    let sizes: HashMap<TopicPartition, i64> = match admin.partition_sizes().await {
        Ok(sizes) => sizes.into_iter().collect(),
        Err(error) => {
            tracing::warn!(%error, "no partition sizes (DescribeLogDirs)");
            HashMap::new()
        }
    };
    let mut topics = Vec::new();
    for (name, partitions) in admin.list_topics().await? {
        let offsets = admin.describe_topic(&name).await?;
        let size_bytes = (0..partitions as i32)
            .filter_map(|partition| {
                sizes.get(&TopicPartition {
                    topic: name.clone(),
                    partition,
                })
            })
            .sum();
        topics.push(TopicRow {
            end_offsets: offsets.iter().map(|p| p.end_offset).sum(),
            name,
            partitions,
            size_bytes,
        });
    }
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let mut groups = Vec::new();
    for summary in admin.list_groups().await? {
        let description = admin.describe_group(&summary.group).await?;
        let lags = admin.lag(&summary.group).await?;
        groups.push(GroupRow {
            state: description.state,
            members: description.members.len(),
            lags,
            group: summary.group,
        });
    }
    let names: Vec<String> = groups.iter().map(|g| g.group.clone()).collect();
    let access = permissions(admin.cluster(), &names).await.map_err(|e| e.to_string());
    let oldest_ms = oldest_unloaded(admin, lagging(&groups)).await;
    Ok(Snapshot {
        at,
        at_ms,
        cluster_id,
        topics,
        groups,
        access,
        oldest_ms,
    })
}

/// Each group's lagging partitions, by (group, topic).
fn lagging(groups: &[GroupRow]) -> Vec<((String, String), Lagging)> {
    let mut wanted: Vec<((String, String), Lagging)> = Vec::new();
    for group in groups {
        for lag in group.lags.iter().filter(|lag| lag.lag > 0 && lag.committed >= 0) {
            let key = (group.group.clone(), lag.topic.clone());
            let entry = match wanted.iter_mut().find(|(k, _)| *k == key) {
                Some((_, entry)) => entry,
                None => {
                    wanted.push((key, Vec::new()));
                    &mut wanted.last_mut().expect("just pushed").1
                }
            };
            entry.push((lag.partition, lag.committed, lag.end_offset));
        }
    }
    wanted
}
