//! Corruption in the broker's log costs only the corrupt batch, through the
//! `relay` binary (issue 28, fault 9). Five batches of 1,000 records in
//! 64 KiB segments (one batch per segment), `kill -9`, corrupt, restart:
//! - a zero-filled tail past the end of the first, sealed segment is cut and
//!   every later segment is kept: all 5,000 records are served;
//! - a byte flipped in the second segment's batch (bit rot the recovery scan
//!   trusts, found when read) sets that batch aside once, with one ERROR:
//!   consumers get the 4,000 others, past the gap;
//! - a byte flipped in the only batch of the active segment (fsynced and
//!   acknowledged) sets it aside instead of cutting it: 4,000 served.
//!
//! In every case the next record gets offset 5,000 (no offset is handed
//! out twice), `relay_broker_corrupt_batches_total` counts the batch, and
//! the bytes are in a quarantine file named by their offsets.

mod support;

use relay_proto::{BatchBuilder, RecordSpec};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::raw_client::{create_topic, produce, RawConnection};
use support::{http_get, metric_sum, relay_binary, run_with_timeout, BrokerProcess};

const TOPIC: &str = "rot";
const BATCHES: i64 = 5;
const RECORDS_PER_BATCH: i64 = 1000;
const BROKER_CONFIG: &str = "[broker.topics.rot]\npartitions = 1\nsegment_bytes = 65536\n";
const PRODUCE_VERSION: i16 = 9;
const CORRUPT_BATCHES: &str = "relay_broker_corrupt_batches_total";

fn value(n: i64) -> String {
    format!(r#"{{"n":{n},"pad":"{}"}}"#, "p".repeat(40))
}

/// One batch of the records numbered `first..first + count`.
fn batch_of(first: i64, count: i64) -> Vec<u8> {
    let mut builder = BatchBuilder::new(1_767_225_600_000);
    for n in first..first + count {
        builder.push(RecordSpec::value(value(n).into_bytes()));
    }
    builder.build()
}

fn partition_dir(broker: &BrokerProcess) -> PathBuf {
    broker.data_dir.join(format!("{TOPIC}-0"))
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

/// A broker holding five acknowledged batches of 1,000 records, one per
/// segment, killed with SIGKILL.
fn killed_broker(dir: &Path) -> BrokerProcess {
    let mut broker = BrokerProcess::start_with_args(dir, BROKER_CONFIG, &["--metrics", "127.0.0.1:0"]);
    let mut connection = RawConnection::connect(&broker.address);
    create_topic(&mut connection, TOPIC, 1);
    for b in 0..BATCHES {
        let first = b * RECORDS_PER_BATCH;
        let answer = produce(
            &mut connection,
            TOPIC,
            0,
            batch_of(first, RECORDS_PER_BATCH),
            PRODUCE_VERSION,
        );
        assert_eq!(answer, (0, first));
    }
    broker.kill9();
    let segments = files_ending(&partition_dir(&broker), ".log");
    assert_eq!(segments.len(), BATCHES as usize, "one batch per segment: {segments:?}");
    broker
}

fn flip_byte(path: &Path, at: u64) {
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x20], at).unwrap();
}

/// Restarts the broker and produces one more record, which must get the
/// offset after every one ever handed out.
fn restart_and_produce_one(broker: &mut BrokerProcess) {
    broker.restart();
    let mut connection = RawConnection::connect(&broker.address);
    let next = BATCHES * RECORDS_PER_BATCH;
    let answer = produce(&mut connection, TOPIC, 0, batch_of(next, 1), PRODUCE_VERSION);
    assert_eq!(answer, (0, next), "an offset is never handed out twice");
}

/// `relay consume --from earliest` to the end: (offset, record number) of
/// every record received.
fn consume_all(broker: &BrokerProcess) -> Vec<(i64, i64)> {
    let output = run_with_timeout(
        Command::new(relay_binary()).args([
            "consume",
            "--broker",
            &broker.address,
            "--topic",
            TOPIC,
            "--from",
            "earliest",
            "--format",
            "json",
        ]),
        Duration::from_secs(60),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            let value: serde_json::Value = serde_json::from_str(record["value"].as_str().unwrap()).unwrap();
            (record["offset"].as_i64().unwrap(), value["n"].as_i64().unwrap())
        })
        .collect()
}

