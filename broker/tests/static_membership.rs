//! Static membership (KIP-345) and how a rebalance waits, through the
//! coordinator's public API: a restarted static member keeps its assignment
//! without a rebalance, a duplicate instance id is fenced, LeaveGroup by
//! instance id, session expiry, restart of the broker; the join waiting for
//! members answered MEMBER_ID_REQUIRED, and the initial rebalance delay.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use relay_broker::group::coordinator::{Coordinator, GroupSettings, JoinRequest};
use relay_broker::group::offset_store::OffsetStore;
use relay_broker::group::static_member::MemberRef;
use relay_broker::log::{FaultInjector, LogConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A coordinator on `dir` whose ticker never runs.
fn open_unticked(dir: &std::path::Path, initial_rebalance_delay: Duration) -> Arc<Coordinator> {
    let store = OffsetStore::open(dir, &LogConfig::default(), FaultInjector::default()).unwrap();
    let settings = GroupSettings {
        session_timeout_ms_min: 100,
        session_timeout_ms_max: 60_000,
        initial_rebalance_delay,
    };
    Coordinator::new(store, settings)
}

/// A coordinator on `dir` with its ticker running, as the broker runs it.
fn open_with_delay(dir: &std::path::Path, initial_rebalance_delay: Duration) -> Arc<Coordinator> {
    let coordinator = open_unticked(dir, initial_rebalance_delay);
    let ticking = Arc::downgrade(&coordinator);
    tokio::spawn(async move {
        while let Some(coordinator) = ticking.upgrade() {
            coordinator.tick();
            drop(coordinator);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    coordinator
}

/// Members started together share a generation: a short initial delay.
fn open(dir: &std::path::Path) -> Arc<Coordinator> {
    open_with_delay(dir, Duration::from_millis(200))
}

fn join(member_id: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        member_id: member_id.into(),
        group_instance_id: instance.map(str::to_owned),
        client_id: "test".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 5_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"topics: events"))],
        require_known_member_id: true,
    }
}

fn member<'a>(id: &'a str, instance: &'a str) -> MemberRef<'a> {
    MemberRef {
        id,
        instance: Some(instance),
    }
}

