//! Static membership (KIP-345): a member that names itself with a group
//! instance id keeps its place in the group across restarts. Its instance
//! id maps to the member id it was last given; a restarted member joining
//! with an empty member id takes that place under a new member id (the old
//! id is fenced: FENCED_INSTANCE_ID), and when nothing else changes, a stable
//! group keeps its generation and assignment without a rebalance.
//!
//! Every request that names a member (SyncGroup, Heartbeat, OffsetCommit,
//! LeaveGroup) is checked with [`Group::check_member`]: a static member that
//! a newer instance replaced is refused, so two processes configured with
//! the same instance id cannot both consume.

use super::state::{Group, JoinResult, SyncResult};
use kafka_protocol::error::ResponseError;

/// The member a request names: its member id and, for a static member, its
/// group instance id. A bare member id converts into one (a dynamic member).
#[derive(Debug, Clone, Copy)]
pub struct MemberRef<'a> {
    pub id: &'a str,
    pub instance: Option<&'a str>,
}

impl<'a> From<&'a str> for MemberRef<'a> {
    fn from(id: &'a str) -> Self {
        Self { id, instance: None }
    }
}

impl<'a> From<&'a String> for MemberRef<'a> {
    fn from(id: &'a String) -> Self {
        Self { id, instance: None }
    }
}

impl Group {
    /// The member id the static member `instance` goes by now.
    pub fn static_member_id(&self, instance: &str) -> Option<&str> {
        self.members
            .values()
            .find(|m| m.group_instance_id.as_deref() == Some(instance))
            .map(|m| m.id.as_str())
    }

    /// Kafka's `validateCurrentMember`: with an instance id, it must be known
    /// and map to `member_id` (FENCED_INSTANCE_ID when a newer member took
    /// it); without one, `member_id` must be a member.
    pub fn check_member(&self, member: MemberRef) -> Option<ResponseError> {
        let member_id = member.id;
        match member.instance {
            Some(instance) => match self.static_member_id(instance) {
                None => Some(ResponseError::UnknownMemberId),
                Some(current) if current != member_id => Some(ResponseError::FencedInstanceId),
                Some(_) => None,
            },
            None if self.members.contains_key(member_id) => None,
            None => Some(ResponseError::UnknownMemberId),
        }
    }

    /// Moves the static member `old_id` to `new_id`: its waiting join or sync
    /// is answered FENCED_INSTANCE_ID (the process that sent it was replaced),
    /// its assignment and leadership move with it.
    pub fn replace_static_member(&mut self, old_id: &str, new_id: &str) {
        let Some(mut member) = self.members.remove(old_id) else {
            return;
        };
        if let Some(waiter) = member.join_waiter.take() {
            let _ = waiter.send(JoinResult::error(ResponseError::FencedInstanceId, old_id));
        }
        if let Some(waiter) = member.sync_waiter.take() {
            let _ = waiter.send(SyncResult::error(ResponseError::FencedInstanceId));
        }
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.to_owned());
        }
        tracing::info!(
            group = %self.id,
            instance = member.group_instance_id.as_deref().unwrap_or(""),
            old_member = old_id,
            new_member = new_id,
            "static member rejoined; the old member id is fenced"
        );
        member.id = new_id.to_owned();
        self.members.insert(new_id.to_owned(), member);
    }

    /// The answer to a member joining a group whose generation does not
    /// change: that generation, its protocol and leader (`leader` as given:
    /// a replaced static leader is shown its old id so that it does not
    /// assign again in a stable group); the leader's list of members only
    /// when `with_members`.
    pub fn current_generation(&self, member_id: &str, leader: &str, with_members: bool) -> JoinResult {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if with_members {
            self.members
                .values()
                .map(|m| (m.id.clone(), m.group_instance_id.clone(), m.subscription(&protocol)))
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: leader.to_owned(),
            member_id: member_id.to_owned(),
            members,
        }
    }
}
