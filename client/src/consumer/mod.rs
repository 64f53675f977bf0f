//! The consumer: either a member of a group (JoinGroup/SyncGroup with the
//! range assignor, a heartbeat task that keeps the session alive while the
//! caller works, LeaveGroup on close) or a reader of every partition of its
//! topics without a group.
//!
//! Positions start from the group's committed offset, else from
//! `start` (earliest, latest, an offset, or a timestamp). `poll` fetches from
//! the leaders and returns decoded records (every codec); right after a
//! rebalance it returns the new assignment first, with no records, so the
//! caller can `seek` (the loader resumes from its warehouse this way). Before
//! giving partitions up in a rebalance the consumer commits its positions when
//! `commit_on_rebalance` is set, so a record returned by `poll` and followed by
//! another `poll` counts as processed.
//!
//! This file owns [`Consumer`], the handle callers hold: when to join, what
//! is assigned, commits. Membership lives in `group`, positions and fetching
//! in `fetch`; neither knows the other.

mod config;
mod fetch;
mod group;

pub use crate::assignor::range_assign;
pub use crate::offsets::{commit_offsets, commit_offsets_with_metadata, committed_offsets, list_offset};
pub use crate::types::{StartPosition, TopicPartition};
pub use config::{ConsumerConfig, Resume};

use crate::cluster::Cluster;
use crate::error::Result;
use crate::records::Records;
use fetch::Positions;
use group::Membership;
use relay_proto::stop::Stop;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a group member looks for new partitions of its topics.
pub const PARTITION_CHECK_INTERVAL: Duration = Duration::from_secs(3);

/// What one `poll` found. `records` owns the fetched buffers and lends
/// each record as a [`RecordView`](crate::records::RecordView) (slices of
/// them, the topic shared per partition); an owned copy is made only on
/// request (`RecordView::to_owned`).
#[derive(Debug, Default)]
pub struct Poll {
    pub records: Records,
    /// Set right after a rebalance: the partitions now owned.
    pub assigned: Option<Vec<TopicPartition>>,
}

pub struct Consumer {
    cluster: Arc<Cluster>,
    config: ConsumerConfig,
    membership: Option<Membership>,
    joined: bool,
    assignment: Vec<TopicPartition>,
    positions: Positions,
    /// Partitions per subscribed topic when the group was last joined, and
    /// when that was last checked: a topic created or grown later (a loader
    /// started before its first event) triggers a rejoin, as Kafka's
    /// consumers do on a metadata refresh.
    partition_counts: HashMap<String, usize>,
    counts_checked: Instant,
    /// The next Fetch, sent while the caller works on the last one's records.
    ahead: Option<fetch::Ahead>,
    /// Whether Fetches are sent ahead at all (see [`Consumer::fetch_ahead`]).
    ahead_on: bool,
    /// Once on, retries end: a stopping caller gets the failure at once.
    stop: Option<Stop>,
}

impl Consumer {
    pub async fn new(cluster: Arc<Cluster>, config: ConsumerConfig) -> Result<Self> {
        let mut consumer = Self {
            cluster,
            config,
            membership: None,
            joined: false,
            assignment: Vec::new(),
            positions: Positions::default(),
            partition_counts: HashMap::new(),
            counts_checked: Instant::now(),
            ahead: None,
            ahead_on: true,
            stop: None,
        };
        if consumer.config.group.is_none() {
            for topic in consumer.config.topics.clone() {
                let metadata = consumer.cluster.topic(&topic, false).await?;
                for partition in 0..metadata.leaders.len() as i32 {
                    consumer.assignment.push(TopicPartition {
                        topic: topic.clone(),
                        partition,
                    });
                }
            }
            consumer.joined = true;
        }
        Ok(consumer)
    }

    pub fn assignment(&self) -> &[TopicPartition] {
        &self.assignment
    }

    pub fn seek(&mut self, partition: TopicPartition, offset: i64) {
        self.positions.seek(partition, offset);
    }

