//! Scale-out of `relay load`: two and three members of one group share a
//! six-partition topic and one warehouse (one SQLite file, or PostgreSQL).
//!
//! - While events keep arriving, members join, die (`kill -9`), leave
//!   (SIGTERM) and come back, so the group rebalances again and again with
//!   batches in flight.
//! - A member paused (SIGSTOP) past its session while it holds a batch comes
//!   back after the live members took its partitions over and committed
//!   there: the compare-and-set on `relay_offsets` fences its batch, and
//!   only that one.
//!
//! Either way the warehouse ends with every event exactly once, nothing
//! rejected, and every partition's next offset at its end offset
//! (`proto-spec/LOADER.md`, "One micro-batch").

#[path = "support/loader_group.rs"]
mod loader_group;
mod support;

use loader_group::{
    assert_loaded_exactly_once, create_topic, end_offsets, evidence, next_offsets, produce, stored_total,
    transaction_held, wait_for, write_config, Member, Producer, PARTITIONS,
};
use std::path::Path;
use std::time::Duration;
use support::postgres::Postgres;
use support::warehouse::Warehouse;
use support::BrokerProcess;

/// While the membership changes, a round of events every 100 ms, about
/// 2,500 a second: a member owning two or three partitions gets fewer than
/// `batch_records_max` (500) per round, so it nearly always holds a batch
/// waiting to close when a rebalance comes.
const ROUND_EVENTS: u64 = 250;
const ROUND_INTERVAL: Duration = Duration::from_millis(100);
/// Records a new generation loads before the membership changes again.
const LOADED_PER_GENERATION: i64 = 2_000;
/// A rebalance after a join, a leave or an expired session (10 s) completes well within this.
const REBALANCE_MAX: Duration = Duration::from_secs(30);

/// Whether each member's last assignment has `partitions` partitions.
fn assigned(members: &[&Member], partitions: usize) -> bool {
    members.iter().all(|m| m.last_assignment() == Some(partitions))
}

fn rebalances(broker: &BrokerProcess) -> usize {
    broker.log().matches("group rebalanced").count()
}

fn expired_sessions(broker: &BrokerProcess) -> usize {
    broker.log().matches("member session expired").count()
}

/// Waits until `members` share the partitions evenly, then until the group
/// stored `LOADED_PER_GENERATION` more records: the new generation loads.
fn wait_for_generation(
    what: &str,
    warehouse: &Warehouse,
    broker: &BrokerProcess,
    members: &[&Member],
    everyone: &[&Member],
) {
    let evidence = || evidence(warehouse, broker, everyone);
    let partitions = PARTITIONS as usize / members.len();
    wait_for(what, REBALANCE_MAX, evidence, || assigned(members, partitions));
    let from = stored_total(warehouse);
    wait_for(what, REBALANCE_MAX, evidence, || {
        stored_total(warehouse) >= from + LOADED_PER_GENERATION
    });
}

