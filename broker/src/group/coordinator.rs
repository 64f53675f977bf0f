//! The group coordinator: every group of this broker behind one lock, the
//! async entry points the protocol handlers call, the durable offset store,
//! and the ticker that expires sessions and rebalance deadlines.
//!
//! Waiting (a JoinGroup until the rebalance completes, a follower's SyncGroup
//! until the leader's) happens outside the lock on oneshot channels. Durable
//! writes (offsets, membership) run on the blocking pool, never under the lock.
//!
//! Membership is stored before it is announced: the JoinGroup answers of a
//! new generation and the SyncGroup answers carrying assignments are sent by
//! the blocking task that stored the group, once the store returned (as
//! durable as the offsets log's fsync policy makes it). A restart therefore
//! never takes back a generation a client was told, so it never hands the
//! same generation number to a new membership while a member of the old one
//! may still commit with it. If the membership cannot be stored, those
//! members are answered [`MEMBERSHIP_NOT_STORED`] and rejoin. Changes that
//! announce nothing (a member leaving or expiring) are stored without anyone
//! waiting: losing one in a crash costs a session timeout, not a fence.

use super::offset_store::OffsetStore;
use super::records::{CommittedOffset, StoredGroup};
use super::state::{Announcements, Group, GroupState, JoinResult, Member, SyncResult};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Longest committed-offset metadata string, as Kafka's
/// `offset.metadata.max.bytes` (4 KiB).
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;
/// How often sessions and rebalance deadlines are checked; session timeouts
/// are seconds, so 100 ms of slack is noise.
pub const TICK_INTERVAL: Duration = Duration::from_millis(100);
/// The answer to members whose new membership could not be stored, as to an
/// offset commit that could not be: the client finds the coordinator again
/// and rejoins.
pub const MEMBERSHIP_NOT_STORED: ResponseError = ResponseError::CoordinatorNotAvailable;

#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub session_timeout_ms_min: i32,
    pub session_timeout_ms_max: i32,
    pub initial_rebalance_delay: Duration,
}

pub struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member first gets its id with MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
}

/// A group as DescribeGroups shows it.
pub struct GroupDescription {
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol_name: String,
    /// (member id, instance id, client id, client host, subscription, assignment)
    pub members: Vec<(String, Option<String>, String, String, Bytes, Bytes)>,
}

pub struct Coordinator {
    groups: Mutex<HashMap<String, Group>>,
    store: Arc<OffsetStore>,
    settings: GroupSettings,
}

impl Coordinator {
    /// Restores stored groups: Stable with their members, whose sessions start now.
    pub fn new(store: Arc<OffsetStore>, settings: GroupSettings) -> Arc<Self> {
        let now = Instant::now();
        let groups = store
            .stored_groups()
            .iter()
            .map(|stored| (stored.group.clone(), Group::restored(stored, now)))
            .collect();
        Arc::new(Self {
            groups: Mutex::new(groups),
            store,
            settings,
        })
    }

    pub fn store(&self) -> &Arc<OffsetStore> {
        &self.store
    }