    /// Drops the position of a partition, so the next `poll` starts it again
    /// from the committed offset or the start position.
    pub fn forget_position(&mut self, partition: &TopicPartition) {
        self.positions.forget(partition);
    }

    pub fn position(&self, partition: &TopicPartition) -> Option<i64> {
        self.positions.get(partition)
    }

    /// The partition's end offset (high watermark) from the latest fetch.
    pub fn high_watermark(&self, partition: &TopicPartition) -> Option<i64> {
        self.positions.high_watermark(partition)
    }

    /// Whether every owned partition has been read up to its high watermark.
    pub fn at_end(&self) -> bool {
        self.joined && self.positions.at_end(&self.assignment)
    }

    /// Makes every retry of this consumer (joining the group while the
    /// coordinator cannot be reached) end when `stop` is on: the retried
    /// call then answers its last failure instead of trying again, so a
    /// caller stopping with nothing in flight is not held by a broker that
    /// is gone.
    pub fn stop_retrying_on(&mut self, stop: Stop) {
        self.stop = Some(stop);
    }

    /// Sends the next Fetch ahead while the caller works on records (the
    /// default), or not: off, every poll's Fetch is sent when it is called,
    /// so what it finds (and `at_end`) is as of that call. A caller that must
    /// know it has read what the topic holds *now* (a loader draining at a
    /// stop) turns it off; whatever was sent ahead is abandoned.
    pub fn fetch_ahead(&mut self, on: bool) {
        self.ahead_on = on;
        if !on {
            self.ahead = None;
        }
    }

    /// Whether the next [`Consumer::poll`] only fetches: no group join, no
    /// partition-count check due, every owned partition's position known.
    /// Such a poll can be dropped before it ends without harm (positions move
    /// only once a fetch's answer is decoded), so a caller may run it
    /// alongside other work and abandon it.
    pub fn next_poll_only_fetches(&self) -> bool {
        let grouped = self.config.group.is_some();
        !(grouped && (self.needs_join() || self.counts_checked.elapsed() >= PARTITION_CHECK_INTERVAL))
            && !self.assignment.is_empty()
            && self.positions.missing(&self.assignment).is_empty()
    }

    /// Fetches records (or, after a rebalance, reports the new assignment).
    pub async fn poll(&mut self) -> Result<Poll> {
        if self.config.group.is_some() && self.needs_join() {
            if self.joined && self.config.commit_on_rebalance {
                if let Err(error) = self.commit().await {
                    tracing::warn!(%error, "could not commit before the rebalance");
                }
            }
            let assigned = self.join().await?;
            self.partition_counts = self.subscribed_partition_counts(false).await;
            self.counts_checked = Instant::now();
            return Ok(Poll {
                records: Records::default(),
                assigned: Some(assigned),
            });
        }
        if self.config.group.is_some() && self.counts_checked.elapsed() >= PARTITION_CHECK_INTERVAL {
            self.counts_checked = Instant::now();
            let counts = self.subscribed_partition_counts(true).await;
            if counts != self.partition_counts {
                tracing::info!(before = ?self.partition_counts, now = ?counts, "subscribed topics changed partitions; rejoining");
                self.partition_counts = counts;
                self.request_rejoin();
            }
        }
        self.initialize_positions().await?;
        if self.assignment.is_empty() {
            tokio::time::sleep(Duration::from_millis(self.config.fetch_wait_ms_max.max(0) as u64)).await;
            return Ok(Poll::default());
        }
        let records = fetch::fetch(
            &self.cluster,
            &self.config,
            &self.assignment,
            &mut self.positions,
            self.ahead_on.then_some(&mut self.ahead),
        )
        .await?;
        Ok(Poll {
            records,
            assigned: None,
        })
    }

    /// Partitions of each subscribed topic as metadata says (0: no such topic yet).
    async fn subscribed_partition_counts(&self, refresh: bool) -> HashMap<String, usize> {
        if refresh {
            let _ = self.cluster.refresh(&self.config.topics, false).await;
        }
        self.config
            .topics
            .iter()
            .map(|topic| (topic.clone(), self.cluster.cached_partition_count(topic).unwrap_or(0)))
            .collect()
    }