fn members_joining_dying_and_leaving_load_every_event_once(warehouse: Warehouse, dir: &Path) {
    let broker = BrokerProcess::start(dir, "");
    create_topic(&broker);
    let config = write_config(dir, &warehouse);
    let mut a = Member::start(&broker, &config, dir, "a");
    let mut b = Member::start(&broker, &config, dir, "b");
    let producer = Producer::start(&broker, dir, 0, ROUND_EVENTS, ROUND_INTERVAL);
    wait_for_generation("a and b loading", &warehouse, &broker, &[&a, &b], &[&a, &b]);

    let c = Member::start(&broker, &config, dir, "c");
    let everyone = [&a, &b, &c];
    wait_for_generation("c joined a and b", &warehouse, &broker, &everyone, &everyone);

    let expired = expired_sessions(&broker);
    a.kill9();
    let everyone = [&a, &b, &c];
    wait_for(
        "a's session expired",
        REBALANCE_MAX,
        || evidence(&warehouse, &broker, &everyone),
        || expired_sessions(&broker) > expired,
    );
    wait_for_generation("b and c took a's partitions", &warehouse, &broker, &[&b, &c], &everyone);

    assert_eq!(b.terminate(), Some(0), "b stops cleanly\n{}", b.log());
    wait_for_generation("c alone", &warehouse, &broker, &[&c], &[&a, &b, &c]);

    a.restart();
    wait_for_generation("a back with c", &warehouse, &broker, &[&a, &c], &[&a, &b, &c]);
    b.restart();
    let everyone = [&a, &b, &c];
    wait_for_generation("b back with a and c", &warehouse, &broker, &everyone, &everyone);

    let events = producer.stop();
    assert_loaded_exactly_once(&warehouse, &broker, &everyone, events as i64);
    // Each generation starts after the last one's members stopped loading:
    // two live members never owned a partition at once.
    let fenced: Vec<usize> = everyone.iter().map(|m| m.logged("batch fenced")).collect();
    assert_eq!(fenced, [0, 0, 0], "{}", evidence(&warehouse, &broker, &everyone));
    // At least: a and b starting (one generation or two), c joining, a
    // expiring, b leaving, a back, b back.
    let rebalanced = rebalances(&broker);
    assert!(rebalanced >= 6, "{rebalanced} rebalances\n{}", broker.log());
    eprintln!("{events} events loaded exactly once across {rebalanced} rebalances");
}

#[test]
fn sqlite_members_joining_dying_and_leaving_load_every_event_once() {
    let dir = tempfile::tempdir().unwrap();
    members_joining_dying_and_leaving_load_every_event_once(Warehouse::sqlite(dir.path()), dir.path());
}

#[test]
fn postgres_members_joining_dying_and_leaving_load_every_event_once() {
    let Some(postgres) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    members_joining_dying_and_leaving_load_every_event_once(Warehouse::Postgres(postgres), dir.path());
}

/// The fencing test's rounds: the first is loaded by all three members
/// before anything else; a small one (100 records a partition, fewer than
/// `batch_records_max` for any member) each member holds as a batch until its
/// next fetch waits out `fetch_wait_ms_max` (500 ms); a burst only the live
/// members load while one is paused; and the last, loaded by all three again.
const FIRST_ROUND: u64 = 6_000;
const SMALL_ROUND: u64 = 600;
const BURST: u64 = 30_000;
const LAST_ROUND: u64 = 6_000;
/// How long after the small round is acknowledged the member is paused: its
/// fetch returned the records long before, and its batch closes only about
/// 500 ms after them.
const PAUSE_AFTER_ROUND: Duration = Duration::from_millis(150);
const PAUSE_ATTEMPTS_MAX: usize = 5;

/// Pauses `member` at a moment it holds no warehouse transaction: one frozen
/// inside its transaction would hold what the others need to write until it
/// resumed, and its own commit would then win (fencing the others instead).
fn pause_outside_a_transaction(member: &Member, warehouse: &Warehouse) {
    for attempt in 1..=20u64 {
        member.pause();
        if !transaction_held(warehouse) {
            return;
        }
        member.resume();
        std::thread::sleep(Duration::from_millis(30 * attempt));
    }
    panic!("{} was inside a transaction at each of 20 pauses", member.name);
}