/// Static members "a" and "b" in a stable generation 1, assigned "pa" and
/// "pb"; their member ids, and the leader's.
async fn stable_pair(coordinator: &Coordinator) -> (String, String, String) {
    let (a, b) = tokio::join!(
        coordinator.join(join("", Some("a"))),
        coordinator.join(join("", Some("b")))
    );
    assert_eq!(
        (a.error, b.error),
        (None, None),
        "static members need no MEMBER_ID_REQUIRED"
    );
    assert_eq!((a.generation, b.generation), (1, 1));
    let leader = a.leader.clone();
    let id_of = |instance: &str| {
        let members = coordinator.describe("g").members;
        members
            .into_iter()
            .find(|m| m.1.as_deref() == Some(instance))
            .unwrap()
            .0
    };
    let (a, b) = (id_of("a"), id_of("b"));
    let assignments = vec![
        (a.clone(), Bytes::from_static(b"pa")),
        (b.clone(), Bytes::from_static(b"pb")),
    ];
    let (sync_a, sync_b) = tokio::join!(
        coordinator.sync("g", 1, member(&a, "a"), assignments.clone()),
        coordinator.sync("g", 1, member(&b, "b"), assignments)
    );
    assert_eq!(
        (sync_a.assignment, sync_b.assignment),
        (Bytes::from_static(b"pa"), Bytes::from_static(b"pb"))
    );
    (a, b, leader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_static_member_keeps_its_assignment_without_a_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = open(dir.path());
    let (a, b, _) = stable_pair(&coordinator).await;
    // "b" restarts: a new process, an empty member id, the same instance id.
    let rejoined = coordinator.join(join("", Some("b"))).await;
    assert_eq!(rejoined.error, None);
    assert_eq!(rejoined.generation, 1, "no new generation");
    assert_ne!(rejoined.member_id, b, "a new member id");
    assert!(rejoined.members.is_empty());
    assert_ne!(
        rejoined.leader, rejoined.member_id,
        "it does not lead, so it does not assign again"
    );
    let sync = coordinator
        .sync("g", 1, member(&rejoined.member_id, "b"), Vec::new())
        .await;
    assert_eq!((sync.error, sync.assignment), (None, Bytes::from_static(b"pb")));
    assert_eq!(
        coordinator.heartbeat("g", 1, member(&a, "a")),
        None,
        "the other member is not disturbed"
    );
    assert_eq!(coordinator.describe("g").state, "Stable");
    // The process it replaced is fenced wherever it shows up.
    assert_eq!(
        coordinator.heartbeat("g", 1, member(&b, "b")),
        Some(ResponseError::FencedInstanceId)
    );
    assert_eq!(
        coordinator.check_commit("g", 1, member(&b, "b")),
        Some(ResponseError::FencedInstanceId)
    );
    let stale = coordinator.sync("g", 1, member(&b, "b"), Vec::new()).await;
    assert_eq!(stale.error, Some(ResponseError::FencedInstanceId));
    let stale_join = coordinator.join(join(&b, Some("b"))).await;
    assert_eq!(stale_join.error, Some(ResponseError::FencedInstanceId));
    assert_eq!(
        coordinator.heartbeat("g", 1, member(&a, "no-such-instance")),
        Some(ResponseError::UnknownMemberId)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_static_leader_keeps_leading_without_reassigning() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = open(dir.path());
    let (a, _, leader) = stable_pair(&coordinator).await;
    let (instance, assignment) = match leader == a {
        true => ("a", Bytes::from_static(b"pa")),
        false => ("b", Bytes::from_static(b"pb")),
    };
    let rejoined = coordinator.join(join("", Some(instance))).await;
    assert_eq!(rejoined.generation, 1);
    assert_eq!(
        rejoined.leader, leader,
        "the old leader id is shown, so the new one does not assign"
    );
    assert!(rejoined.members.is_empty());
    let sync = coordinator
        .sync("g", 1, member(&rejoined.member_id, instance), Vec::new())
        .await;
    assert_eq!(sync.assignment, assignment);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_leaves_by_instance_id_and_expires_by_session() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = open(dir.path());
    let (a, b, _) = stable_pair(&coordinator).await;
    let answers = coordinator.leave(
        "g",
        &[
            ("wrong-id".into(), Some("b".into())),
            (String::new(), Some("zz".into())),
        ],
    );
    assert_eq!(
        answers,
        vec![
            Some(ResponseError::FencedInstanceId),
            Some(ResponseError::UnknownMemberId)
        ]
    );
    assert_eq!(
        coordinator.describe("g").state,
        "Stable",
        "a refused leave changes nothing"
    );
    // An admin's RemoveMembersFromConsumerGroup names the instance only.
    assert_eq!(coordinator.leave("g", &[(String::new(), Some("b".into()))]), vec![None]);
    assert_eq!(
        coordinator.heartbeat("g", 1, member(&a, "a")),
        Some(ResponseError::RebalanceInProgress)
    );
    assert_eq!(
        coordinator.heartbeat("g", 1, member(&b, "b")),
        Some(ResponseError::UnknownMemberId)
    );
    let alone = coordinator.join(join(&a, Some("a"))).await;
    assert_eq!((alone.generation, alone.members.len()), (2, 1));
    coordinator
        .sync("g", 2, member(&a, "a"), vec![(a.clone(), Bytes::new())])
        .await;
    // A static member is still removed when its session runs out.
    let short = JoinRequest {
        session_timeout_ms: 200,
        ..join("", Some("c"))
    };
    let (c, a_again) = tokio::join!(coordinator.join(short), coordinator.join(join(&a, Some("a"))));
    assert_eq!((c.generation, a_again.generation), (3, 3));
    coordinator.sync("g", 3, member(&a, "a"), Vec::new()).await;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        coordinator.heartbeat("g", 3, member(&a, "a"));
    }
    assert!(!coordinator
        .describe("g")
        .members
        .iter()
        .any(|m| m.1.as_deref() == Some("c")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_members_are_known_again_after_a_broker_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b = {
        let coordinator = open(dir.path());
        stable_pair(&coordinator).await.1
    };
    let coordinator = open(dir.path());
    assert_eq!(coordinator.heartbeat("g", 1, member(&b, "b")), None);
    let rejoined = coordinator.join(join("", Some("b"))).await;
    assert_eq!(rejoined.generation, 1, "the restored group keeps its generation");
    let sync = coordinator
        .sync("g", 1, member(&rejoined.member_id, "b"), Vec::new())
        .await;
    assert_eq!(sync.assignment, Bytes::from_static(b"pb"));
    // The new member id was stored before it was announced.
    drop(coordinator);
    let coordinator = open(dir.path());
    assert_eq!(coordinator.heartbeat("g", 1, member(&rejoined.member_id, "b")), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_whose_rejoin_changes_the_protocol_rebalances_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = open(dir.path());
    let solo = coordinator.join(join("", Some("solo"))).await;
    let assignment = vec![(solo.member_id.clone(), Bytes::from_static(b"all"))];
    coordinator
        .sync("g", 1, member(&solo.member_id, "solo"), assignment)
        .await;
    let changed = JoinRequest {
        protocols: vec![
            ("roundrobin".into(), Bytes::from_static(b"x")),
            ("range".into(), Bytes::from_static(b"topics: events")),
        ],
        ..join("", Some("solo"))
    };
    let rejoined = coordinator.join(changed).await;
    assert_eq!(
        (rejoined.error, rejoined.generation, rejoined.protocol_name.as_deref()),
        (None, 2, Some("roundrobin")),
        "the group's protocol changes, so its leader must assign again"
    );
    assert_eq!(rejoined.leader, rejoined.member_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_waits_for_members_just_given_their_id() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = open_with_delay(dir.path(), Duration::ZERO);
    let first = coordinator.join(join("", None)).await;
    let second = coordinator.join(join("", None)).await;
    assert_eq!(
        (first.error, second.error),
        (
            Some(ResponseError::MemberIdRequired),
            Some(ResponseError::MemberIdRequired)
        )
    );
    let (one, two) = tokio::join!(coordinator.join(join(&first.member_id, None)), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        coordinator.join(join(&second.member_id, None)).await
    });
    assert_eq!(
        (one.generation, two.generation, one.members.len() + two.members.len()),
        (1, 1, 2),
        "both land in the first generation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_id_never_used_stops_holding_the_rebalance_after_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = open_with_delay(dir.path(), Duration::ZERO);
    let short = |id: &str| JoinRequest {
        session_timeout_ms: 300,
        ..join(id, None)
    };
    let first = coordinator.join(short("")).await;
    let _abandoned = coordinator.join(short("")).await;
    let started = Instant::now();
    let joined = coordinator.join(short(&first.member_id)).await;
    assert_eq!((joined.error, joined.generation), (None, 1));
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_started_together_share_the_first_generation_after_the_initial_delay() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = open_with_delay(dir.path(), Duration::from_millis(400));
    let started = Instant::now();
    let statics = |instance: &'static str| coordinator.join(join("", Some(instance)));
    // The second comes 300 ms into the first 400 ms step: one more step.
    let (a, b) = tokio::join!(statics("a"), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        statics("b").await
    });
    let waited = started.elapsed();
    assert_eq!((a.generation, b.generation), (1, 1));
    assert!(
        waited >= Duration::from_millis(750),
        "one step, then another: {waited:?}"
    );
    assert!(waited < Duration::from_millis(2_000), "{waited:?}");
}

/// librdkafka's admin test deletes a group of closed static members right
/// at their session timeout: the member must be gone then, not at the next
/// tick of the ticker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_whose_sessions_ran_out_is_empty_for_delete_and_describe_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = open_unticked(dir.path(), Duration::ZERO);
    let short = |group: &str| JoinRequest {
        group_id: group.into(),
        session_timeout_ms: 200,
        ..join("", Some("a"))
    };
    for group in ["g", "h"] {
        let joined = coordinator.join(short(group)).await;
        let assignment = vec![(joined.member_id.clone(), Bytes::new())];
        coordinator
            .sync(group, 1, member(&joined.member_id, "a"), assignment)
            .await;
    }
    assert_eq!(
        coordinator.delete_groups(&["g".into()]),
        vec![Some(ResponseError::NonEmptyGroup)]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(coordinator.delete_groups(&["g".into()]), vec![None]);
    assert_eq!(coordinator.describe("h").state, "Empty");
}
