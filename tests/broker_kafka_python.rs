//! kafka-python against `relay broker`: produce (lz4), consume with a group,
//! commit, and offsets_for_times; the admin client's calls
//! (list_partition_offsets with MAX_TIMESTAMP, delete_groups, create_topics
//! with topic configs); fetch responses measured against kafka-python's
//! fetch_max_bytes and max_partition_fetch_bytes.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{python, python_script, run_with_timeout, BrokerProcess};

const T0_MS: i64 = 1_767_225_600_000;

/// Runs `kafka_python_clients.py` with `args`; its standard output.
fn client(python: &Path, args: &[&str]) -> String {
    let output = run_with_timeout(
        Command::new(python)
            .arg(python_script("kafka_python_clients.py"))
            .args(args),
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        output.status.success(),
        "kafka-python {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Four partitions of two 300,000-byte messages: with fetch_max_bytes
/// 1,000,000 no response frame may carry more (every partition's first batch
/// whatever the budget made 1,200,464 bytes; kafka-python took it, librdkafka
/// refuses it); with max_partition_fetch_bytes 400,000 a partition gives
/// one batch per response. Every message arrives both ways.
#[test]
fn kafka_python_fetch_responses_keep_to_its_limits() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let answer = client(&python, &["fetch-limits", &broker.address, "budget"]);
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let frame_overhead_bytes_max = 1_024;
    for (read, limit) in [("response_limit", 1_000_000), ("partition_limit", 4 * 400_000)] {
        assert_eq!(answer[read]["received"], 8, "{answer}");
        let largest = answer[read]["largest_frame"].as_u64().unwrap();
        assert!(largest <= limit + frame_overhead_bytes_max, "{read}: {answer}");
    }
}

#[test]
fn kafka_python_produces_consumes_and_finds_offsets_by_time() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let stdout = client(&python, &[&broker.address, "kp", "kp-group"]);
    let expected_values = format!("[{}]", (0..300).map(|n| n.to_string()).collect::<Vec<_>>().join(", "));
    assert!(stdout.contains(&format!("\"values\": {expected_values}")), "{stdout}");
    assert!(stdout.contains("\"committed\": [150, 150]"), "{stdout}");
    // Message n: partition n % 2, offset n / 2, timestamp T0 + n s.
    let t0 = T0_MS;
    let lookups = [
        ("t0", format!("[[0, {t0}], [0, {}]]", t0 + 1000)),
        ("t101", format!("[[51, {}], [50, {}]]", t0 + 102_000, t0 + 101_000)),
        ("t150_5", format!("[[76, {}], [75, {}]]", t0 + 152_000, t0 + 151_000)),
        ("after", "[null, null]".to_owned()),
    ];
    for (label, expected) in lookups {
        assert!(
            stdout.contains(&format!("\"{label}\": {expected}")),
            "{label}: expected {expected} in {stdout}"
        );
    }
}

/// Partition 0 peaks twice at T0 + 9 s (offsets 2 and 4): the first wins;
/// partition 1 is empty: -1 and -1.
#[test]
fn kafka_python_admin_finds_the_max_timestamp_record() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    assert_eq!(
        client(&python, &["max-timestamp", &broker.address, "peaks"]),
        format!(r#"{{"max_timestamp": [[2, {}], [-1, -1]]}}"#, T0_MS + 9_000)
    );
}

/// delete_groups: an emptied group goes with its offsets, a group with a
/// member is refused, an unknown one is not found.
#[test]
fn kafka_python_admin_deletes_only_empty_groups() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    assert_eq!(
        client(&python, &["delete-groups", &broker.address, "cleanup"]),
        r#"{"deleted": {"gone": "OK", "live": "NonEmptyGroupError", "never": "GroupIdNotFoundError"}, "gone_committed": null, "read": 10}"#
    );
}

/// create_topics: configs Relay honours take effect (max.message.bytes 2048
/// refuses a 4,000-byte message) and survive `kill -9`; compaction is refused
/// naming why; validate_only creates nothing.
#[test]
fn kafka_python_topic_configs_are_honoured_or_refused() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), "");
    assert_eq!(
        client(&python, &["topic-configs", &broker.address, "create"]),
        r#"{"created": {"tuned": [0, ""], "compacted": [40, "invalid topic config: cleanup.policy = \"compact\" is not supported: Relay never compacts; only \"delete\" (retention by time and size)"], "checked": [0, ""]}, "listed": ["tuned"], "produced": ["MessageSizeTooLargeError", "OK"]}"#
    );
    broker.kill9();
    broker.restart();
    assert_eq!(
        client(&python, &["topic-configs", &broker.address, "after-restart"]),
        r#"{"produced": ["MessageSizeTooLargeError", "OK"]}"#
    );
}
