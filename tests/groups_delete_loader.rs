//! `relay groups delete` of a loader's group through the `relay` binary
//! against `relay broker`: refused without `--force` (naming why: the
//! warehouse keeps the position, the broker's copy feeds lag, status and
//! retention protection), deleted with it; a group with live members is
//! refused saying who is in it, watched by a confluent-kafka (librdkafka)
//! member: refused while it is in, deleted once it closed, and gone from
//! what librdkafka's AdminClient lists.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use support::warehouse::Warehouse;
use support::{
    python, python_script, relay_binary, relay_client, run_with_timeout, succeeded as ok, wait_until, BrokerProcess,
    RelayProcess,
};

fn relay(broker: &BrokerProcess, args: &[&str]) -> Output {
    relay_client(broker, args, Duration::from_secs(120))
}

fn produce(broker: &BrokerProcess, dir: &Path, topic: &str, lines: usize) {
    let file = dir.join(format!("{topic}.jsonl"));
    let text: String = (0..lines).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    std::fs::write(&file, text).unwrap();
    ok(relay(broker, &["produce", "--topic", topic, file.to_str().unwrap()]));
}

fn groups(broker: &BrokerProcess) -> String {
    ok(relay(broker, &["groups", "list"]))
}

#[test]
fn a_loaders_group_is_kept_without_force_and_a_live_one_names_its_members() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    produce(&broker, dir.path(), "matches", 30);
    let warehouse = Warehouse::sqlite(dir.path());
    let url = warehouse.url();
    let load = |group: &str| -> Vec<String> {
        [
            "load",
            "--broker",
            &broker.address,
            "--topic",
            "matches",
            "--group",
            group,
        ]
        .iter()
        .chain(&["--warehouse", &url, "--table", "matches"])
        .map(|s| s.to_string())
        .collect()
    };
    let mut backfill = load("backfill-matches");
    backfill.push("--until-end".into());
    ok(run_with_timeout(
        Command::new(relay_binary()).args(&backfill),
        Duration::from_secs(120),
    ));

    let refused = relay(&broker, &["groups", "delete", "backfill-matches"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    for said in [
        "relay loader's group",
        "relay_offsets",
        "retention protection",
        "--force",
    ] {
        assert!(stderr.contains(said), "{said:?} missing: {stderr}");
    }
    assert!(groups(&broker).contains("backfill-matches"), "kept");
    let deleted = ok(relay(&broker, &["groups", "delete", "backfill-matches", "--force"]));
    assert!(deleted.contains("deleted group backfill-matches"), "{deleted}");
    assert!(!groups(&broker).contains("backfill-matches"), "gone");
    assert_eq!(
        warehouse.count("SELECT COUNT(*) FROM relay_offsets WHERE group_id = 'backfill-matches'"),
        1,
        "the warehouse's position is not the broker's to delete"
    );

    // A running loader: refused by the broker even with --force, naming it.
    let mut loader = RelayProcess::start(load("loader"), &dir.path().join("load.log"));
    let joined = wait_until(Duration::from_secs(60), || {
        warehouse.count("SELECT COUNT(*) FROM relay_offsets WHERE group_id = 'loader'") == 1
    });
    assert!(joined, "{}", loader.log());
    let refused = relay(&broker, &["groups", "delete", "loader", "--force"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("still has members") && stderr.contains("client relay-load") && stderr.contains("matches/0"),
        "{stderr}"
    );
    loader.terminate();
}

#[test]
fn a_group_with_a_librdkafka_member_is_refused_naming_it_and_deleted_once_it_left() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    produce(&broker, dir.path(), "orders", 10);
    let mut member = Command::new(&python)
        .arg(python_script("group_watch.py"))
        .args(["member", &broker.address, "orders", "watched", "billing-job"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = BufReader::new(member.stdout.take().unwrap()).lines();
    assert_eq!(said.next().unwrap().unwrap(), "assigned");

    let refused = relay(&broker, &["groups", "delete", "watched"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("still has members") && stderr.contains("client billing-job") && stderr.contains("orders/0"),
        "{stderr}"
    );

    drop(member.stdin.take());
    assert_eq!(said.next().unwrap().unwrap(), "closed");
    member.wait().unwrap();
    let deleted = ok(relay(&broker, &["groups", "delete", "watched"]));
    assert!(deleted.contains("deleted group watched"), "{deleted}");
    let listed = run_with_timeout(
        Command::new(&python)
            .arg(python_script("group_watch.py"))
            .args(["groups", &broker.address]),
        Duration::from_secs(60),
    );
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.starts_with('[') && !listed.contains("watched"),
        "librdkafka still lists it: {listed}"
    );
}