/// Every record of the five batches outside `lost`, then the one produced
/// after the restart.
fn expected_records(lost: std::ops::Range<i64>) -> Vec<(i64, i64)> {
    (0..=BATCHES * RECORDS_PER_BATCH)
        .filter(|n| !lost.contains(n))
        .map(|n| (n, n))
        .collect()
}

fn corrupt_batches_metric(broker: &BrokerProcess) -> Option<f64> {
    let address = broker.metrics_address.as_deref().expect("--metrics");
    let (_, body) = http_get(address, "/metrics").expect("metrics answer");
    metric_sum(&body, CORRUPT_BATCHES, &[("topic", TOPIC), ("partition", "0")])
}

fn error_lines(broker: &BrokerProcess) -> Vec<String> {
    broker
        .log()
        .lines()
        .filter(|line| line.contains("ERROR"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn zero_tail_of_sealed_segment_is_cut_and_every_later_segment_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = killed_broker(dir.path());
    let segments = files_ending(&partition_dir(&broker), ".log");
    let mut file = std::fs::OpenOptions::new().append(true).open(&segments[0]).unwrap();
    std::io::Write::write_all(&mut file, &[0u8; 4096]).unwrap();
    drop(file);
    restart_and_produce_one(&mut broker);
    assert_eq!(consume_all(&broker), expected_records(0..0));
    let kept = files_ending(&partition_dir(&broker), ".log");
    assert!(segments.iter().all(|segment| kept.contains(segment)), "{kept:?}");
    assert!(files_ending(&partition_dir(&broker), ".quarantine").is_empty());
    assert_eq!(corrupt_batches_metric(&broker), Some(0.0), "shown at zero");
    assert!(error_lines(&broker).is_empty(), "{:?}", error_lines(&broker));
}

#[test]
fn flipped_byte_in_sealed_segment_costs_only_its_batch_with_one_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = killed_broker(dir.path());
    let second = &files_ending(&partition_dir(&broker), ".log")[1];
    flip_byte(second, 30_000);
    restart_and_produce_one(&mut broker);
    let lost = RECORDS_PER_BATCH..2 * RECORDS_PER_BATCH;
    for _ in 0..3 {
        assert_eq!(consume_all(&broker), expected_records(lost.clone()));
    }
    let quarantined = files_ending(&partition_dir(&broker), ".quarantine");
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert!(quarantined[0].ends_with("00000000000000001000-00000000000000002000.quarantine"));
    assert_eq!(corrupt_batches_metric(&broker), Some(1.0));
    let errors = error_lines(&broker);
    assert_eq!(errors.len(), 1, "one ERROR per corrupt batch, not a flood: {errors:?}");
    assert!(errors[0].contains("corrupt batch set aside"), "{errors:?}");
}

#[test]
fn flipped_byte_in_active_segment_is_set_aside_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = killed_broker(dir.path());
    let active = files_ending(&partition_dir(&broker), ".log").pop().unwrap();
    flip_byte(&active, 30_000);
    broker.restart();
    // The log now ends in a gap: a consumer gets everything before it and is
    // at the end, not left waiting.
    let lost = 4 * RECORDS_PER_BATCH..5 * RECORDS_PER_BATCH;
    let before = consume_all(&broker);
    assert_eq!(before, expected_records(lost.clone())[..4000]);
    assert_eq!(corrupt_batches_metric(&broker), Some(1.0));
    broker.kill9();
    restart_and_produce_one(&mut broker);
    assert_eq!(consume_all(&broker), expected_records(lost));
    let quarantined = files_ending(&partition_dir(&broker), ".quarantine");
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert!(quarantined[0].ends_with("00000000000000004000-00000000000000005000.quarantine"));
    // Counted by the broker that set it aside; a later one starts again at 0.
    assert_eq!(corrupt_batches_metric(&broker), Some(0.0));
    assert_eq!(error_lines(&broker).len(), 1, "{:?}", error_lines(&broker));
}
