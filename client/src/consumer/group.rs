//! A consumer's group membership (Kafka's classic group protocol):
//! JoinGroup and SyncGroup, where the member the coordinator makes leader
//! range-assigns every member's subscribed partitions; a heartbeat task that
//! keeps the session alive while the caller works and flags when the group
//! wants a rejoin; LeaveGroup. It never fetches records, tracks positions
//! or commits offsets: the consumer does, with the [`Membership`] this
//! module hands it.

use super::config::ConsumerConfig;
use crate::assignor::{decode_assignment, decode_subscription, encode_versioned, range_assign};
use crate::backoff::Backoff;
use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::error::{check, ClientError, Result};
use crate::types::TopicPartition;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use relay_proto::stop::Stop;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The first wait after a retriable failure to join; it doubles up to
/// [`JOIN_BACKOFF_MAX`].
const JOIN_BACKOFF_MIN: Duration = Duration::from_millis(100);
const JOIN_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Heartbeats go every third of the session timeout, within these bounds.
const HEARTBEAT_INTERVAL_MS_MIN: i32 = 100;
const HEARTBEAT_INTERVAL_MS_MAX: i32 = 3_000;

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// One generation of this consumer in its group.
pub(super) struct Membership {
    pub group: String,
    pub member_id: String,
    pub generation: i32,
    pub coordinator: Arc<Connection>,
    rejoin: Arc<AtomicBool>,
    heartbeat: Option<JoinHandle<()>>,
}

impl Membership {
    /// Joins `config.group` until the coordinator hands out an assignment,
    /// retrying retriable failures with backoff until `stop` is on (then the
    /// last failure is the answer: a stopping caller has nothing to wait
    /// for). `previous` is this consumer's last membership: its member id is
    /// reused and its heartbeat stops.
    pub async fn join(
        cluster: &Cluster,
        config: &ConsumerConfig,
        previous: Option<&mut Membership>,
        stop: Option<&Stop>,
    ) -> Result<(Membership, Vec<TopicPartition>)> {
        let group = config.group.clone().expect("group mode");
        let mut member_id = previous.as_ref().map(|m| m.member_id.clone()).unwrap_or_default();
        if let Some(previous) = previous {
            previous.stop_heartbeat();
        }
        let mut backoff = Backoff::new(JOIN_BACKOFF_MIN, JOIN_BACKOFF_MAX);
        loop {
            match join_once(cluster, config, &group, &member_id).await {
                Ok((membership, assigned)) => {
                    tracing::info!(group = %group, generation = membership.generation, partitions = assigned.len(), "joined group");
                    return Ok((membership, assigned));
                }
                Err(JoinFailure::Retry { member_id: next }) => member_id = next,
                Err(JoinFailure::Fatal(error)) if error.is_retriable() => {
                    if stop.is_some_and(Stop::is_stopped) {
                        return Err(error);
                    }
                    tracing::warn!(group = %group, %error, "joining the group failed; retrying");
                    if !sleep_unless_stopped(&mut backoff, stop).await {
                        return Err(error);
                    }
                }
                Err(JoinFailure::Fatal(error)) => return Err(error),
            }
        }
    }

    /// Whether the heartbeat (or the caller) asked for a rejoin.
    pub fn wants_rejoin(&self) -> bool {
        self.rejoin.load(Ordering::Acquire)
    }

    pub fn request_rejoin(&self) {
        self.rejoin.store(true, Ordering::Release);
    }

    fn stop_heartbeat(&mut self) {
        if let Some(task) = self.heartbeat.take() {
            task.abort();
        }
    }

    /// Stops heartbeating and leaves the group (LeaveGroup v3+ names the
    /// member in `members`, older versions in `member_id`).
    pub async fn leave(mut self) -> Result<()> {
        self.stop_heartbeat();
        let mut request = LeaveGroupRequest::default()
            .with_group_id(GroupId(text(&self.group)))
            .with_member_id(text(&self.member_id))
            .with_members(vec![MemberIdentity::default().with_member_id(text(&self.member_id))]);
        let version = self.coordinator.version(ApiKey::LeaveGroup)?;
        if version >= 3 {
            request.member_id = StrBytes::default();
        } else {
            request.members.clear();
        }
        let response: LeaveGroupResponse = self
            .coordinator
            .start(ApiKey::LeaveGroup, version, &request)
            .await?
            .response()
            .await?;
        check(response.error_code, || format!("leaving group {:?}", self.group))
    }
}

/// Sleeps the backoff's next pause; false when `stop` came first.
async fn sleep_unless_stopped(backoff: &mut Backoff, stop: Option<&Stop>) -> bool {
    let Some(stop) = stop else {
        backoff.sleep().await;
        return true;
    };
    let mut stop = stop.clone();
    tokio::select! {
        () = backoff.sleep() => true,
        () = stop.stopped() => false,
    }
}

enum JoinFailure {
    /// Join again at once, as this member id.
    Retry {
        member_id: String,
    },
    Fatal(ClientError),
}

