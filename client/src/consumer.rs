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

pub use crate::assignor::range_assign;
use crate::assignor::{decode_assignment, decode_subscription, encode_versioned};
use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::error::{check, ClientError, Result};
pub use crate::offsets::{commit_offsets, committed_offsets, list_offset};
use crate::records::{decode, ConsumerRecord};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a partition without a committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    Earliest,
    Latest,
    Offset(i64),
    /// The first record at or after this time (Unix ms).
    Timestamp(i64),
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub group: Option<String>,
    pub topics: Vec<String>,
    pub start: StartPosition,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub fetch_max_wait_ms: i32,
    pub fetch_max_bytes: i32,
    pub partition_max_bytes: i32,
    pub commit_on_rebalance: bool,
}

impl ConsumerConfig {
    pub fn new(topics: Vec<String>, group: Option<String>) -> Self {
        Self {
            group,
            topics,
            start: StartPosition::Earliest,
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            fetch_max_wait_ms: 500,
            fetch_max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
            commit_on_rebalance: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

/// What one `poll` found.
#[derive(Debug, Default)]
pub struct Poll {
    pub records: Vec<ConsumerRecord>,
    /// Set right after a rebalance: the partitions now owned.
    pub assigned: Option<Vec<TopicPartition>>,
}

struct Membership {
    group: String,
    member_id: String,
    generation: i32,
    coordinator: Arc<Connection>,
    rejoin: Arc<AtomicBool>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

pub struct Consumer {
    cluster: Arc<Cluster>,
    config: ConsumerConfig,
    membership: Option<Membership>,
    joined: bool,
    assignment: Vec<TopicPartition>,
    positions: HashMap<TopicPartition, i64>,
    high_watermarks: Arc<Mutex<HashMap<TopicPartition, i64>>>,
    /// Partitions per subscribed topic when the group was last joined, and
    /// when that was last checked: a topic created or grown later (a loader
    /// started before its first event) triggers a rejoin, as Kafka's
    /// consumers do on a metadata refresh.
    partition_counts: HashMap<String, usize>,
    counts_checked: Instant,
}

/// How often a group member looks for new partitions of its topics.
pub const PARTITION_CHECK_INTERVAL: Duration = Duration::from_secs(3);

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

impl Consumer {
    pub async fn new(cluster: Arc<Cluster>, config: ConsumerConfig) -> Result<Self> {
        let mut consumer = Self {
            cluster,
            config,
            membership: None,
            joined: false,
            assignment: Vec::new(),
            positions: HashMap::new(),
            high_watermarks: Arc::default(),
            partition_counts: HashMap::new(),
            counts_checked: Instant::now(),
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
        self.positions.insert(partition, offset);
    }

    /// Drops the position of a partition, so the next `poll` starts it again
    /// from the committed offset or the start position.
    pub fn forget_position(&mut self, partition: &TopicPartition) {
        self.positions.remove(partition);
    }

    pub fn position(&self, partition: &TopicPartition) -> Option<i64> {
        self.positions.get(partition).copied()
    }

    /// The partition's end offset (high watermark) from the latest fetch.
    pub fn high_watermark(&self, partition: &TopicPartition) -> Option<i64> {
        self.high_watermarks.lock().get(partition).copied()
    }

    /// Whether every owned partition has been read up to its high watermark.
    pub fn at_end(&self) -> bool {
        let marks = self.high_watermarks.lock();
        self.joined
            && self
                .assignment
                .iter()
                .all(|tp| match (self.positions.get(tp), marks.get(tp)) {
                    (Some(position), Some(mark)) => position >= mark,
                    _ => false,
                })
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
                records: Vec::new(),
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
            tokio::time::sleep(Duration::from_millis(self.config.fetch_max_wait_ms.max(0) as u64)).await;
            return Ok(Poll::default());
        }
        let records = self.fetch().await?;
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
        !self.joined
            || self
                .membership
                .as_ref()
                .is_some_and(|m| m.rejoin.load(Ordering::Acquire))
    }

    async fn join(&mut self) -> Result<Vec<TopicPartition>> {
        let group = self.config.group.clone().expect("group mode");
        let mut member_id = self
            .membership
            .as_ref()
            .map(|m| m.member_id.clone())
            .unwrap_or_default();
        if let Some(membership) = self.membership.as_mut() {
            if let Some(task) = membership.heartbeat.take() {
                task.abort();
            }
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.join_once(&group, &member_id).await {
                Ok((membership, assigned)) => {
                    tracing::info!(group = %group, generation = membership.generation, partitions = assigned.len(), "joined group");
                    self.positions.retain(|tp, _| assigned.contains(tp));
                    self.assignment = assigned.clone();
                    self.membership = Some(membership);
                    self.joined = true;
                    return Ok(assigned);
                }
                Err(JoinFailure::Retry { member_id: next }) => member_id = next,
                Err(JoinFailure::Fatal(error)) if error.is_retriable() => {
                    tracing::warn!(group = %group, %error, "joining the group failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(JoinFailure::Fatal(error)) => return Err(error),
            }
        }
    }

    async fn join_once(
        &self,
        group: &str,
        member_id: &str,
    ) -> std::result::Result<(Membership, Vec<TopicPartition>), JoinFailure> {
        let coordinator = self.cluster.coordinator(group).await?;
        let subscription =
            ConsumerProtocolSubscription::default().with_topics(self.config.topics.iter().map(|t| text(t)).collect());
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_session_timeout_ms(self.config.session_timeout_ms)
            .with_rebalance_timeout_ms(self.config.rebalance_timeout_ms)
            .with_member_id(text(member_id))
            .with_protocol_type(text("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(text("range"))
                .with_metadata(encode_versioned(&subscription, 0))]);
        let joined: JoinGroupResponse = coordinator.send(ApiKey::JoinGroup, &request).await?;
        match ResponseError::try_from_code(joined.error_code) {
            None => {}
            Some(ResponseError::MemberIdRequired) => {
                return Err(JoinFailure::Retry {
                    member_id: joined.member_id.to_string(),
                })
            }
            Some(ResponseError::UnknownMemberId) => {
                return Err(JoinFailure::Retry {
                    member_id: String::new(),
                })
            }
            Some(ResponseError::RebalanceInProgress) => {
                return Err(JoinFailure::Retry {
                    member_id: member_id.to_owned(),
                })
            }
            Some(error) => {
                return Err(JoinFailure::Fatal(ClientError::broker(
                    format!("joining group {group:?}"),
                    error,
                )))
            }
        }
        let member_id = joined.member_id.to_string();
        let assignments = if joined.leader == joined.member_id {
            self.assign(&joined).await?
        } else {
            Vec::new()
        };
        let sync = SyncGroupRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_generation_id(joined.generation_id)
            .with_member_id(text(&member_id))
            .with_assignments(assignments);
        let synced: SyncGroupResponse = coordinator.send(ApiKey::SyncGroup, &sync).await?;
        match ResponseError::try_from_code(synced.error_code) {
            None => {}
            Some(ResponseError::UnknownMemberId) => {
                return Err(JoinFailure::Retry {
                    member_id: String::new(),
                })
            }
            Some(ResponseError::RebalanceInProgress | ResponseError::IllegalGeneration) => {
                return Err(JoinFailure::Retry { member_id })
            }
            Some(error) => {
                return Err(JoinFailure::Fatal(ClientError::broker(
                    format!("syncing group {group:?}"),
                    error,
                )))
            }
        }
        let assigned = decode_assignment(&synced.assignment)?;
        let rejoin = Arc::new(AtomicBool::new(false));
        let heartbeat = tokio::spawn(heartbeat(
            Arc::clone(&coordinator),
            group.to_owned(),
            member_id.clone(),
            joined.generation_id,
            Duration::from_millis((self.config.session_timeout_ms / 3).clamp(100, 3000) as u64),
            Arc::clone(&rejoin),
        ));
        let membership = Membership {
            group: group.to_owned(),
            member_id,
            generation: joined.generation_id,
            coordinator,
            rejoin,
            heartbeat: Some(heartbeat),
        };
        Ok((membership, assigned))
    }

    /// The leader's job: range-assign every member's subscribed partitions.
    async fn assign(&self, joined: &JoinGroupResponse) -> Result<Vec<SyncGroupRequestAssignment>> {
        let members: Vec<(String, Vec<String>)> = joined
            .members
            .iter()
            .map(|m| (m.member_id.to_string(), decode_subscription(&m.metadata)))
            .collect();
        let mut topics: Vec<String> = members.iter().flat_map(|(_, t)| t.clone()).collect();
        topics.sort();
        topics.dedup();
        self.cluster.refresh(&topics, false).await?;
        let mut counts = HashMap::new();
        for topic in &topics {
            if let Ok(metadata) = self.cluster.topic(topic, false).await {
                counts.insert(topic.clone(), metadata.leaders.len());
            }
        }
        Ok(range_assign(&members, &counts)
            .into_iter()
            .map(|(member, partitions)| {
                let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for tp in partitions {
                    by_topic.entry(tp.topic).or_default().push(tp.partition);
                }
                let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
                    by_topic
                        .into_iter()
                        .map(|(topic, partitions)| {
                            AssignedPartitions::default()
                                .with_topic(TopicName(text(&topic)))
                                .with_partitions(partitions)
                        })
                        .collect(),
                );
                SyncGroupRequestAssignment::default()
                    .with_member_id(text(&member))
                    .with_assignment(encode_versioned(&assignment, 0))
            })
            .collect())
    }

    /// Gives every owned partition without a position one: the committed
    /// offset, else the start position.
    async fn initialize_positions(&mut self) -> Result<()> {
        let missing: Vec<TopicPartition> = self
            .assignment
            .iter()
            .filter(|tp| !self.positions.contains_key(*tp))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let committed = match &self.membership {
            Some(membership) => self.committed(&membership.group.clone(), &missing).await?,
            None => HashMap::new(),
        };
        for tp in missing {
            let position = match committed.get(&tp) {
                Some(offset) if *offset >= 0 => *offset,
                _ => self.start_offset(&tp, self.config.start).await?,
            };
            self.positions.insert(tp, position);
        }
        Ok(())
    }

    /// Committed offsets of `partitions` for `group` (-1: none).
    pub async fn committed(&self, group: &str, partitions: &[TopicPartition]) -> Result<HashMap<TopicPartition, i64>> {
        let coordinator = self.cluster.coordinator(group).await?;
        committed_offsets(&coordinator, group, partitions).await
    }

    /// Resolves a start position to an offset of `partition`.
    pub async fn start_offset(&self, partition: &TopicPartition, start: StartPosition) -> Result<i64> {
        match start {
            StartPosition::Offset(offset) => Ok(offset),
            StartPosition::Earliest => list_offset(&self.cluster, partition, -2).await,
            StartPosition::Latest => list_offset(&self.cluster, partition, -1).await,
            StartPosition::Timestamp(ms) => match list_offset(&self.cluster, partition, ms).await? {
                -1 => list_offset(&self.cluster, partition, -1).await,
                offset => Ok(offset),
            },
        }
    }

    async fn fetch(&mut self) -> Result<Vec<ConsumerRecord>> {
        let mut by_leader: HashMap<String, (Arc<Connection>, Vec<TopicPartition>)> = HashMap::new();
        for tp in &self.assignment {
            let connection = self.cluster.leader(&tp.topic, tp.partition).await?;
            by_leader
                .entry(connection.address().to_owned())
                .or_insert_with(|| (connection, Vec::new()))
                .1
                .push(tp.clone());
        }
        let mut records = Vec::new();
        for (_, (connection, partitions)) in by_leader {
            let mut topics: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
            for tp in &partitions {
                topics.entry(tp.topic.clone()).or_default().push(
                    FetchPartition::default()
                        .with_partition(tp.partition)
                        .with_fetch_offset(self.positions[tp])
                        .with_partition_max_bytes(self.config.partition_max_bytes),
                );
            }
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(self.config.fetch_max_wait_ms)
                .with_min_bytes(1)
                .with_max_bytes(self.config.fetch_max_bytes)
                .with_session_epoch(-1)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(t, p)| FetchTopic::default().with_topic(TopicName(text(&t))).with_partitions(p))
                        .collect(),
                );
            let response: FetchResponse = connection.send(ApiKey::Fetch, &request).await?;
            check(response.error_code, || {
                format!("fetching from {}", connection.address())
            })?;
            for topic in response.responses {
                let name = topic.topic.to_string();
                for partition in topic.partitions {
                    let tp = TopicPartition {
                        topic: name.clone(),
                        partition: partition.partition_index,
                    };
                    self.apply_fetched(tp, partition, &mut records).await?;
                }
            }
        }
        Ok(records)
    }

    async fn apply_fetched(
        &mut self,
        tp: TopicPartition,
        partition: fetch_response::PartitionData,
        records: &mut Vec<ConsumerRecord>,
    ) -> Result<()> {
        let Some(position) = self.positions.get(&tp).copied() else {
            return Ok(());
        };
        match ResponseError::try_from_code(partition.error_code) {
            None => {}
            Some(ResponseError::OffsetOutOfRange) => {
                let reset = if self.config.start == StartPosition::Latest {
                    StartPosition::Latest
                } else {
                    StartPosition::Earliest
                };
                let offset = self.start_offset(&tp, reset).await?;
                tracing::warn!(topic = %tp.topic, partition = tp.partition, position, reset_to = offset, "offset out of range; resetting");
                self.positions.insert(tp, offset);
                return Ok(());
            }
            Some(error) if error.is_retriable() => {
                self.cluster.invalidate(&tp.topic);
                return Ok(());
            }
            Some(error) => {
                return Err(ClientError::broker(
                    format!("fetching {}/{}", tp.topic, tp.partition),
                    error,
                ))
            }
        }
        self.high_watermarks.lock().insert(tp.clone(), partition.high_watermark);
        if let Some(bytes) = partition.records.filter(|b| !b.is_empty()) {
            let (decoded, next) = decode(&tp.topic, tp.partition, &bytes, position)?;
            let next = decoded.last().map(|r| r.offset + 1).into_iter().chain(next).max();
            records.extend(decoded);
            if let Some(next) = next.filter(|n| *n > position) {
                self.positions.insert(tp, next);
            }
        }
        Ok(())
    }

    /// Commits the current position of every owned partition.
    pub async fn commit(&mut self) -> Result<()> {
        let Some(membership) = &self.membership else {
            return Ok(());
        };
        let offsets: Vec<(TopicPartition, i64)> = self
            .assignment
            .iter()
            .filter_map(|tp| self.positions.get(tp).map(|o| (tp.clone(), *o)))
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
        let Some(membership) = &self.membership else {
            return Ok(());
        };
        commit_offsets(
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
            membership.rejoin.store(true, Ordering::Release);
        }
    }

    /// The group generation and member id, for commits made elsewhere.
    pub fn generation(&self) -> Option<(i32, String)> {
        self.membership.as_ref().map(|m| (m.generation, m.member_id.clone()))
    }

    /// Leaves the group (without committing: commit first if wanted).
    pub async fn close(mut self) -> Result<()> {
        let Some(mut membership) = self.membership.take() else {
            return Ok(());
        };
        if let Some(task) = membership.heartbeat.take() {
            task.abort();
        }
        let request = LeaveGroupRequest::default()
            .with_group_id(GroupId(text(&membership.group)))
            .with_member_id(text(&membership.member_id))
            .with_members(vec![
                MemberIdentity::default().with_member_id(text(&membership.member_id))
            ]);
        let version = membership.coordinator.version(ApiKey::LeaveGroup)?;
        let mut request = request;
        if version >= 3 {
            request.member_id = StrBytes::default();
        } else {
            request.members.clear();
        }
        let response: LeaveGroupResponse = membership
            .coordinator
            .start(ApiKey::LeaveGroup, version, &request)
            .await?
            .response()
            .await?;
        check(response.error_code, || format!("leaving group {:?}", membership.group))
    }
}

enum JoinFailure {
    Retry { member_id: String },
    Fatal(ClientError),
}

impl From<ClientError> for JoinFailure {
    fn from(error: ClientError) -> Self {
        Self::Fatal(error)
    }
}

async fn heartbeat(
    coordinator: Arc<Connection>,
    group: String,
    member_id: String,
    generation: i32,
    interval: Duration,
    rejoin: Arc<AtomicBool>,
) {
    loop {
        tokio::time::sleep(interval).await;
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(text(&group)))
            .with_generation_id(generation)
            .with_member_id(text(&member_id));
        match coordinator
            .send::<_, HeartbeatResponse>(ApiKey::Heartbeat, &request)
            .await
        {
            Ok(response) if response.error_code == 0 => {}
            // Keep the session alive until the caller rejoins, as Kafka's
            // clients do: the member stays in the group meanwhile.
            Ok(response) if response.error_code == ResponseError::RebalanceInProgress.code() => {
                rejoin.store(true, Ordering::Release);
            }
            Ok(response) => {
                tracing::info!(group = %group, code = response.error_code, "group needs a rejoin");
                rejoin.store(true, Ordering::Release);
                return;
            }
            Err(error) => {
                tracing::warn!(group = %group, %error, "heartbeat failed; rejoining");
                rejoin.store(true, Ordering::Release);
                return;
            }
        }
    }
}
