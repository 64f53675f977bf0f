//! `relay send` as a process against `relay broker`: lines appended while it
//! runs arrive through rename rotation and copytruncate; `kill -9` at random
//! moments loses nothing and duplicates only lines in flight (with their
//! original source headers); a broker outage pauses it; an over-long line
//! goes to the rejects file while memory stays bounded; a partial line waits.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{relay_binary, run_with_timeout, BrokerProcess, RelayProcess};

struct SenderProcess(RelayProcess);

impl SenderProcess {
    fn start(broker: &BrokerProcess, topic: &str, pattern: &Path, state_dir: &Path, log: &Path) -> Self {
        let args = ["send", "--broker", &broker.address, "--topic", topic, "--path"]
            .iter()
            .map(|s| s.to_string())
            .chain([
                pattern.display().to_string(),
                "--state-dir".to_owned(),
                state_dir.display().to_string(),
            ])
            .collect();
        Self(RelayProcess::start(args, log))
    }

    fn launch(&mut self) {
        self.0.launch();
    }

    fn kill9(&mut self) {
        self.0.kill9();
    }

    fn terminate(&mut self) -> Option<i32> {
        self.0.terminate()
    }

    /// Peak resident memory so far, from /proc (kB).
    fn peak_rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.pid())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    }
}

fn relay(broker: &BrokerProcess, args: &[&str]) -> String {
    let output = run_with_timeout(
        Command::new(relay_binary())
            .args(args)
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(300),
    );
    assert!(
        output.status.success(),
        "relay {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Records in the topic (sum of end offsets).
fn topic_records(broker: &BrokerProcess, topic: &str) -> i64 {
    let output = run_with_timeout(
        Command::new(relay_binary())
            .args(["topics", "describe", topic])
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(60),
    );
    if !output.status.success() {
        return 0;
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(3).unwrap().parse::<i64>().unwrap())
        .sum()
}

fn wait_for_records(broker: &BrokerProcess, topic: &str, expected: i64, limit: Duration, log: &Path) {
    let started = Instant::now();
    loop {
        let records = topic_records(broker, topic);
        if records >= expected {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "only {records} of {expected} records arrived in {limit:?}\nsender log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Every record's value and source headers.
fn consume_all(broker: &BrokerProcess, topic: &str) -> Vec<(String, String, String)> {
    relay(broker, &["consume", "--topic", topic, "--format", "json"])
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let header = |name: &str| value["headers"][name].as_str().unwrap_or_default().to_owned();
            (
                value["value"].as_str().unwrap().to_owned(),
                header("source_file"),
                header("source_position"),
            )
        })
        .collect()
}

fn line(id: u64) -> String {
    format!("{{\"id\":{id},\"event\":\"spin\",\"amount\":{}}}", id % 1000)
}

/// Ids of the values, checked to be exactly 0..count with no duplicates.
fn assert_each_once(values: &[(String, String, String)], count: u64) {
    let mut ids: Vec<u64> = values
        .iter()
        .map(|(v, _, _)| {
            v.trim_start_matches("{\"id\":")
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    ids.sort_unstable();
    let duplicates = ids.windows(2).filter(|w| w[0] == w[1]).count();
    ids.dedup();
    assert_eq!(ids.len() as u64, count, "every line arrived");
    assert_eq!(ids.last().copied(), Some(count - 1));
    assert_eq!(duplicates, 0, "no line arrived twice");
}

enum Rotation {
    Rename,
    CopyTruncate,
}

fn million_lines_with(rotation: Rotation, pattern: &str) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log = dir.path().join("send.log");
    let _sender = SenderProcess::start(&broker, "app", &logs.join(pattern), &dir.path().join("state"), &log);
    let live = logs.join("app.jsonl");
    const LINES: u64 = 1_000_000;
    let mut file = std::io::BufWriter::new(std::fs::File::create(&live).unwrap());
    for id in 0..LINES {
        writeln!(file, "{}", line(id)).unwrap();
        if id % 10_000 == 9_999 {
            file.flush().unwrap();
            // An application's pace (50,000 lines/s): each file lives about
            // 2 s, long enough for the sender to find it before it rotates.
            std::thread::sleep(Duration::from_millis(200));
        }
        if id % 100_000 == 99_999 && id + 1 < LINES {
            file.flush().unwrap();
            let rotated = logs.join(format!("app.jsonl.{}", id / 100_000));
            match rotation {
                Rotation::Rename => {
                    std::fs::rename(&live, &rotated).unwrap();
                    file = std::io::BufWriter::new(std::fs::File::create(&live).unwrap());
                }
                Rotation::CopyTruncate => {
                    std::fs::copy(&live, &rotated).unwrap();
                    file.get_ref().set_len(0).unwrap();
                    drop(file);
                    file = std::io::BufWriter::new(std::fs::OpenOptions::new().append(true).open(&live).unwrap());
                }
            }
        }
    }
    file.flush().unwrap();
    wait_for_records(&broker, "app", LINES as i64, Duration::from_secs(300), &log);
    std::thread::sleep(Duration::from_millis(500));
    assert_each_once(&consume_all(&broker, "app"), LINES);
}

#[test]
fn a_million_lines_arrive_through_rename_rotation() {
    million_lines_with(Rotation::Rename, "*.jsonl");
}

#[test]
fn a_million_lines_arrive_through_copytruncate() {
    million_lines_with(Rotation::CopyTruncate, "app.jsonl*");
}

#[test]
fn kill9_at_random_moments_loses_nothing_and_duplicates_keep_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log = dir.path().join("send.log");
    let live = logs.join("app.jsonl");
    let writer = {
        let live = live.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(&live).unwrap();
            for chunk in 0..200u64 {
                let text: String = (chunk * 1000..(chunk + 1) * 1000).map(|id| line(id) + "\n").collect();
                file.write_all(text.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(25));
            }
        })
    };
    let mut sender = SenderProcess::start(&broker, "app", &logs.join("*.jsonl"), &dir.path().join("state"), &log);
    // A seeded sequence of kill moments (xorshift), 10 kills.
    let mut seed: u64 = 0x5eed_1234_abcd_0042;
    for _ in 0..10 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(150 + seed % 600));
        sender.kill9();
        sender.launch();
    }
    writer.join().unwrap();
    wait_for_records(&broker, "app", 200_000, Duration::from_secs(120), &log);
    std::thread::sleep(Duration::from_secs(1));
    let records = consume_all(&broker, "app");
    let mut by_value: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for (value, file, position) in &records {
        by_value
            .entry(value.as_str())
            .or_default()
            .push((file.as_str(), position.as_str()));
    }
    assert_eq!(by_value.len(), 200_000, "no line missing");
    let mut duplicated = 0;
    for (value, sources) in &by_value {
        if sources.len() > 1 {
            duplicated += 1;
            assert!(
                sources.windows(2).all(|w| w[0] == w[1]),
                "a duplicate of {value} carries its original source: {sources:?}"
            );
        }
    }
    eprintln!(
        "kill -9 x10: {} records for 200000 lines, {duplicated} lines duplicated",
        records.len()
    );
    let positions: BTreeMap<u64, &str> = records
        .iter()
        .map(|(v, _, p)| (p.parse::<u64>().unwrap(), v.as_str()))
        .collect();
    assert_eq!(positions.len(), 200_000, "each position holds one line");
}

