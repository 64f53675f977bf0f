use super::*;
use crate::log::{FaultInjector, LogConfig};

const GROUP: &str = "g";

fn open(dir: &std::path::Path, faults: &FaultInjector) -> Arc<Coordinator> {
    // `[broker.log]` defaults: fsync = "always".
    let store = OffsetStore::open(dir, &LogConfig::default(), faults.clone()).unwrap();
    Coordinator::new(
        store,
        GroupSettings {
            session_timeout_ms_min: 100,
            session_timeout_ms_max: 60_000,
            initial_rebalance_delay: Duration::ZERO,
        },
    )
}

fn join_request(member_id: &str) -> JoinRequest {
    JoinRequest {
        group_id: GROUP.into(),
        member_id: member_id.into(),
        group_instance_id: None,
        client_id: "test".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 2_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"subscription"))],
        require_known_member_id: false,
    }
}

fn stored(coordinator: &Coordinator) -> Option<StoredGroup> {
    coordinator
        .store()
        .stored_groups()
        .into_iter()
        .find(|group| group.group == GROUP)
}

fn stored_assignment(coordinator: &Coordinator, member_id: &str) -> Option<Bytes> {
    stored(coordinator)?
        .members
        .into_iter()
        .find(|member| member.member_id == member_id)
        .map(|member| member.assignment)
}

#[tokio::test]
async fn a_membership_is_stored_before_it_is_announced() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = open(dir.path(), &FaultInjector::default());
    let joined = coordinator.join(join_request("")).await;
    assert_eq!((joined.error, joined.generation), (None, 1));
    // Read at once, no polling: the answer came after the store returned.
    let generation = stored(&coordinator).map(|group| group.generation);
    assert_eq!(generation, Some(1), "generation 1 was announced before it was stored");

    let member = joined.member_id;
    let assignment = Bytes::from_static(b"p0");
    let synced = coordinator
        .sync(GROUP, 1, &member, vec![(member.clone(), assignment.clone())])
        .await;
    assert_eq!((synced.error, &synced.assignment), (None, &assignment));
    assert_eq!(
        stored_assignment(&coordinator, &member),
        Some(assignment),
        "the assignment was announced before it was stored"
    );
}

#[tokio::test]
async fn a_generation_that_cannot_be_stored_is_not_announced() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::default();
    let coordinator = open(dir.path(), &faults);
    faults.fail_next_fsyncs(1);
    let joined = coordinator.join(join_request("")).await;
    assert_eq!((joined.error, joined.generation), (Some(MEMBERSHIP_NOT_STORED), -1));
    assert_eq!(stored(&coordinator), None);
}

#[tokio::test]
async fn assignments_that_cannot_be_stored_are_not_announced() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::default();
    let coordinator = open(dir.path(), &faults);
    let member = coordinator.join(join_request("")).await.member_id;
    faults.fail_next_fsyncs(1);
    let synced = coordinator
        .sync(GROUP, 1, &member, vec![(member.clone(), Bytes::from_static(b"p0"))])
        .await;
    assert_eq!(synced.error, Some(MEMBERSHIP_NOT_STORED));
    assert!(synced.assignment.is_empty());
    assert_eq!(stored_assignment(&coordinator, &member), Some(Bytes::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_syncing_after_the_leader_gets_its_stored_assignment() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = open(dir.path(), &FaultInjector::default());
    let leader = coordinator.join(join_request("")).await.member_id;
    let (follower, rejoined) = tokio::join!(
        coordinator.join(join_request("")),
        coordinator.join(join_request(&leader))
    );
    assert_eq!((follower.generation, rejoined.generation), (2, 2));
    let follower = follower.member_id;
    let assignments = vec![
        (leader.clone(), Bytes::from_static(b"p0")),
        (follower.clone(), Bytes::from_static(b"p1")),
    ];
    let leader_sync = coordinator.sync(GROUP, 2, &leader, assignments).await;
    assert_eq!(leader_sync.assignment, Bytes::from_static(b"p0"));
    // The group is Stable now: the follower's answer comes from memory,
    // once the store holds it.
    let follower_sync = coordinator.sync(GROUP, 2, &follower, Vec::new()).await;
    assert_eq!(
        (follower_sync.error, follower_sync.assignment),
        (None, Bytes::from_static(b"p1"))
    );
    assert_eq!(
        stored_assignment(&coordinator, &follower),
        Some(Bytes::from_static(b"p1"))
    );
}