impl From<ClientError> for JoinFailure {
    fn from(error: ClientError) -> Self {
        Self::Fatal(error)
    }
}

/// One JoinGroup + SyncGroup round; starts the new generation's heartbeat.
async fn join_once(
    cluster: &Cluster,
    config: &ConsumerConfig,
    group: &str,
    member_id: &str,
) -> std::result::Result<(Membership, Vec<TopicPartition>), JoinFailure> {
    let coordinator = cluster.coordinator(group).await?;
    let joined = join_group(&coordinator, config, group, member_id).await?;
    let member_id = joined.member_id.to_string();
    let assignments = if joined.leader == joined.member_id {
        assign(cluster, &joined).await?
    } else {
        Vec::new()
    };
    let assigned = sync_group(&coordinator, group, joined.generation_id, &member_id, assignments).await?;
    let rejoin = Arc::new(AtomicBool::new(false));
    let heartbeat = tokio::spawn(heartbeat(
        Arc::clone(&coordinator),
        group.to_owned(),
        member_id.clone(),
        joined.generation_id,
        heartbeat_interval(config.session_timeout_ms),
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

async fn join_group(
    coordinator: &Connection,
    config: &ConsumerConfig,
    group: &str,
    member_id: &str,
) -> std::result::Result<JoinGroupResponse, JoinFailure> {
    let subscription =
        ConsumerProtocolSubscription::default().with_topics(config.topics.iter().map(|t| text(t)).collect());
    let request = JoinGroupRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_session_timeout_ms(config.session_timeout_ms)
        .with_rebalance_timeout_ms(config.rebalance_timeout_ms)
        .with_member_id(text(member_id))
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(text("range"))
            .with_metadata(encode_versioned(&subscription, 0))]);
    let joined: JoinGroupResponse = coordinator.send(ApiKey::JoinGroup, &request).await?;
    let retry_as = match ResponseError::try_from_code(joined.error_code) {
        None => return Ok(joined),
        Some(ResponseError::MemberIdRequired) => joined.member_id.to_string(),
        Some(ResponseError::UnknownMemberId) => String::new(),
        Some(ResponseError::RebalanceInProgress) => member_id.to_owned(),
        Some(error) => {
            return Err(JoinFailure::Fatal(ClientError::broker(
                format!("joining group {group:?}"),
                error,
            )))
        }
    };
    Err(JoinFailure::Retry { member_id: retry_as })
}

/// SyncGroup: hands the leader's assignments in, this member's out.
async fn sync_group(
    coordinator: &Connection,
    group: &str,
    generation: i32,
    member_id: &str,
    assignments: Vec<SyncGroupRequestAssignment>,
) -> std::result::Result<Vec<TopicPartition>, JoinFailure> {
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_generation_id(generation)
        .with_member_id(text(member_id))
        .with_assignments(assignments);
    let synced: SyncGroupResponse = coordinator.send(ApiKey::SyncGroup, &sync).await?;
    let retry_as = match ResponseError::try_from_code(synced.error_code) {
        None => return Ok(decode_assignment(&synced.assignment)?),
        Some(ResponseError::UnknownMemberId) => String::new(),
        Some(ResponseError::RebalanceInProgress | ResponseError::IllegalGeneration) => member_id.to_owned(),
        Some(error) => {
            return Err(JoinFailure::Fatal(ClientError::broker(
                format!("syncing group {group:?}"),
                error,
            )))
        }
    };
    Err(JoinFailure::Retry { member_id: retry_as })
}

/// The leader's job: range-assign every member's subscribed partitions.
async fn assign(cluster: &Cluster, joined: &JoinGroupResponse) -> Result<Vec<SyncGroupRequestAssignment>> {
    let members: Vec<(String, Vec<String>)> = joined
        .members
        .iter()
        .map(|m| (m.member_id.to_string(), decode_subscription(&m.metadata)))
        .collect();
    let mut topics: Vec<String> = members.iter().flat_map(|(_, t)| t.clone()).collect();
    topics.sort();
    topics.dedup();
    cluster.refresh(&topics, false).await?;
    let mut counts = HashMap::new();
    for topic in &topics {
        if let Ok(metadata) = cluster.topic(topic, false).await {
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

/// How often a member with this session timeout heartbeats.
fn heartbeat_interval(session_timeout_ms: i32) -> Duration {
    let interval_ms = (session_timeout_ms / 3).clamp(HEARTBEAT_INTERVAL_MS_MIN, HEARTBEAT_INTERVAL_MS_MAX);
    Duration::from_millis(interval_ms as u64)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_goes_every_third_of_the_session_within_bounds() {
        assert_eq!(heartbeat_interval(10_000), Duration::from_millis(3_000));
        assert_eq!(heartbeat_interval(6_000), Duration::from_millis(2_000));
        assert_eq!(heartbeat_interval(30_000), Duration::from_millis(3_000));
        assert_eq!(heartbeat_interval(90), Duration::from_millis(100));
    }
}