#[test]
fn a_broker_outage_pauses_sending_and_everything_arrives_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), "");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log = dir.path().join("send.log");
    let live = logs.join("app.jsonl");
    let mut file = std::fs::File::create(&live).unwrap();
    let mut sender = SenderProcess::start(&broker, "app", &logs.join("*.jsonl"), &dir.path().join("state"), &log);
    let write = |file: &mut std::fs::File, ids: std::ops::Range<u64>| {
        let text: String = ids.map(|id| line(id) + "\n").collect();
        file.write_all(text.as_bytes()).unwrap();
    };
    write(&mut file, 0..20_000);
    wait_for_records(&broker, "app", 20_000, Duration::from_secs(60), &log);
    broker.terminate();
    for round in 0..6 {
        write(&mut file, 20_000 + round * 5_000..20_000 + (round + 1) * 5_000);
        std::thread::sleep(Duration::from_secs(5));
    }
    broker.restart();
    wait_for_records(&broker, "app", 50_000, Duration::from_secs(120), &log);
    assert_eq!(sender.terminate(), Some(0), "SIGTERM stops the sender cleanly");
    assert_each_once(&consume_all(&broker, "app"), 50_000);
}

#[test]
fn an_overlong_line_goes_to_the_rejects_file_and_memory_stays_bounded() {
    let mebibytes: u64 = std::env::var("RELAY_TEST_SENDER_FILE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "[broker.log]\nfsync = \"never\"");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let big = logs.join("big.jsonl");
    let pad = "x".repeat(1000);
    let mut lines = 0u64;
    let mut long_line_position = 0u64;
    {
        let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&big).unwrap());
        let mut written = 0u64;
        while written < mebibytes << 20 {
            if lines == 1000 && long_line_position == 0 {
                long_line_position = written;
                let long = format!("{{\"long\":\"{}\"}}\n", "y".repeat(3 << 20));
                file.write_all(long.as_bytes()).unwrap();
                written += long.len() as u64;
            }
            let text = format!("{{\"id\":{lines},\"pad\":\"{pad}\"}}\n");
            file.write_all(text.as_bytes()).unwrap();
            written += text.len() as u64;
            lines += 1;
        }
    }
    let state = dir.path().join("state");
    let log = dir.path().join("send.log");
    let sender = SenderProcess::start(&broker, "big", &logs.join("*.jsonl"), &state, &log);
    wait_for_records(&broker, "big", lines as i64, Duration::from_secs(600), &log);
    let peak_kb = sender.peak_rss_kb();
    eprintln!("{mebibytes} MiB file, {lines} lines: sender peak RSS {peak_kb} kB");
    assert!(peak_kb < 64 * 1024, "peak RSS {peak_kb} kB must stay under 64 MiB");
    assert_eq!(
        topic_records(&broker, "big"),
        lines as i64,
        "every other line arrived, the long one did not"
    );
    let rejects = std::fs::read(state.join("rejects")).unwrap();
    let header = format!(
        "# relay-reject file={} position={long_line_position} reason=line longer than line_bytes_max\n",
        big.display()
    );
    assert!(
        rejects.starts_with(header.as_bytes()),
        "{:?}",
        String::from_utf8_lossy(&rejects[..200.min(rejects.len())])
    );
    assert_eq!(
        rejects.len(),
        header.len() + (3 << 20) + 11 + 1,
        "the whole long line is in the rejects file"
    );
}