/// Sends a small round and pauses `member` while it holds its share as a
/// batch not yet written; returns the member's partitions with the offsets
/// stored for them. `produced` is the end of the events sent so far.
fn pause_holding_a_batch(
    member: &Member,
    everyone: &[&Member],
    warehouse: &Warehouse,
    broker: &BrokerProcess,
    dir: &Path,
    produced: &mut u64,
) -> Vec<(i32, i64)> {
    for _ in 0..PAUSE_ATTEMPTS_MAX {
        produce(&broker.address, dir, *produced..*produced + SMALL_ROUND);
        *produced += SMALL_ROUND;
        std::thread::sleep(PAUSE_AFTER_ROUND);
        pause_outside_a_transaction(member, warehouse);
        // The live members write their share; what stays behind is the paused one's.
        let ends = end_offsets(broker);
        let mut behind = Vec::new();
        wait_for(
            "the live members wrote the small round",
            REBALANCE_MAX,
            || evidence(warehouse, broker, everyone),
            || {
                let stored = next_offsets(warehouse);
                behind = ends
                    .iter()
                    .filter(|(p, end)| stored.get(p) != Some(end))
                    .map(|(p, _)| (*p, stored[p]))
                    .collect();
                behind.len() <= PARTITIONS as usize / everyone.len()
            },
        );
        if !behind.is_empty() {
            return behind;
        }
        eprintln!("{} wrote the small round before it was paused; again", member.name);
        member.resume();
    }
    panic!(
        "{} wrote each small round before it was paused\n{}",
        member.name,
        evidence(warehouse, broker, everyone)
    );
}

fn a_paused_member_is_fenced_by_the_live_members(warehouse: Warehouse, dir: &Path) {
    let broker = BrokerProcess::start(dir, "");
    create_topic(&broker);
    let config = write_config(dir, &warehouse);
    let a = Member::start(&broker, &config, dir, "a");
    let b = Member::start(&broker, &config, dir, "b");
    let c = Member::start(&broker, &config, dir, "c");
    let everyone = [&a, &b, &c];
    let show = || evidence(&warehouse, &broker, &everyone);
    produce(&broker.address, dir, 0..FIRST_ROUND);
    let mut produced = FIRST_ROUND;
    wait_for("three members loaded the first round", REBALANCE_MAX, show, || {
        assigned(&everyone, 2) && stored_total(&warehouse) == FIRST_ROUND as i64
    });

    let expired = expired_sessions(&broker);
    let held = pause_holding_a_batch(&b, &everyone, &warehouse, &broker, dir, &mut produced);
    produce(&broker.address, dir, produced..produced + BURST);
    produced += BURST;
    wait_for("b's session expired", REBALANCE_MAX, show, || {
        expired_sessions(&broker) > expired
    });
    wait_for("a and c own every partition", REBALANCE_MAX, show, || {
        assigned(&[&a, &c], 3)
    });
    wait_for("a and c committed past b's batch", REBALANCE_MAX, show, || {
        let stored = next_offsets(&warehouse);
        held.iter().all(|(p, at)| stored[p] > *at)
    });

    let joined = b.logged("joined group");
    b.resume();
    wait_for("b's batch fenced", REBALANCE_MAX, show, || {
        b.logged("batch fenced") >= 1
    });
    let log = b.log();
    let fenced = log.lines().find(|l| l.contains("batch fenced")).unwrap();
    assert!(
        held.iter()
            .any(|(p, at)| fenced.contains(&format!("partition={p} expected=Some({at})"))),
        "the fenced batch is the one b held for {held:?} (partition, stored offset)\n{fenced}"
    );
    wait_for("b back in the group", REBALANCE_MAX, show, || {
        b.logged("joined group") > joined && assigned(&everyone, 2)
    });
    produce(&broker.address, dir, produced..produced + LAST_ROUND);
    produced += LAST_ROUND;

    assert_loaded_exactly_once(&warehouse, &broker, &everyone, produced as i64);
    assert_eq!(
        (
            a.logged("batch fenced"),
            b.logged("batch fenced"),
            c.logged("batch fenced")
        ),
        (0, 1, 0),
        "only the paused member's batch is fenced\n{}",
        show()
    );
}

#[test]
fn sqlite_a_paused_member_is_fenced_by_the_live_members() {
    let dir = tempfile::tempdir().unwrap();
    a_paused_member_is_fenced_by_the_live_members(Warehouse::sqlite(dir.path()), dir.path());
}

#[test]
fn postgres_a_paused_member_is_fenced_by_the_live_members() {
    let Some(postgres) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    a_paused_member_is_fenced_by_the_live_members(Warehouse::Postgres(postgres), dir.path());
}
