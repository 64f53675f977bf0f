//! Issue 16 end to end: `relay broker` with a topic whose retention protects
//! group "g". Retention keeps what g has not read long past retention_bytes
//! (while an unprotected twin topic is trimmed), the metrics show what is
//! held and the cap; past retention_bytes_hard the broker deletes anyway,
//! logs an ERROR naming g and the offsets, and counts exactly the records g
//! lost.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use support::{http_get, metric_sum, relay_binary, run_with_timeout, wait_until, BrokerProcess};

const HARD_CAP_BYTES: u64 = 4_194_304;

/// `t` is protected for group "g"; `u` is the same topic unprotected.
const CONFIG: &str = "retention_check_interval_ms = 100\n\
    [broker.topics.t]\n\
    retention_bytes = 65536\nsegment_bytes = 16384\nretention_ms = -1\n\
    protected_groups = [\"g\"]\nretention_bytes_hard = 4194304\n\
    [broker.topics.u]\n\
    retention_bytes = 65536\nsegment_bytes = 16384\nretention_ms = -1\n";

fn relay(broker: &BrokerProcess, args: &[&str]) -> String {
    let output: Output = run_with_timeout(
        Command::new(relay_binary())
            .args(args)
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(120),
    );
    assert!(
        output.status.success(),
        "relay {args:?} failed ({:?}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Produces `count` lines of 100 bytes, numbered from `first`, to `topic`.
fn produce(broker: &BrokerProcess, dir: &Path, topic: &str, first: u64, count: u64) {
    let path = dir.join(format!("{topic}-{first}.txt"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for n in first..first + count {
        writeln!(file, "{n:0>99}").unwrap();
    }
    file.into_inner().unwrap().sync_all().unwrap();
    relay(broker, &["produce", "--topic", topic, path.to_str().unwrap()]);
}

/// Partition 0's start offset, from `relay topics describe`.
fn start_offset(broker: &BrokerProcess, topic: &str) -> i64 {
    let described = relay(broker, &["topics", "describe", topic]);
    let row = described.lines().nth(1).unwrap_or_else(|| panic!("{described}"));
    row.split_whitespace().nth(2).unwrap().parse().unwrap()
}

fn largest_segment_bytes(partition_dir: &Path) -> u64 {
    std::fs::read_dir(partition_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "log"))
        .map(|path| std::fs::metadata(path).unwrap().len())
        .max()
        .unwrap()
}

fn scrape(broker: &BrokerProcess) -> String {
    let address = broker.metrics_address.as_deref().expect("metrics address");
    http_get(address, "/metrics").expect("metrics answer").1
}

#[test]
fn retention_keeps_what_a_protected_group_has_not_read_until_the_hard_cap() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start_with_args(dir.path(), CONFIG, &["--metrics", "127.0.0.1:0"]);
    produce(&broker, dir.path(), "t", 0, 1_000);
    produce(&broker, dir.path(), "u", 0, 1_000);
    // g reads 100 records and commits offset 100, then stops.
    let read = relay(&broker, &["consume", "--topic", "t", "--group", "g", "--max", "100"]);
    assert_eq!(read.lines().count(), 100);
    let committed = 100;

    // About 1 MiB more, 16 times retention_bytes, in runs of 1,250 lines so
    // no batch (nor the segment it may fill alone) passes about 140 KB.
    for run in 0..8 {
        produce(&broker, dir.path(), "t", 1_000 + run * 1_250, 1_250);
        produce(&broker, dir.path(), "u", 1_000 + run * 1_250, 1_250);
    }
    let trimmed = wait_until(Duration::from_secs(30), || start_offset(&broker, "u") > 1_000);
    assert!(
        trimmed,
        "retention never trimmed the unprotected topic\n{}",
        broker.log()
    );
    // A few more passes after the unprotected topic was trimmed.
    std::thread::sleep(Duration::from_millis(500));
    let start = start_offset(&broker, "t");
    assert!(start <= committed, "nothing g has not read is deleted: start {start}");
    let metrics = scrape(&broker);
    let partition = [("topic", "t"), ("partition", "0")];
    let held = metric_sum(&metrics, "relay_broker_retention_protected_bytes", &partition).unwrap();
    let size = metric_sum(&metrics, "relay_broker_log_size_bytes", &partition).unwrap();
    // Held: all but what plain retention keeps, which is at least
    // retention_bytes and less than that plus its oldest kept segment.
    let largest_segment = largest_segment_bytes(&broker.data_dir.join("t-0")) as f64;
    assert!(
        held + 65_536.0 <= size && held >= size - 65_536.0 - largest_segment,
        "held {held} of {size}, largest segment {largest_segment}"
    );
    assert!(held > 900_000.0, "held {held}");
    assert_eq!(
        metric_sum(&metrics, "relay_broker_retention_hard_limit_bytes", &[("topic", "t")]),
        Some(HARD_CAP_BYTES as f64)
    );
    assert_eq!(
        metric_sum(&metrics, "relay_broker_retention_hard_limit_bytes", &[("topic", "u")]),
        None,
        "an unprotected topic has no cap to show"
    );
    assert_eq!(
        metric_sum(&metrics, "relay_broker_retention_protected_deleted_records_total", &[]),
        Some(0.0),
        "nothing deleted past the cap yet, and the series is there for its alert"
    );
    let address = broker.metrics_address.clone().expect("metrics address");
    let status = relay(&broker, &["status", "--scrape", &address]);
    assert!(
        status.contains("PROTECTED TOPIC") && status.lines().any(|l| l.starts_with("t ") && l.contains('%')),
        "relay status does not show how close t is to its cap:\n{status}"
    );

    // About 5 MiB more: past the hard cap, retention deletes unread records.
    produce(&broker, dir.path(), "t", 11_000, 50_000);
    let log_size = || metric_sum(&scrape(&broker), "relay_broker_log_size_bytes", &partition).unwrap();
    let capped = wait_until(Duration::from_secs(30), || log_size() <= HARD_CAP_BYTES as f64);
    assert!(capped, "the partition never came back within the cap\n{}", broker.log());
    let start = start_offset(&broker, "t");
    assert!(start > committed, "the hard cap deleted what g had not read");
    // Counted exactly: every record from g's offset to the new log start (a
    // pass counts once its files are gone, just after the size drops).
    let lost = || {
        metric_sum(
            &scrape(&broker),
            "relay_broker_retention_protected_deleted_records_total",
            &[("topic", "t"), ("group", "g")],
        )
    };
    let counted = wait_until(Duration::from_secs(10), || lost() == Some((start - committed) as f64));
    assert!(counted, "counted {:?}, start {start}", lost());
    let log = broker.log();
    let error = log
        .lines()
        .find(|line| line.contains("ERROR") && line.contains("protected groups had not read"))
        .unwrap_or_else(|| panic!("no ERROR line\n{log}"));
    assert!(
        error.contains("topic=t") && error.contains("groups=g") && error.contains("first_offset=100 "),
        "{error}"
    );
}