    /// Stores a membership on the blocking pool, then sends the answers that
    /// announce it, or [`MEMBERSHIP_NOT_STORED`] when it cannot be stored.
    /// Must run inside a tokio runtime.
    fn persist(&self, stored: StoredGroup, announcements: Announcements) {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || match store.save_group(&stored) {
            Ok(()) => announcements.send(),
            Err(error) => {
                tracing::error!(
                    group = %stored.group,
                    generation = stored.generation,
                    members_answered = announcements.len(),
                    %error,
                    "could not store group membership; its members are told to rejoin"
                );
                announcements.fail(MEMBERSHIP_NOT_STORED);
            }
        });
    }

    pub async fn join(&self, request: JoinRequest) -> JoinResult {
        let receiver = match self.join_locked(request) {
            Ok(receiver) => receiver,
            Err(result) => return *result,
        };
        receiver
            .await
            .unwrap_or_else(|_| JoinResult::error(ResponseError::RebalanceInProgress, ""))
    }

    fn join_locked(&self, request: JoinRequest) -> Result<oneshot::Receiver<JoinResult>, Box<JoinResult>> {
        let now = Instant::now();
        let session = request.session_timeout_ms;
        if session < self.settings.session_timeout_ms_min || session > self.settings.session_timeout_ms_max {
            return Err(Box::new(JoinResult::error(
                ResponseError::InvalidSessionTimeout,
                &request.member_id,
            )));
        }
        let mut groups = self.groups.lock();
        let group = groups
            .entry(request.group_id.clone())
            .or_insert_with(|| Group::new(&request.group_id));
        if !group.accepts_protocols(&request.protocol_type, &request.protocols) {
            return Err(Box::new(JoinResult::error(
                ResponseError::InconsistentGroupProtocol,
                &request.member_id,
            )));
        }
        let member_id = admit_member(group, &request, now)?;
        let (sender, receiver) = oneshot::channel();
        record_join(group, &member_id, request, sender, now);
        group.prepare_rebalance(now, self.settings.initial_rebalance_delay);
        if let Some(announcements) = group.try_complete_join(now) {
            let stored = group.to_stored();
            drop(groups);
            self.persist(stored, announcements);
        }
        Ok(receiver)
    }

    pub async fn sync(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncResult {
        let receiver = {
            let mut groups = self.groups.lock();
            let Some(group) = groups.get_mut(group_id) else {
                return SyncResult::error(ResponseError::UnknownMemberId);
            };
            let Some(member) = group.members.get_mut(member_id) else {
                return SyncResult::error(ResponseError::UnknownMemberId);
            };
            if generation != group.generation {
                return SyncResult::error(ResponseError::IllegalGeneration);
            }
            member.last_heartbeat = Instant::now();
            match group.state {
                GroupState::Empty => return SyncResult::error(ResponseError::UnknownMemberId),
                GroupState::PreparingRebalance => return SyncResult::error(ResponseError::RebalanceInProgress),
                GroupState::Stable => {
                    // A member syncing after the leader: its assignment may
                    // still be on its way to the store. Storing the same
                    // membership again waits for that (the store skips what
                    // it already holds).
                    let result = SyncResult {
                        error: None,
                        protocol_type: group.protocol_type.clone(),
                        protocol_name: group.protocol_name.clone(),
                        assignment: member.assignment.clone(),
                    };
                    let (sender, receiver) = oneshot::channel();
                    let stored = group.to_stored();
                    drop(groups);
                    self.persist(stored, Announcements::sync(sender, result));
                    receiver
                }
                GroupState::CompletingRebalance => {
                    let (sender, receiver) = oneshot::channel();
                    member.sync_waiter = Some(sender);
                    if group.leader.as_deref() == Some(member_id) {
                        let announcements = group.complete_sync(&assignments);
                        let stored = group.to_stored();
                        drop(groups);
                        self.persist(stored, announcements);
                    }
                    receiver
                }
            }
        };
        receiver
            .await
            .unwrap_or_else(|_| SyncResult::error(ResponseError::RebalanceInProgress))
    }

    pub fn heartbeat(&self, group_id: &str, generation: i32, member_id: &str) -> Option<ResponseError> {
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Some(ResponseError::UnknownMemberId);
        };
        let state = group.state;
        let current = group.generation;
        let Some(member) = group.members.get_mut(member_id) else {
            return Some(ResponseError::UnknownMemberId);
        };
        if generation != current {
            return Some(ResponseError::IllegalGeneration);
        }
        member.last_heartbeat = Instant::now();
        match state {
            GroupState::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
            GroupState::Empty => Some(ResponseError::UnknownMemberId),
            GroupState::CompletingRebalance | GroupState::Stable => None,
        }
    }

    /// Removes members; per member, an error when it was not in the group.
    pub fn leave(&self, group_id: &str, member_ids: &[String]) -> Vec<Option<ResponseError>> {
        let now = Instant::now();
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return member_ids
                .iter()
                .map(|_| Some(ResponseError::UnknownMemberId))
                .collect();
        };
        let results = member_ids
            .iter()
            .map(|id| {
                if group.members.contains_key(id) {
                    tracing::info!(group = group_id, member = %id, "member left");
                    group.remove_member(id, now);
                    None
                } else {
                    Some(ResponseError::UnknownMemberId)
                }
            })
            .collect();
        let announcements = group.try_complete_join(now);
        if announcements.is_some() || group.state == GroupState::Empty {
            let stored = group.to_stored();
            drop(groups);
            self.persist(stored, announcements.unwrap_or_default());
        }
        results
    }

    /// Expires sessions, pending member ids and rebalance deadlines.
    pub fn tick(&self) {
        let now = Instant::now();
        let mut changed = Vec::new();
        {
            let mut groups = self.groups.lock();
            for group in groups.values_mut() {
                for id in group.expired_members(now) {
                    tracing::info!(group = %group.id, member = %id, "member session expired");
                    group.remove_member(&id, now);
                    if group.state == GroupState::Empty {
                        changed.push((group.to_stored(), Announcements::default()));
                    }
                }
                let session_max = Duration::from_millis(self.settings.session_timeout_ms_max as u64);
                group
                    .pending_members
                    .retain(|_, since| now.duration_since(*since) < session_max);
                if let Some(announcements) = group.try_complete_join(now) {
                    changed.push((group.to_stored(), announcements));
                }
            }
        }
        for (stored, announcements) in changed {
            self.persist(stored, announcements);
        }
    }

    /// Checks that a member may commit for a group; generation -1 with no
    /// member id is a simple consumer, allowed while the group has no members.
    pub fn check_commit(&self, group_id: &str, generation: i32, member_id: &str) -> Option<ResponseError> {
        let groups = self.groups.lock();
        let group = groups.get(group_id);
        if generation < 0 && member_id.is_empty() {
            return match group {
                Some(group) if !group.members.is_empty() => Some(ResponseError::UnknownMemberId),
                _ => None,
            };
        }
        let Some(group) = group else {
            return Some(ResponseError::UnknownMemberId);
        };
        if !group.members.contains_key(member_id) {
            return Some(ResponseError::UnknownMemberId);
        }
        if generation != group.generation {
            return Some(ResponseError::IllegalGeneration);
        }
        if group.state == GroupState::CompletingRebalance {
            return Some(ResponseError::RebalanceInProgress);
        }
        None
    }

    /// Stores committed offsets durably (blocking the calling thread).
    pub fn commit_blocking(
        &self,
        group_id: &str,
        offsets: &[(String, i32, CommittedOffset)],
    ) -> crate::log::Result<()> {
        self.store.commit(group_id, offsets)
    }

    /// (group id, protocol type, state) of every group, including empty groups
    /// that only have committed offsets.
    pub fn list(&self) -> Vec<(String, String, &'static str)> {
        let groups = self.groups.lock();
        let mut listed: Vec<(String, String, &'static str)> = groups
            .values()
            .map(|g| {
                (
                    g.id.clone(),
                    g.protocol_type.clone().unwrap_or_else(|| "consumer".into()),
                    g.state.as_str(),
                )
            })
            .collect();
        for group in self.store.groups_with_offsets() {
            if !groups.contains_key(&group) {
                listed.push((group, "consumer".into(), GroupState::Empty.as_str()));
            }
        }
        listed.sort();
        listed
    }

    /// A group's state and members; unknown groups are "Dead", as in Kafka.
    pub fn describe(&self, group_id: &str) -> GroupDescription {
        let groups = self.groups.lock();
        let Some(group) = groups.get(group_id) else {
            let state = if self.store.groups_with_offsets().iter().any(|g| g == group_id) {
                "Empty"
            } else {
                "Dead"
            };
            return GroupDescription {
                state,
                protocol_type: String::new(),
                protocol_name: String::new(),
                members: Vec::new(),
            };
        };
        let protocol = group.protocol_name.clone().unwrap_or_default();
        GroupDescription {
            state: group.state.as_str(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol_name: protocol.clone(),
            members: group
                .members
                .values()
                .map(|m| {
                    let subscription = m
                        .protocols
                        .iter()
                        .find(|(n, _)| *n == protocol)
                        .map(|(_, s)| s.clone())
                        .unwrap_or_default();
                    (
                        m.id.clone(),
                        m.group_instance_id.clone(),
                        m.client_id.clone(),
                        m.client_host.clone(),
                        subscription,
                        m.assignment.clone(),
                    )
                })
                .collect(),
        }
    }
}

/// The id the joining member goes by in `group`. A new member gets one; a
/// member that must learn it first (KIP-394) is refused with it, and
/// remembered as pending. A member id the group does not know is refused.
fn admit_member(group: &mut Group, request: &JoinRequest, now: Instant) -> Result<String, Box<JoinResult>> {
    if request.member_id.is_empty() {
        let id = format!("{}-{}", request.client_id, uuid::Uuid::new_v4());
        if request.require_known_member_id {
            group.pending_members.insert(id.clone(), now);
            return Err(Box::new(JoinResult::error(ResponseError::MemberIdRequired, &id)));
        }
        return Ok(id);
    }
    if !group.members.contains_key(&request.member_id) && group.pending_members.remove(&request.member_id).is_none() {
        return Err(Box::new(JoinResult::error(
            ResponseError::UnknownMemberId,
            &request.member_id,
        )));
    }
    Ok(request.member_id.clone())
}

/// Records the join of `member_id` (a new member or one joining again) and
/// where its answer goes; an earlier join still waiting is answered
/// REBALANCE_IN_PROGRESS.
fn record_join(
    group: &mut Group,
    member_id: &str,
    request: JoinRequest,
    answer: oneshot::Sender<JoinResult>,
    now: Instant,
) {
    let session = request.session_timeout_ms;
    let rebalance_ms = if request.rebalance_timeout_ms > 0 {
        request.rebalance_timeout_ms
    } else {
        session
    };
    let member = group.members.entry(member_id.to_owned()).or_insert_with(|| Member {
        id: member_id.to_owned(),
        group_instance_id: None,
        client_id: String::new(),
        client_host: String::new(),
        session_timeout: Duration::ZERO,
        rebalance_timeout: Duration::ZERO,
        protocol_type: String::new(),
        protocols: Vec::new(),
        assignment: Bytes::new(),
        last_heartbeat: now,
        join_waiter: None,
        sync_waiter: None,
    });
    if let Some(previous) = member.join_waiter.replace(answer) {
        let _ = previous.send(JoinResult::error(ResponseError::RebalanceInProgress, member_id));
    }
    member.group_instance_id = request.group_instance_id;
    member.client_id = request.client_id;
    member.client_host = request.client_host;
    member.session_timeout = Duration::from_millis(session as u64);
    member.rebalance_timeout = Duration::from_millis(rebalance_ms as u64);
    member.protocol_type = request.protocol_type;
    member.protocols = request.protocols;
    member.last_heartbeat = now;
}

#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