#[test]
fn a_partial_last_line_is_sent_only_once_completed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log = dir.path().join("send.log");
    let live = logs.join("app.jsonl");
    std::fs::write(&live, "{\"id\":1}\n{\"id\":2").unwrap();
    let _sender = SenderProcess::start(
        &broker,
        "partial",
        &logs.join("*.jsonl"),
        &dir.path().join("state"),
        &log,
    );
    wait_for_records(&broker, "partial", 1, Duration::from_secs(30), &log);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(topic_records(&broker, "partial"), 1, "the unfinished line waits");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&live)
        .unwrap()
        .write_all(b"}\n")
        .unwrap();
    wait_for_records(&broker, "partial", 2, Duration::from_secs(30), &log);
    let values: Vec<String> = consume_all(&broker, "partial").into_iter().map(|(v, _, _)| v).collect();
    assert_eq!(values, vec!["{\"id\":1}", "{\"id\":2}"]);
}

#[test]
fn a_line_the_rejects_file_cannot_take_stops_the_sender_and_is_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let app = logs.join("app.jsonl");
    let mut text = String::new();
    let mut long_position = 0;
    for id in 0..100 {
        if id == 50 {
            long_position = text.len();
            text.push_str(&format!("{{\"long\":\"{}\"}}\n", "y".repeat(3 << 20)));
        }
        text.push_str(&line(id));
        text.push('\n');
    }
    std::fs::write(&app, &text).unwrap();
    // The rejects file cannot be created: a directory holds its name.
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("rejects")).unwrap();
    let log = dir.path().join("send.log");
    let mut sender = SenderProcess::start(&broker, "app", &logs.join("*.jsonl"), &state, &log);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = sender.0.child.as_mut().unwrap().try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the sender kept running:\n{}",
            sender.0.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let said = sender.0.log();
    assert_eq!(status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("{}:{long_position}", app.display())) && said.contains("not skipped"),
        "the error names the line and says it was not skipped:\n{said}"
    );
    assert_eq!(
        topic_records(&broker, "app"),
        50,
        "nothing after the unrecorded line was sent"
    );

    // Fixed, the sender starts again at the line: it lands in the rejects file.
    std::fs::remove_dir(state.join("rejects")).unwrap();
    sender.0.child = None;
    sender.launch();
    wait_for_records(&broker, "app", 100, Duration::from_secs(60), &log);
    assert_eq!(sender.terminate(), Some(0));
    let rejects = std::fs::read(state.join("rejects")).unwrap();
    let header = format!(
        "# relay-reject file={} position={long_position} reason=line longer than line_bytes_max\n",
        app.display()
    );
    assert!(
        rejects.starts_with(header.as_bytes()),
        "{:?}",
        String::from_utf8_lossy(&rejects[..200.min(rejects.len())])
    );
    let mut ids: Vec<u64> = consume_all(&broker, "app")
        .iter()
        .map(|(v, _, _)| {
            serde_json::from_str::<serde_json::Value>(v).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids, (0..100).collect::<Vec<_>>(), "every other line arrived");
}
