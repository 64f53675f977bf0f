//! The group coordinator through its public API: joining, leader
//! assignment, session expiry, the member-id handshake, commit checks, and
//! membership and offsets surviving a reopen of the store.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use relay_broker::group::coordinator::{Coordinator, GroupSettings, JoinRequest};
use relay_broker::group::offset_store::OffsetStore;
use relay_broker::group::records::CommittedOffset;
use relay_broker::log::{FaultInjector, LogConfig};
use std::sync::Arc;
use std::time::Duration;

fn settings() -> GroupSettings {
    GroupSettings {
        session_timeout_ms_min: 100,
        session_timeout_ms_max: 60_000,
        initial_rebalance_delay: Duration::ZERO,
    }
}

fn open(dir: &std::path::Path) -> Arc<Coordinator> {
    let store = OffsetStore::open(dir, &LogConfig::default(), FaultInjector::default()).unwrap();
    Coordinator::new(store, settings())
}

fn join(member_id: &str, session_timeout_ms: i32) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        member_id: member_id.into(),
        group_instance_id: None,
        client_id: "test".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms,
        rebalance_timeout_ms: 2_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from(format!("subscription of {member_id}")))],
        require_known_member_id: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_join_and_get_the_leaders_assignments() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = open(dir.path());
    let first = coordinator.join(join("", 10_000)).await;
    assert_eq!((first.error, first.generation, first.members.len()), (None, 1, 1));
    let leader = first.member_id.clone();
    // A second member makes the group rebalance; the first must rejoin too.
    let (second, rejoin) = tokio::join!(
        coordinator.join(join("", 10_000)),
        coordinator.join(join(&leader, 10_000))
    );
    assert_eq!((second.generation, rejoin.generation), (2, 2));
    assert_eq!(rejoin.leader, leader, "the leader stays while it is a member");
    assert_eq!(rejoin.members.len(), 2, "the leader sees every subscription");
    assert!(second.members.is_empty(), "followers see none");
    let follower = second.member_id.clone();
    let assignments = vec![
        (leader.clone(), Bytes::from_static(b"p0,p1")),
        (follower.clone(), Bytes::from_static(b"p2")),
    ];
    let (follower_sync, leader_sync) = tokio::join!(
        coordinator.sync("g", 2, &follower, Vec::new()),
        coordinator.sync("g", 2, &leader, assignments)
    );
    assert_eq!(follower_sync.assignment, Bytes::from_static(b"p2"));
    assert_eq!(leader_sync.assignment, Bytes::from_static(b"p0,p1"));
    assert_eq!(coordinator.heartbeat("g", 2, &follower), None);
    assert_eq!(
        coordinator.heartbeat("g", 1, &follower),
        Some(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        coordinator.heartbeat("g", 2, "stranger"),
        Some(ResponseError::UnknownMemberId)
    );
    assert_eq!(coordinator.describe("g").state, "Stable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_member_expires_and_the_rest_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = open(dir.path());
    let a = coordinator.join(join("", 300)).await.member_id;
    let (b, a_again) = tokio::join!(coordinator.join(join("", 300)), coordinator.join(join(&a, 300)));
    let b = b.member_id;
    assert_eq!(a_again.generation, 2);
    let (_, _) = tokio::join!(
        coordinator.sync("g", 2, &b, vec![]),
        coordinator.sync("g", 2, &a, vec![])
    );
    // a heartbeats every 60 ms, b never does: after its 300 ms session b is
    // removed and a is told to rejoin.
    let mut answers = Vec::new();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        answers.push(coordinator.heartbeat("g", 2, &a));
        coordinator.tick();
    }
    assert_eq!(answers[0], None);
    assert_eq!(answers[9], Some(ResponseError::RebalanceInProgress), "{answers:?}");
    assert_eq!(coordinator.heartbeat("g", 2, &b), Some(ResponseError::UnknownMemberId));
    let rejoined = coordinator.join(join(&a, 300)).await;
    assert_eq!((rejoined.generation, rejoined.members.len()), (3, 1));
}

#[tokio::test]
async fn new_members_first_get_their_id() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = open(dir.path());
    let first = coordinator
        .join(JoinRequest {
            require_known_member_id: true,
            ..join("", 10_000)
        })
        .await;
    assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
    assert!(first.member_id.starts_with("test-"));
    let joined = coordinator
        .join(JoinRequest {
            require_known_member_id: true,
            ..join(&first.member_id, 10_000)
        })
        .await;
    assert_eq!((joined.error, joined.member_id), (None, first.member_id));
    let unknown = coordinator.join(join("made-up", 10_000)).await;
    assert_eq!(unknown.error, Some(ResponseError::UnknownMemberId));
    let too_short = coordinator.join(join("", 10)).await;
    assert_eq!(too_short.error, Some(ResponseError::InvalidSessionTimeout));
}

#[tokio::test]
async fn commits_are_checked_against_membership() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = open(dir.path());
    assert_eq!(
        coordinator.check_commit("g", -1, ""),
        None,
        "a simple consumer may commit to an empty group"
    );
    let member = coordinator.join(join("", 10_000)).await;
    assert_eq!(
        coordinator.check_commit("g", -1, ""),
        Some(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        coordinator.check_commit("g", 0, &member.member_id),
        Some(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        coordinator.check_commit("g", 1, &member.member_id),
        Some(ResponseError::RebalanceInProgress)
    );
    coordinator
        .sync(
            "g",
            1,
            &member.member_id,
            vec![(member.member_id.clone(), Bytes::from_static(b"all"))],
        )
        .await;
    assert_eq!(coordinator.check_commit("g", 1, &member.member_id), None);
}

#[tokio::test]
async fn membership_and_offsets_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let member = {
        let coordinator = open(dir.path());
        let member = coordinator.join(join("", 10_000)).await.member_id;
        coordinator
            .sync(
                "g",
                1,
                &member,
                vec![(member.clone(), Bytes::from_static(b"assignment"))],
            )
            .await;
        let offset = CommittedOffset {
            offset: 42,
            leader_epoch: 0,
            commit_timestamp_ms: 1,
            metadata: "meta".into(),
        };
        coordinator
            .commit_blocking("g", &[("events".into(), 3, offset)])
            .unwrap();
        // The SyncGroup answer came after the membership was stored.
        assert!(
            coordinator
                .store()
                .stored_groups()
                .iter()
                .any(|group| group.group == "g" && group.members.iter().any(|m| m.assignment[..] == b"assignment"[..])),
            "membership announced before it was stored"
        );
        member
    };
    let coordinator = open(dir.path());
    let description = coordinator.describe("g");
    assert_eq!(description.state, "Stable");
    assert_eq!(description.members.len(), 1);
    assert_eq!(description.members[0].0, member);
    assert_eq!(description.members[0].5, Bytes::from_static(b"assignment"));
    assert_eq!(
        coordinator.heartbeat("g", 1, &member),
        None,
        "the member carries on after a restart"
    );
    let stored = coordinator.store().committed("g", "events", 3).unwrap();
    assert_eq!((stored.offset, stored.metadata.as_str()), (42, "meta"));
    assert_eq!(
        coordinator.list(),
        vec![("g".to_owned(), "consumer".to_owned(), "Stable")]
    );
}
