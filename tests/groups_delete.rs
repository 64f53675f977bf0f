//! `relay groups delete` through the `relay` binary against `relay broker`:
//! a group with a live member is kept (exit 1, naming what to do), an empty
//! group goes with its committed offsets, an unknown one is named, and the
//! deletion survives `kill -9` of the broker right after it was answered.

mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use support::{relay_binary, relay_client, succeeded as ok, wait_until, BrokerProcess};

fn relay(broker: &BrokerProcess, args: &[&str]) -> Output {
    relay_client(broker, args, Duration::from_secs(120))
}

/// A `relay consume --follow` member of `group`, killed on drop.
struct Member(Child);

impl Member {
    fn start(broker: &BrokerProcess, topic: &str, group: &str) -> Self {
        let child = Command::new(relay_binary())
            .args(["consume", "--topic", topic, "--group", group, "--follow"])
            .env("RELAY_BROKER", &broker.address)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn relay consume");
        Self(child)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn produce(broker: &BrokerProcess, dir: &Path, topic: &str, lines: usize) {
    let file = dir.join(format!("{topic}.txt"));
    let text: String = (0..lines).map(|n| format!("line {n}\n")).collect();
    std::fs::write(&file, text).unwrap();
    ok(relay(broker, &["produce", "--topic", topic, file.to_str().unwrap()]));
}

#[test]
fn groups_delete_removes_an_empty_group_for_good_and_keeps_a_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), "");
    ok(relay(&broker, &["topics", "create", "orders", "--partitions", "2"]));
    produce(&broker, dir.path(), "orders", 20);
    ok(relay(
        &broker,
        &["consume", "--topic", "orders", "--group", "billing", "--max", "7"],
    ));
    ok(relay(
        &broker,
        &["consume", "--topic", "orders", "--group", "kept", "--max", "3"],
    ));

    let _member = Member::start(&broker, "orders", "live");
    assert!(
        wait_until(Duration::from_secs(30), || {
            let described = relay(&broker, &["groups", "describe", "live"]);
            String::from_utf8_lossy(&described.stdout).contains("Stable")
        }),
        "the live member joined"
    );
    let refused = relay(&broker, &["groups", "delete", "live"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("still has members"), "{stderr}");

    let deleted = ok(relay(&broker, &["groups", "delete", "billing"]));
    assert!(deleted.contains("deleted group billing"), "{deleted}");
    broker.kill9();
    broker.restart();

    let groups = ok(relay(&broker, &["groups", "list"]));
    assert!(
        !groups.contains("billing"),
        "deleted before kill -9, back after it:\n{groups}"
    );
    assert!(groups.contains("kept"), "{groups}");
    let again = relay(&broker, &["groups", "delete", "billing"]);
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("no such group"), "{stderr}");
    // The name is free: a new group of it starts from the beginning.
    let replay = ok(relay(
        &broker,
        &["consume", "--topic", "orders", "--group", "billing", "--max", "20"],
    ));
    assert_eq!(replay.lines().count(), 20, "{replay}");
}
