//! One consumer group's state machine, as Kafka's `GroupMetadata`:
//!
//! ```text
//! Empty ──join──▶ PreparingRebalance ──all joined / rebalance timeout──▶ CompletingRebalance
//!   ▲                    ▲   ▲                                               │ leader's SyncGroup
//!   │ last member leaves │   └──────── join / leave / session expiry ────────┤
//!   └────────────────────┴───────────────────────────────────────────── Stable
//! ```
//!
//! Assignment is done by the group leader (a client); the broker passes the
//! members' subscriptions to the leader and the leader's assignments back,
//! byte for byte. Waiters are oneshot channels answered when the state allows;
//! answers that announce a new membership (a generation, assignments) are
//! handed back as [`Announcements`] for the coordinator to send once that
//! membership is stored. Errors are answered at once.
//! This module has no locks and no I/O: the coordinator owns both.

use super::records::{StoredGroup, StoredMember};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    /// The name Kafka's DescribeGroups and ListGroups use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
        }
    }
}

#[derive(Debug, Clone)]
pub struct JoinResult {
    pub error: Option<ResponseError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// (member id, group instance id, subscription): only for the leader.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    pub fn error(error: ResponseError, member_id: &str) -> Self {
        Self {
            error: Some(error),
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.into(),
            members: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SyncResult {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(error: ResponseError) -> Self {
        Self {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// Answers that announce a new membership: the JoinGroup answers of a new
/// generation, the SyncGroup answers carrying the leader's assignments.
/// Decided under the coordinator's lock, sent by it only once the membership
/// they announce is stored, so a client is never told a generation that a
/// restart could take back (commits are fenced by generation).
#[derive(Default)]
#[must_use = "waiting members hang until their answers are sent or dropped"]
pub struct Announcements {
    joins: Vec<(oneshot::Sender<JoinResult>, JoinResult)>,
    syncs: Vec<(oneshot::Sender<SyncResult>, SyncResult)>,
}

impl Announcements {
    /// One JoinGroup answer.
    pub fn join(waiter: oneshot::Sender<JoinResult>, result: JoinResult) -> Self {
        Self {
            joins: vec![(waiter, result)],
            syncs: Vec::new(),
        }
    }

    /// One SyncGroup answer.
    pub fn sync(waiter: oneshot::Sender<SyncResult>, result: SyncResult) -> Self {
        Self {
            joins: Vec::new(),
            syncs: vec![(waiter, result)],
        }
    }

    pub fn len(&self) -> usize {
        self.joins.len() + self.syncs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends every answer as decided (a member that gave up is skipped).
    pub fn send(self) {
        for (waiter, result) in self.joins {
            let _ = waiter.send(result);
        }
        for (waiter, result) in self.syncs {
            let _ = waiter.send(result);
        }
    }

    /// Answers every waiter with `error` instead: the membership could not be stored.
    pub fn fail(self, error: ResponseError) {
        for (waiter, result) in self.joins {
            let _ = waiter.send(JoinResult::error(error, &result.member_id));
        }
        for (waiter, _) in self.syncs {
            let _ = waiter.send(SyncResult::error(error));
        }
    }
}

pub struct Member {
    pub id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// (protocol name, subscription metadata), in the member's preference order.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_heartbeat: Instant,
    pub join_waiter: Option<oneshot::Sender<JoinResult>>,
    pub sync_waiter: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    /// This member's metadata for `protocol` (empty if it does not speak it).
    pub fn subscription(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined, and
    /// when each is forgotten (its session timeout after it was handed out).
    /// A rebalance waits for them, as Kafka's does.
    pub pending_members: BTreeMap<String, Instant>,
    pub rebalance_deadline: Option<Instant>,
    /// The first rebalance of an empty group waits for more members.
    pub initial_delay: Option<InitialDelay>,
}

/// Kafka's `InitialDelayedJoin`: an empty group's first rebalance waits one
/// step (`group_initial_rebalance_delay_ms`), and another each time a new
/// member joined during the last one, until the rebalance timeout is spent;
/// so consumers started together land in one generation.
#[derive(Debug, Clone, Copy)]
pub struct InitialDelay {
    pub not_before: Instant,
    pub step: Duration,
    /// Of the rebalance timeout, what further steps may still take.
    pub remaining: Duration,
    pub new_member_added: bool,
}

impl InitialDelay {
    /// Whether the join must still wait at `now`: before the step ends, or
    /// for one more step when a new member came during this one.
    fn holds(&mut self, now: Instant) -> bool {
        if now < self.not_before {
            return true;
        }
        if !self.new_member_added || self.remaining.is_zero() {
            return false;
        }
        let step = self.step.min(self.remaining);
        self.not_before = now + step;
        self.remaining -= step;
        self.new_member_added = false;
        true
    }
}

impl Group {
    pub fn new(id: &str) -> Self {
        Self {
            id: id.into(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            rebalance_deadline: None,
            initial_delay: None,
        }
    }

    /// A group as stored before a restart: Stable with its members, whose
    /// sessions start now; members that do not heartbeat expire as usual.
    pub fn restored(stored: &StoredGroup, now: Instant) -> Self {
        let mut group = Self::new(&stored.group);
        group.generation = stored.generation;
        if stored.members.is_empty() {
            return group;
        }
        group.state = GroupState::Stable;
        group.protocol_type = Some(stored.protocol_type.clone());
        group.protocol_name = Some(stored.protocol_name.clone());
        group.leader = Some(stored.leader.clone());
        for member in &stored.members {
            group.members.insert(
                member.member_id.clone(),
                Member {
                    id: member.member_id.clone(),
                    group_instance_id: member.group_instance_id.clone(),
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    session_timeout: Duration::from_millis(member.session_timeout_ms.max(0) as u64),
                    rebalance_timeout: Duration::from_millis(member.rebalance_timeout_ms.max(0) as u64),
                    protocol_type: stored.protocol_type.clone(),
                    protocols: vec![(stored.protocol_name.clone(), member.subscription.clone())],
                    assignment: member.assignment.clone(),
                    last_heartbeat: now,
                    join_waiter: None,
                    sync_waiter: None,
                },
            );
        }
        group
    }

    /// The membership to store durably.
    pub fn to_stored(&self) -> StoredGroup {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        StoredGroup {
            group: self.id.clone(),
            generation: self.generation,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_name: protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout.as_millis() as i32,
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis() as i32,
                    subscription: m.subscription(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Whether a joining member's protocols fit the group's.
    pub fn accepts_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref().is_some_and(|t| t != protocol_type) {
            return false;
        }
        protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    /// Starts (or keeps) a rebalance; answers sync waiters of the old generation.
    pub fn prepare_rebalance(&mut self, now: Instant, initial_delay: Duration) {
        if self.state == GroupState::PreparingRebalance {
            return;
        }
        for member in self.members.values_mut() {
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncResult::error(ResponseError::RebalanceInProgress));
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        if self.state == GroupState::Empty && !initial_delay.is_zero() {
            let step = initial_delay.min(timeout);
            self.initial_delay = Some(InitialDelay {
                not_before: now + step,
                step: initial_delay,
                remaining: timeout.saturating_sub(step),
                new_member_added: false,
            });
        }
        self.rebalance_deadline = Some(now + timeout);
        self.state = GroupState::PreparingRebalance;
    }

    /// Completes the join phase when every member rejoined and every member
    /// id handed out with MEMBER_ID_REQUIRED joined or was forgotten (after
    /// the initial delay), or the rebalance timeout passed. Returns, when a
    /// new generation was formed or the group became empty, the JoinGroup
    /// answers announcing it (none for an empty group), to send once it is
    /// stored.
    pub fn try_complete_join(&mut self, now: Instant) -> Option<Announcements> {
        if self.state != GroupState::PreparingRebalance {
            return None;
        }
        let deadline_passed = self.rebalance_deadline.is_some_and(|d| now >= d);
        let delayed = self.initial_delay.as_mut().is_some_and(|delay| delay.holds(now));
        let all_joined = self.members.values().all(|m| m.join_waiter.is_some()) && self.pending_members.is_empty();
        if !deadline_passed && (delayed || !all_joined) {
            return None;
        }
        let missing: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in missing {
            tracing::info!(group = %self.id, member = %id, "member did not rejoin in time; removed");
            self.members.remove(&id);
        }
        self.generation += 1;
        self.rebalance_deadline = None;
        self.initial_delay = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol_type = None;
            self.protocol_name = None;
            self.leader = None;
            return Some(Announcements::default());
        }
        let protocol = self.select_protocol();
        let protocol_type = self.members.values().next().map(|m| m.protocol_type.clone());
        if self.leader.as_ref().is_none_or(|l| !self.members.contains_key(l)) {
            self.leader = self.members.keys().next().cloned();
        }
        let leader = self.leader.clone().expect("a non-empty group has a leader");
        self.state = GroupState::CompletingRebalance;
        self.protocol_type = protocol_type;
        self.protocol_name = Some(protocol.clone());
        let results: Vec<JoinResult> = self
            .members
            .keys()
            .map(|id| self.current_generation(id, &leader, *id == leader))
            .collect();
        let mut announcements = Announcements::default();
        for (member, result) in self.members.values_mut().zip(results) {
            member.last_heartbeat = now;
            member.assignment = Bytes::new();
            if let Some(waiter) = member.join_waiter.take() {
                announcements.joins.push((waiter, result));
            }
        }
        tracing::info!(group = %self.id, generation = self.generation, members = self.members.len(), %leader, %protocol, "group rebalanced");
        Some(announcements)
    }

    /// The protocol every member supports that most members prefer (Kafka's vote).
    pub fn select_protocol(&self) -> String {
        let candidates: Vec<&String> = self
            .members
            .values()
            .next()
            .map(|m| m.protocols.iter().map(|(n, _)| n).collect())
            .unwrap_or_default();
        let supported: Vec<&String> = candidates
            .into_iter()
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
            })
            .collect();
        let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member.protocols.iter().find(|(n, _)| supported.contains(&n)) {
                *votes.entry(name).or_default() += 1;
            }
        }
        supported
            .iter()
            .max_by_key(|name| (votes.get(*name).copied().unwrap_or(0), std::cmp::Reverse(*name)))
            .map(|name| (*name).clone())
            .unwrap_or_default()
    }

    /// Removes a member, answering its waiters, and rebalances the rest.
    pub fn remove_member(&mut self, member_id: &str, now: Instant) {
        let Some(mut member) = self.members.remove(member_id) else {
            return;
        };
        if let Some(waiter) = member.join_waiter.take() {
            let _ = waiter.send(JoinResult::error(ResponseError::UnknownMemberId, member_id));
        }
        if let Some(waiter) = member.sync_waiter.take() {
            let _ = waiter.send(SyncResult::error(ResponseError::UnknownMemberId));
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                if self.members.is_empty() {
                    self.state = GroupState::Empty;
                    self.generation += 1;
                    self.protocol_type = None;
                    self.protocol_name = None;
                    self.leader = None;
                } else {
                    self.prepare_rebalance(now, Duration::ZERO);
                }
            }
            GroupState::PreparingRebalance => {}
            GroupState::Empty => {}
        }
    }

    /// Members whose session ran out (not counting those waiting in a join or sync).
    pub fn expired_members(&self, now: Instant) -> Vec<String> {
        self.members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.sync_waiter.is_none())
            .filter(|m| now.duration_since(m.last_heartbeat) > m.session_timeout)
            .map(|m| m.id.clone())
            .collect()
    }

    /// Takes the leader's assignments and makes the group Stable; returns
    /// the answers of every sync waiter, to send once this is stored.
    pub fn complete_sync(&mut self, assignments: &[(String, Bytes)]) -> Announcements {
        for member in self.members.values_mut() {
            member.assignment = assignments
                .iter()
                .find(|(id, _)| *id == member.id)
                .map(|(_, a)| a.clone())
                .unwrap_or_default();
        }
        self.state = GroupState::Stable;
        let (protocol_type, protocol_name) = (self.protocol_type.clone(), self.protocol_name.clone());
        let mut announcements = Announcements::default();
        for member in self.members.values_mut() {
            if let Some(waiter) = member.sync_waiter.take() {
                let result = SyncResult {
                    error: None,
                    protocol_type: protocol_type.clone(),
                    protocol_name: protocol_name.clone(),
                    assignment: member.assignment.clone(),
                };
                announcements.syncs.push((waiter, result));
            }
        }
        announcements
    }
}
