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

use super::join;
pub use super::join::JoinRequest;
use super::offset_store::OffsetStore;
use super::records::{CommittedOffset, StoredGroup};
use super::state::{Announcements, Group, GroupState, JoinResult, SyncResult};
use super::static_member::MemberRef;
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

/// A group as DescribeGroups shows it.
pub struct GroupDescription {
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol_name: String,
    /// (member id, instance id, client id, client host, subscription, assignment)
    pub members: Vec<(String, Option<String>, String, String, Bytes, Bytes)>,
}

pub struct Coordinator {
    pub(super) groups: Mutex<HashMap<String, Group>>,
    pub(super) store: Arc<OffsetStore>,
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
        let joined = join::join(group, request, now, self.settings.initial_rebalance_delay)?;
        if let Some(announcements) = joined.to_store {
            let stored = group.to_stored();
            drop(groups);
            self.persist(stored, announcements);
        }
        Ok(joined.answer)
    }

    /// A member's SyncGroup; `instance` is its group instance id (static members).
    pub async fn sync<'a>(
        &self,
        group_id: &str,
        generation: i32,
        member: impl Into<MemberRef<'a>>,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncResult {
        let member_ref = member.into();
        let member_id = member_ref.id;
        let receiver = {
            let mut groups = self.groups.lock();
            let Some(group) = groups.get_mut(group_id) else {
                return SyncResult::error(ResponseError::UnknownMemberId);
            };
            if let Some(error) = group.check_member(member_ref) {
                return SyncResult::error(error);
            }
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

    pub fn heartbeat<'a>(
        &self,
        group_id: &str,
        generation: i32,
        member: impl Into<MemberRef<'a>>,
    ) -> Option<ResponseError> {
        let member_ref = member.into();
        let member_id = member_ref.id;
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Some(ResponseError::UnknownMemberId);
        };
        if let Some(error) = group.check_member(member_ref) {
            return Some(error);
        }
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

    /// Removes members, each named by member id or (static members, v3+)
    /// instance id; per member, an error when it was not in the group.
    pub fn leave(&self, group_id: &str, members: &[(String, Option<String>)]) -> Vec<Option<ResponseError>> {
        let now = Instant::now();
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return members.iter().map(|_| Some(ResponseError::UnknownMemberId)).collect();
        };
        let results = members
            .iter()
            .map(|(member_id, instance)| {
                let id = leaving_member(group, member_id, instance.as_deref())?;
                tracing::info!(group = group_id, member = %id, instance = instance.as_deref().unwrap_or(""), "member left");
                group.remove_member(&id, now);
                Ok(())
            })
            .map(Result::err)
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
        let changed: Vec<_> = {
            let mut groups = self.groups.lock();
            groups.values_mut().flat_map(|group| expire_due(group, now)).collect()
        };
        for (stored, announcements) in changed {
            self.persist(stored, announcements);
        }
    }

    /// What [`Coordinator::tick`] does, for one group and at once: a request
    /// that judges a group by its members (DeleteGroups, DescribeGroups)
    /// sees it as Kafka's timers would, not as of the last tick.
    pub(super) fn expire_due_now(&self, group: &mut Group) {
        for (stored, announcements) in expire_due(group, Instant::now()) {
            self.persist(stored, announcements);
        }
    }

    /// Checks that a member may commit for a group; generation -1 with no
    /// member id is a simple consumer, allowed while the group has no members.
    pub fn check_commit<'a>(
        &self,
        group_id: &str,
        generation: i32,
        member: impl Into<MemberRef<'a>>,
    ) -> Option<ResponseError> {
        let member = member.into();
        let member_id = member.id;
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
        if let Some(error) = group.check_member(member) {
            return Some(error);
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
        let mut groups = self.groups.lock();
        if let Some(group) = groups.get_mut(group_id) {
            self.expire_due_now(group);
        }
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

/// Removes `group`'s members whose session ran out and forgets pending member
/// ids past theirs, then completes a join that was waiting for them; the
/// memberships to store (with their answers).
fn expire_due(group: &mut Group, now: Instant) -> Vec<(StoredGroup, Announcements)> {
    let mut changed = Vec::new();
    for id in group.expired_members(now) {
        tracing::info!(group = %group.id, member = %id, "member session expired");
        group.remove_member(&id, now);
        if group.state == GroupState::Empty {
            changed.push((group.to_stored(), Announcements::default()));
        }
    }
    group.pending_members.retain(|_, forget_at| now < *forget_at);
    if let Some(announcements) = group.try_complete_join(now) {
        changed.push((group.to_stored(), announcements));
    }
    changed
}

/// The member a LeaveGroup entry names: a static member by its instance id
/// (a member id given with it must be that member's: FENCED_INSTANCE_ID
/// otherwise, as Kafka), a dynamic one by its member id.
fn leaving_member(group: &Group, member_id: &str, instance: Option<&str>) -> Result<String, ResponseError> {
    let Some(instance) = instance else {
        return match group.members.contains_key(member_id) {
            true => Ok(member_id.to_owned()),
            false => Err(ResponseError::UnknownMemberId),
        };
    };
    match group.static_member_id(instance) {
        None => Err(ResponseError::UnknownMemberId),
        Some(current) if !member_id.is_empty() && current != member_id => Err(ResponseError::FencedInstanceId),
        Some(current) => Ok(current.to_owned()),
    }
}

#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
