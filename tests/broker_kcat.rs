//! kcat (librdkafka) against `relay broker`: metadata, produce, consume.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{kcat, run_with_timeout, BrokerProcess};

#[test]
fn kcat_lists_topics_and_reads_back_every_line() {
    let Some(kcat) = kcat() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "default_partitions = 1");
    let lines: Vec<String> = (0..5000)
        .map(|i| format!("{{\"uuid\":\"{i:08}\",\"event\":\"kcat\"}}"))
        .collect();

    let mut producer = Command::new(&kcat)
        .args([
            "-b",
            &broker.address,
            "-P",
            "-t",
            "kcat-lines",
            "-X",
            "enable.idempotence=true",
            "-z",
            "lz4",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    producer
        .stdin
        .take()
        .unwrap()
        .write_all((lines.join("\n") + "\n").as_bytes())
        .unwrap();
    let produced = producer.wait_with_output().unwrap();
    assert!(
        produced.status.success(),
        "kcat -P: {}",
        String::from_utf8_lossy(&produced.stderr)
    );

    let listing = run_with_timeout(
        Command::new(&kcat).args(["-b", &broker.address, "-L"]),
        Duration::from_secs(30),
    );
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(listing.contains("1 brokers:"), "{listing}");
    assert!(listing.contains("topic \"kcat-lines\" with 1 partitions"), "{listing}");

    let consumed = run_with_timeout(
        Command::new(&kcat).args([
            "-b",
            &broker.address,
            "-C",
            "-t",
            "kcat-lines",
            "-o",
            "beginning",
            "-e",
            "-q",
        ]),
        Duration::from_secs(60),
    );
    assert!(
        consumed.status.success(),
        "kcat -C: {}",
        String::from_utf8_lossy(&consumed.stderr)
    );
    let read: Vec<String> = String::from_utf8(consumed.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(read, lines, "kcat reads back every line, in order");
}
