//! What one JoinGroup does to a group, decided under the coordinator's lock
//! as Kafka's `GroupCoordinator` decides it:
//!
//! - a new dynamic member at v4+ first gets its id with MEMBER_ID_REQUIRED
//!   (KIP-394) and is remembered as pending, and the rebalance waits for it;
//! - a new static member (KIP-345) is admitted at once; a known instance id
//!   joining with an empty member id replaces its old member
//!   ([`super::static_member`]);
//! - a member that changes nothing in a group that already formed its
//!   generation gets that generation back, without a rebalance;
//! - everything else joins the next rebalance.

use super::state::{Announcements, Group, GroupState, JoinResult, Member};
use super::static_member::MemberRef;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

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

/// A join that was not refused: where its answer will come from, and the
/// answers (of this and other members) to send once the group is stored.
pub struct Joined {
    pub answer: oneshot::Receiver<JoinResult>,
    pub to_store: Option<Announcements>,
}

/// Carries out `request` on `group`; an immediate refusal is the error.
pub fn join(
    group: &mut Group,
    request: JoinRequest,
    now: Instant,
    initial_delay: Duration,
) -> Result<Joined, Box<JoinResult>> {
    if request.member_id.is_empty() {
        return join_new_member(group, request, now, initial_delay);
    }
    join_known_member(group, request, now, initial_delay)
}

fn new_member_id(client_id: &str) -> String {
    format!("{client_id}-{}", uuid::Uuid::new_v4())
}

fn join_new_member(
    group: &mut Group,
    request: JoinRequest,
    now: Instant,
    initial_delay: Duration,
) -> Result<Joined, Box<JoinResult>> {
    let id = new_member_id(&request.client_id);
    if let Some(instance) = request.group_instance_id.as_deref() {
        if let Some(old_id) = group.static_member_id(instance).map(str::to_owned) {
            return Ok(rejoin_static_member(group, &old_id, &id, request, now, initial_delay));
        }
    } else if request.require_known_member_id {
        let forget_at = now + Duration::from_millis(request.session_timeout_ms.max(0) as u64);
        group.pending_members.insert(id.clone(), forget_at);
        return Err(Box::new(JoinResult::error(ResponseError::MemberIdRequired, &id)));
    }
    Ok(join_rebalance(group, &id, request, now, initial_delay))
}

fn join_known_member(
    group: &mut Group,
    request: JoinRequest,
    now: Instant,
    initial_delay: Duration,
) -> Result<Joined, Box<JoinResult>> {
    let id = request.member_id.clone();
    if group.pending_members.remove(&id).is_some() {
        return Ok(join_rebalance(group, &id, request, now, initial_delay));
    }
    let member = MemberRef {
        id: &id,
        instance: request.group_instance_id.as_deref(),
    };
    if let Some(error) = group.check_member(member) {
        return Err(Box::new(JoinResult::error(error, &id)));
    }
    let unchanged = group.members.get(&id).is_some_and(|m| m.protocols == request.protocols);
    let is_leader = group.leader.as_deref() == Some(id.as_str());
    let leader = group.leader.clone().unwrap_or_default();
    match group.state {
        // A follower joining again with the same metadata (say its answer was
        // lost) learns the generation it is in; a leader's join rebalances.
        GroupState::Stable if unchanged && !is_leader => {
            touch_member(group, &id, now);
            Ok(answer_after_store(group.current_generation(&id, &leader, false)))
        }
        GroupState::CompletingRebalance if unchanged => {
            touch_member(group, &id, now);
            Ok(answer_after_store(group.current_generation(&id, &leader, is_leader)))
        }
        _ => Ok(join_rebalance(group, &id, request, now, initial_delay)),
    }
}

/// A static member restarted (or a second process with its instance id):
/// it takes its old member's place under `new_id`. In a stable group whose
/// protocol stays, it gets the current generation and keeps its assignment;
/// otherwise the group rebalances (after the leader may already have
/// assigned the old id, Kafka rebalances too).
fn rejoin_static_member(
    group: &mut Group,
    old_id: &str,
    new_id: &str,
    request: JoinRequest,
    now: Instant,
    initial_delay: Duration,
) -> Joined {
    let leader_before = group.leader.clone().unwrap_or_default();
    group.replace_static_member(old_id, new_id);
    if group.state != GroupState::Stable {
        return join_rebalance(group, new_id, request, now, initial_delay);
    }
    update_member(group, new_id, request, now);
    if group.protocol_name.as_deref() == Some(group.select_protocol().as_str()) {
        return answer_after_store(group.current_generation(new_id, &leader_before, false));
    }
    let (waiter, answer) = oneshot::channel();
    set_join_waiter(group, new_id, waiter);
    group.prepare_rebalance(now, initial_delay);
    Joined {
        answer,
        to_store: group.try_complete_join(now),
    }
}

/// An answer sent once the group (whose membership may have just changed)
/// is stored: a generation is never announced before it is durable.
fn answer_after_store(result: JoinResult) -> Joined {
    let (waiter, answer) = oneshot::channel();
    Joined {
        answer,
        to_store: Some(Announcements::join(waiter, result)),
    }
}

/// Records the join of `member_id` and starts (or keeps) a rebalance that
/// will answer it; completes the rebalance when this was the last join.
fn join_rebalance(
    group: &mut Group,
    member_id: &str,
    request: JoinRequest,
    now: Instant,
    initial_delay: Duration,
) -> Joined {
    let is_new = update_member(group, member_id, request, now);
    if let Some(delay) = group.initial_delay.as_mut().filter(|_| is_new) {
        delay.new_member_added = true;
    }
    let (waiter, answer) = oneshot::channel();
    set_join_waiter(group, member_id, waiter);
    group.prepare_rebalance(now, initial_delay);
    Joined {
        answer,
        to_store: group.try_complete_join(now),
    }
}

/// Where `member_id`'s join answer goes; an earlier join still waiting is
/// answered REBALANCE_IN_PROGRESS.
fn set_join_waiter(group: &mut Group, member_id: &str, waiter: oneshot::Sender<JoinResult>) {
    let Some(member) = group.members.get_mut(member_id) else {
        return;
    };
    if let Some(previous) = member.join_waiter.replace(waiter) {
        let _ = previous.send(JoinResult::error(ResponseError::RebalanceInProgress, member_id));
    }
}

fn touch_member(group: &mut Group, member_id: &str, now: Instant) {
    if let Some(member) = group.members.get_mut(member_id) {
        member.last_heartbeat = now;
    }
}

/// Takes the join's metadata into `member_id` (a member created when new);
/// whether it is new.
fn update_member(group: &mut Group, member_id: &str, request: JoinRequest, now: Instant) -> bool {
    let session = request.session_timeout_ms;
    let rebalance_ms = if request.rebalance_timeout_ms > 0 {
        request.rebalance_timeout_ms
    } else {
        session
    };
    let is_new = !group.members.contains_key(member_id);
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
    member.group_instance_id = request.group_instance_id;
    member.client_id = request.client_id;
    member.client_host = request.client_host;
    member.session_timeout = Duration::from_millis(session as u64);
    member.rebalance_timeout = Duration::from_millis(rebalance_ms as u64);
    member.protocol_type = request.protocol_type;
    member.protocols = request.protocols;
    member.last_heartbeat = now;
    is_new
}