    fn needs_join(&self) -> bool {
        !self.joined || self.membership.as_ref().is_some_and(Membership::wants_rejoin)
    }

    async fn join(&mut self) -> Result<Vec<TopicPartition>> {
        let (membership, assigned) = Membership::join(
            &self.cluster,
            &self.config,
            self.membership.as_mut(),
            self.stop.as_ref(),
        )
        .await?;
        self.positions.retain(&assigned);
        self.assignment = assigned.clone();
        self.membership = Some(membership);
        self.joined = true;
        Ok(assigned)
    }

    /// Gives every owned partition without a position one: the committed
    /// offset, else the start position.
    async fn initialize_positions(&mut self) -> Result<()> {
        let missing = self.positions.missing(&self.assignment);
        if missing.is_empty() {
            return Ok(());
        }
        let committed = match (&self.membership, self.config.resume) {
            (Some(membership), config::Resume::FromCommitted) => {
                self.committed(&membership.group.clone(), &missing).await?
            }
            _ => HashMap::new(),
        };
        fetch::initialize(
            &self.cluster,
            self.config.start,
            missing,
            &committed,
            &mut self.positions,
        )
        .await
    }

    /// Committed offsets of `partitions` for `group` (-1: none).
    pub async fn committed(&self, group: &str, partitions: &[TopicPartition]) -> Result<HashMap<TopicPartition, i64>> {
        let coordinator = self.cluster.coordinator(group).await?;
        committed_offsets(&coordinator, group, partitions).await
    }

    /// Resolves a start position to an offset of `partition`.
    pub async fn start_offset(&self, partition: &TopicPartition, start: StartPosition) -> Result<i64> {
        fetch::start_offset(&self.cluster, partition, start).await
    }

    /// Commits the current position of every owned partition.
    pub async fn commit(&mut self) -> Result<()> {
        let Some(membership) = &self.membership else {
            return Ok(());
        };
        let offsets: Vec<(TopicPartition, i64)> = self
            .assignment
            .iter()
            .filter_map(|tp| self.positions.get(tp).map(|o| (tp.clone(), o)))
            .collect();
        self.commit_offsets(&offsets, membership.generation, &membership.member_id.clone())
            .await
    }

    /// Commits `offsets` for this consumer's group as the current member.
    pub async fn commit_offsets(
        &self,
        offsets: &[(TopicPartition, i64)],
        generation: i32,
        member_id: &str,
    ) -> Result<()> {
        let no_metadata: Vec<(TopicPartition, i64, &str)> =
            offsets.iter().map(|(tp, offset)| (tp.clone(), *offset, "")).collect();
        self.commit_offsets_with_metadata(&no_metadata, generation, member_id)
            .await
    }

    /// As [`Self::commit_offsets`], with a metadata string per partition.
    pub async fn commit_offsets_with_metadata(
        &self,
        offsets: &[(TopicPartition, i64, &str)],
        generation: i32,
        member_id: &str,
    ) -> Result<()> {
        let Some(membership) = &self.membership else {
            return Ok(());
        };
        commit_offsets_with_metadata(
            &membership.coordinator,
            &membership.group,
            generation,
            member_id,
            offsets,
        )
        .await
    }

    /// Makes the next `poll` rejoin the group (after a fenced write, say).
    pub fn request_rejoin(&mut self) {
        if let Some(membership) = &self.membership {
            membership.request_rejoin();
        }
    }

    /// The group generation and member id, for commits made elsewhere.
    pub fn generation(&self) -> Option<(i32, String)> {
        self.membership.as_ref().map(|m| (m.generation, m.member_id.clone()))
    }

    /// Leaves the group (without committing: commit first if wanted).
    pub async fn close(mut self) -> Result<()> {
        match self.membership.take() {
            Some(membership) => membership.leave().await,
            None => Ok(()),
        }
    }
}
