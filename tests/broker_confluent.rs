//! confluent-kafka (librdkafka) against `relay broker`: idempotent producers
//! with every codec, a two-member consumer group that reads everything
//! exactly once, and a group that resumes after its committed offsets when
//! the broker was killed with `kill -9`; fetch responses that keep to
//! librdkafka's `fetch.max.bytes` across partitions (KIP-74); the admin
//! client's list_offsets with MAX_TIMESTAMP, delete_consumer_groups and
//! create_topics with topic configs; static members (group.instance.id)
//! started together, restarted and duplicated.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{python, python_script, run_with_timeout, BrokerProcess};

fn client(python: &Path, args: &[&str]) -> String {
    let output = run_with_timeout(
        Command::new(python)
            .arg(python_script("confluent_clients.py"))
            .args(args),
        Duration::from_secs(180),
    );
    assert!(
        output.status.success(),
        "{args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn consumed(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap().to_owned())
        .collect()
}

fn values(range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(|n| format!("m{n}")).collect()
}

#[test]
fn idempotent_codecs_group_consumption_and_resume_after_kill9() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), "");
    let address = broker.address.clone();
    assert_eq!(
        client(&python, &["produce", &address, "orders", "3", "0", "0"]),
        r#"{"delivered": 0, "errors": []}"#
    );

    // Two members join first, then 100,000 messages arrive for them to split.
    let (out_a, out_b) = (dir.path().join("a.txt"), dir.path().join("b.txt"));
    let members: Vec<_> = [&out_a, &out_b]
        .into_iter()
        .map(|out| {
            let (python, address, out) = (python.clone(), address.clone(), out.to_str().unwrap().to_owned());
            std::thread::spawn(move || client(&python, &["consume", &address, "orders", "g", &out, "6"]))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(4));
    let produced = client(&python, &["produce", &address, "orders", "3", "100000", "0"]);
    assert_eq!(produced, r#"{"delivered": 100000, "errors": []}"#);
    for member in members {
        member.join().unwrap();
    }
    let (a, b) = (consumed(&out_a), consumed(&out_b));
    assert!(
        !a.is_empty() && !b.is_empty(),
        "both members got partitions: {} and {}",
        a.len(),
        b.len()
    );
    let all: Vec<String> = a.into_iter().chain(b).collect();
    assert_eq!(all.len(), 100_000, "every message exactly once between the two members");
    assert_eq!(all.iter().cloned().collect::<BTreeSet<_>>(), values(0..100_000));
    let committed: Vec<i64> = client(&python, &["committed", &address, "orders", "g", "3"])
        .trim_matches(['[', ']'])
        .split(", ")
        .map(|o| o.parse().unwrap())
        .collect();
    assert_eq!(
        committed.iter().sum::<i64>(),
        100_000,
        "commits cover everything read: {committed:?}"
    );

    // 10,000 more, then the broker dies without a clean shutdown.
    let produced = client(&python, &["produce", &address, "orders", "3", "10000", "100000"]);
    assert_eq!(produced, r#"{"delivered": 10000, "errors": []}"#);
    broker.kill9();
    broker.restart();
    let after_restart = client(&python, &["committed", &address, "orders", "g", "3"]);
    assert_eq!(
        after_restart,
        format!("{committed:?}"),
        "committed offsets survive kill -9"
    );
    let out_c = dir.path().join("c.txt");
    client(
        &python,
        &["consume", &address, "orders", "g", out_c.to_str().unwrap(), "4"],
    );
    let resumed = consumed(&out_c);
    assert_eq!(
        resumed.len(),
        10_000,
        "the group resumes exactly after its committed offsets"
    );
    assert_eq!(resumed.into_iter().collect::<BTreeSet<_>>(), values(100_000..110_000));
}

/// Four partitions of two 300,000-byte messages read with fetch.max.bytes
/// 1,000,000: a response that gave every partition a batch whatever the
/// budget (1,200,000 bytes) was refused by librdkafka and fetched again for
/// ever; within the budget every message arrives.
#[test]
fn fetch_responses_keep_to_librdkafkas_fetch_max_bytes() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    assert_eq!(
        client(&python, &["fetch-limits", &broker.address, "budget"]),
        r#"{"received": 8, "errors": []}"#
    );
}

/// Two static members started together share one generation (the broker's
/// default initial rebalance delay); one restarted keeps its partitions
/// without the other seeing a rebalance; a second process with its instance
/// id fences the running one.
#[test]
fn static_members_restart_without_a_rebalance_and_duplicates_are_fenced() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "# group_initial_rebalance_delay_ms: the default");
    let answer = client(&python, &["static-membership", &broker.address, "statics"]);
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["a_assigned_first"], 1, "one generation for both: {answer}");
    assert_eq!(answer["a_assigned_during_restart"], 0, "no rebalance: {answer}");
    assert_eq!(answer["b_keeps_partitions"], true, "{answer}");
    let errors = answer["replaced_b_errors"].to_string();
    assert!(
        errors.contains("fenced by other consumer with same group.instance.id"),
        "the replaced member is fenced: {answer}"
    );
    assert!(broker.log().contains("static member rejoined"), "{}", broker.log());
}

/// Partition 0 peaks twice at T0 + 9 s (offsets 2 and 4): the first wins;
/// partition 1 is empty: -1 and -1.
#[test]
fn confluent_admin_finds_the_max_timestamp_record() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let t0 = 1_767_225_600_000i64;
    assert_eq!(
        client(&python, &["max-timestamp", &broker.address, "peaks"]),
        format!(r#"{{"max_timestamp": [[2, {}], [-1, -1]]}}"#, t0 + 9_000)
    );
}

/// delete_consumer_groups: an emptied group goes with its offsets, a group
/// with a member is refused, an unknown one is not found.
#[test]
fn confluent_admin_deletes_only_empty_groups() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    assert_eq!(
        client(&python, &["delete-groups", &broker.address, "cleanup"]),
        r#"{"deleted": {"gone": "OK", "live": "NON_EMPTY_GROUP", "never": "GROUP_ID_NOT_FOUND"}, "gone_committed": -1001, "read": 10}"#
    );
}

/// create_topics: configs Relay honours take effect (max.message.bytes 2048
/// refuses a 4,000-byte message) and survive `kill -9`; compaction is refused
/// naming why; validate_only creates nothing.
#[test]
fn confluent_topic_configs_are_honoured_or_refused() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), "");
    assert_eq!(
        client(&python, &["topic-configs", &broker.address, "create"]),
        r#"{"created": {"tuned": ["OK", ""], "compacted": ["INVALID_CONFIG", "invalid topic config: cleanup.policy = \"compact\" is not supported: Relay never compacts; only \"delete\" (retention by time and size)"], "checked": ["OK", ""]}, "listed": ["tuned"], "produced": ["MSG_SIZE_TOO_LARGE", "OK"]}"#
    );
    broker.kill9();
    broker.restart();
    assert_eq!(
        client(&python, &["topic-configs", &broker.address, "after-restart"]),
        r#"{"produced": ["MSG_SIZE_TOO_LARGE", "OK"]}"#
    );
}
