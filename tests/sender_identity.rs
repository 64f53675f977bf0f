//! Every line exactly once, with or without an id in it, through the `relay`
//! binary: `relay send` and `relay load` (flags only: the whole event in a
//! JSON column, SQLite) on lines that carry no uuid. Rotation by rename,
//! copytruncate, and sender restarts must neither drop a line (two files
//! sharing a name must not share dedup keys) nor load one twice (a file read
//! again under another name keeps its keys); a missing topic must not cost a
//! line; kill -9 of the sender re-sends little.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use support::{relay_binary, run_with_timeout, wait_until, BrokerProcess, RelayProcess};

/// A directory with logs/, state/ and the warehouse.
struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn sender(&self, broker: &BrokerProcess, topic: &str) -> RelayProcess {
        let pattern = self.path("logs").join("app.jsonl*");
        let args = [
            "send",
            "--broker",
            &broker.address,
            "--topic",
            topic,
            "--path",
            &pattern.display().to_string(),
            "--state-dir",
            &self.path("state").display().to_string(),
            "--metrics",
            "127.0.0.1:0",
        ];
        RelayProcess::start(args.iter().map(|s| s.to_string()).collect(), &self.path("send.log"))
    }

    /// A sender from a `[[send]]` section with `extra` settings.
    fn sender_configured(&self, broker: &BrokerProcess, topic: &str, extra: &str) -> RelayProcess {
        let config = self.path("send.toml");
        std::fs::write(
            &config,
            format!(
                "[[send]]\ntopic = \"{topic}\"\npaths = [\"{}\"]\nstate_dir = \"{}\"\n{extra}\n",
                self.path("logs").join("app.jsonl*").display(),
                self.path("state").display()
            ),
        )
        .unwrap();
        let args = [
            "send",
            "--broker",
            &broker.address,
            "--config",
            &config.display().to_string(),
        ];
        RelayProcess::start(args.iter().map(|s| s.to_string()).collect(), &self.path("send.log"))
    }

    fn loader(&self, broker: &BrokerProcess, topic: &str) -> RelayProcess {
        let warehouse = format!("sqlite://{}", self.path("warehouse.db").display());
        let args = [
            "load",
            "--broker",
            &broker.address,
            "--topic",
            topic,
            "--group",
            "loaders",
            "--warehouse",
            &warehouse,
            "--table",
            "events",
        ];
        RelayProcess::start(args.iter().map(|s| s.to_string()).collect(), &self.path("load.log"))
    }

    /// Appends `{"n":N}` lines for `numbers` to `logs/<name>`.
    fn append(&self, name: &str, numbers: std::ops::Range<u64>) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("logs").join(name))
            .unwrap();
        let mut text = String::new();
        for n in numbers {
            text.push_str(&format!("{{\"n\":{n}}}\n"));
        }
        file.write_all(text.as_bytes()).unwrap();
    }

    /// Rotation by copytruncate: copy `from` to `to`, then empty `from` in place.
    fn copytruncate(&self, from: &str, to: &str) {
        let logs = self.path("logs");
        std::fs::copy(logs.join(from), logs.join(to)).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(logs.join(from))
            .unwrap()
            .set_len(0)
            .unwrap();
    }

    fn rename(&self, from: &str, to: &str) {
        let logs = self.path("logs");
        std::fs::rename(logs.join(from), logs.join(to)).unwrap();
    }

    /// How many rows hold each `n` (an `n` loaded twice counts 2).
    fn loaded(&self) -> BTreeMap<u64, u64> {
        let path = self.path("warehouse.db");
        if !path.exists() {
            return BTreeMap::new();
        }
        let connection = rusqlite::Connection::open(path).unwrap();
        let statement = connection.prepare("select json_extract(event, '$.n'), count(*) from events group by 1");
        let Ok(mut statement) = statement else {
            return BTreeMap::new();
        };
        statement
            .query_map([], |row| {
                Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn wait_for_rows(&self, rows: u64, loader: &RelayProcess, sender: &RelayProcess) {
        let loaded = wait_until(Duration::from_secs(60), || self.loaded().values().sum::<u64>() >= rows);
        assert!(
            loaded,
            "{} of {rows} rows loaded\nsender log:\n{}\nloader log:\n{}",
            self.loaded().values().sum::<u64>(),
            sender.log(),
            loader.log()
        );
    }

    /// Asserts every `n` in `expected` is loaded exactly once, nothing else.
    fn assert_exactly_once(&self, expected: std::ops::Range<u64>) {
        // Give a duplicate the time to arrive before declaring there is none.
        std::thread::sleep(Duration::from_secs(2));
        let loaded = self.loaded();
        let missing: Vec<u64> = expected.clone().filter(|n| !loaded.contains_key(n)).take(10).collect();
        let twice: Vec<(&u64, &u64)> = loaded.iter().filter(|(_, count)| **count > 1).take(10).collect();
        assert!(missing.is_empty(), "lines never loaded, first ten: {missing:?}");
        if !twice.is_empty() {
            let connection = rusqlite::Connection::open(self.path("warehouse.db")).unwrap();
            let mut statement = connection
                .prepare("select dedup_key, event from events where json_extract(event, '$.n') = ?1")
                .unwrap();
            let rows: Vec<(String, String)> = statement
                .query_map([*twice[0].0 as i64], |row| Ok((row.get(0)?, row.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            panic!(
                "lines loaded more than once, first ten (n, rows): {twice:?}; the first's rows: {rows:?}\nsender log:\n{}",
                std::fs::read_to_string(self.path("send.log")).unwrap_or_default()
            );
        }
        assert_eq!(loaded.len() as u64, expected.end - expected.start);
    }
}

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
        .filter_map(|l| l.split_whitespace().nth(3)?.parse::<i64>().ok())
        .sum()
}

#[test]
fn rotation_by_rename_loads_lines_without_an_id_exactly_once() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    let sender = scene.sender(&broker, "plain");
    let loader = scene.loader(&broker, "plain");
    scene.append("app.jsonl", 1000..2000);
    scene.wait_for_rows(1000, &loader, &sender);
    // The new file starts at position 0 under the old name: its keys must
    // differ from the rotated file's.
    scene.rename("app.jsonl", "app.jsonl.1");
    scene.append("app.jsonl", 2000..3000);
    scene.wait_for_rows(2000, &loader, &sender);
    scene.assert_exactly_once(1000..3000);
}

#[test]
fn a_file_read_again_under_its_rotated_name_after_a_restart_loads_once() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    let mut sender = scene.sender(&broker, "restart");
    let loader = scene.loader(&broker, "restart");
    scene.append("app.jsonl", 0..5000);
    scene.wait_for_rows(5000, &loader, &sender);
    sender.kill9();
    // Lines written and the file rotated while the sender is down: the
    // restarted sender reads app.jsonl.1 (same file, new name) from its saved
    // position, and a new app.jsonl from 0.
    scene.append("app.jsonl", 5000..6000);
    scene.rename("app.jsonl", "app.jsonl.1");
    scene.append("app.jsonl", 6000..7000);
    sender.launch();
    scene.wait_for_rows(7000, &loader, &sender);
    scene.assert_exactly_once(0..7000);
}

#[test]
fn copytruncate_gives_the_copy_the_original_identity_and_loads_once() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    let sender = scene.sender(&broker, "copytruncate");
    let loader = scene.loader(&broker, "copytruncate");
    scene.append("app.jsonl", 0..3000);
    scene.wait_for_rows(3000, &loader, &sender);
    scene.copytruncate("app.jsonl", "app.jsonl.1");
    scene.append("app.jsonl", 3000..4000);
    scene.wait_for_rows(4000, &loader, &sender);
    scene.assert_exactly_once(0..4000);
}

#[test]
fn copytruncate_while_the_sender_is_down_gives_the_copy_the_original_identity() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    let mut sender = scene.sender(&broker, "down");
    let loader = scene.loader(&broker, "down");
    scene.append("app.jsonl", 0..1000);
    scene.wait_for_rows(1000, &loader, &sender);
    sender.kill9();
    // Written while the sender is down, then copied and truncated: the copy
    // holds 200 unsent lines after 1000 sent ones.
    scene.append("app.jsonl", 1000..1200);
    scene.copytruncate("app.jsonl", "app.jsonl.1");
    scene.append("app.jsonl", 1200..1500);
    sender.launch();
    scene.wait_for_rows(1500, &loader, &sender);
    scene.assert_exactly_once(0..1500);
}

#[test]
fn open_files_max_never_starves_the_live_file() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    scene.append("app.jsonl.1", 0..100);
    scene.append("app.jsonl.2", 100..200);
    let sender = scene.sender_configured(&broker, "room", "open_files_max = 2");
    let loader = scene.loader(&broker, "room");
    scene.wait_for_rows(200, &loader, &sender);
    // Both slots hold idle, fully acknowledged rotated files that still
    // match the paths; the live file must get one.
    scene.append("app.jsonl", 200..300);
    scene.wait_for_rows(300, &loader, &sender);
    scene.append("app.jsonl.2", 300..350);
    scene.wait_for_rows(350, &loader, &sender);
    scene.assert_exactly_once(0..350);
}

/// Against Kafka's default `message.max.bytes` (the broker's default
/// `message_bytes_max`), lines close to 1 MiB arrive; a line the broker
/// refuses as too large with its headers goes to the rejects file with its
/// bytes, and nothing around it is lost.
#[test]
fn lines_close_to_1_mib_arrive_and_one_the_broker_refuses_is_rejected_with_its_bytes() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    let big = |n: u64, bytes: usize| {
        let head = format!("{{\"n\":{n},\"pad\":\"");
        format!("{head}{}\"}}\n", "x".repeat(bytes - head.len() - 3))
    };
    let mut text = String::new();
    for n in 0..6 {
        text.push_str(&big(n, 900 * 1024));
        text.push_str(&format!("{{\"n\":{}}}\n", 100 + n));
    }
    // Under line_bytes_max (1 MiB), over message_bytes_max with its headers.
    let refused = big(999, 1_048_570);
    text.push_str(&refused);
    text.push_str("{\"n\":1000}\n");
    std::fs::write(scene.path("logs").join("app.jsonl"), text).unwrap();
    let sender = scene.sender(&broker, "big");
    let arrived = wait_until(Duration::from_secs(60), || topic_records(&broker, "big") >= 13);
    assert!(
        arrived,
        "{} of 13 records\n{}",
        topic_records(&broker, "big"),
        sender.log()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(topic_records(&broker, "big"), 13);
    let rejects = std::fs::read(scene.path("state").join("rejects")).unwrap_or_default();
    let rejects = String::from_utf8_lossy(&rejects);
    assert!(rejects.contains("reason="), "no reject header:\n{}", sender.log());
    assert!(
        rejects.contains(refused.trim_end()),
        "the refused line's bytes are not in the rejects file"
    );
}

#[test]
fn a_missing_topic_costs_no_line_and_the_sender_says_so() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "auto_create_topics = false");
    scene.append("app.jsonl", 0..500);
    let sender = scene.sender(&broker, "late");
    let warned = wait_until(Duration::from_secs(20), || sender.log().contains("cannot send lines"));
    assert!(warned, "no WARN about the missing topic:\n{}", sender.log());
    let status = run_with_timeout(
        Command::new(relay_binary()).args([
            "status",
            "--broker",
            &broker.address,
            "--scrape",
            &sender.metrics_address(1),
        ]),
        Duration::from_secs(60),
    );
    let status = String::from_utf8_lossy(&status.stdout).into_owned() + &String::from_utf8_lossy(&status.stderr);
    assert!(
        status.contains("lines cannot be sent"),
        "relay status does not show it:\n{status}"
    );
    let output = run_with_timeout(
        Command::new(relay_binary())
            .args(["topics", "create", "late", "--partitions", "2"])
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(60),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    scene.append("app.jsonl", 500..1000);
    let arrived = wait_until(Duration::from_secs(60), || topic_records(&broker, "late") >= 1000);
    assert!(
        arrived,
        "{} of 1000 records\n{}",
        topic_records(&broker, "late"),
        sender.log()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(topic_records(&broker, "late"), 1000);
    let rejects = scene.path("state").join("rejects");
    assert!(
        std::fs::read_to_string(&rejects).unwrap_or_default().is_empty(),
        "lines went to the rejects file: {}",
        rejects.display()
    );
    assert!(sender.log().contains("sending lines again"), "{}", sender.log());
}

#[test]
fn a_wrong_cluster_stops_the_sender_with_exit_2_and_keeps_its_position() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    scene.append("app.jsonl", 0..100);
    let pattern = scene.path("logs").join("app.jsonl*");
    let output = run_with_timeout(
        Command::new(relay_binary()).args([
            "send",
            "--broker",
            &broker.address,
            "--expect-cluster-id",
            "some-other-cluster",
            "--topic",
            "t",
            "--path",
            &pattern.display().to_string(),
            "--state-dir",
            &scene.path("state").display().to_string(),
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("expected cluster"));
    assert_eq!(topic_records(&broker, "t"), 0);
}

/// Lines re-sent after kill -9 are at most what was in flight plus one
/// checkpoint interval: a few percent, not whole files. An application
/// writing 5,000 lines a second, rotating every 20,000, the sender killed
/// every 2 s.
#[test]
fn kill_9_of_the_sender_during_rotation_re_sends_little_and_loads_nothing_twice() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    let mut sender = scene.sender(&broker, "kills");
    let loader = scene.loader(&broker, "kills");
    let (lines, chunk, per_file, kill_every) = (60_000u64, 500u64, 20_000u64, 10_000u64);
    let mut kills = 0;
    for start in (0..lines).step_by(chunk as usize) {
        scene.append("app.jsonl", start..start + chunk);
        let written = start + chunk;
        if written % per_file == 0 {
            scene.rename("app.jsonl", &format!("app.jsonl.{}", written / per_file));
        }
        if written % kill_every == 0 && written < lines {
            sender.kill9();
            sender.launch();
            kills += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    scene.wait_for_rows(lines, &loader, &sender);
    scene.assert_exactly_once(0..lines);
    let records = topic_records(&broker, "kills") as u64;
    let duplicates = records - lines;
    eprintln!("{kills} kills, {lines} lines: {duplicates} duplicate records at the broker");
    assert!(
        duplicates * 10 <= lines,
        "{duplicates} duplicate records for {lines} lines after {kills} kills (more than 10 %)"
    );
}

#[test]
fn a_version_1_registry_is_upgraded_in_place_and_keeps_its_positions() {
    let scene = Scene::new();
    let broker = BrokerProcess::start(scene.dir.path(), "");
    scene.append("app.jsonl", 0..100);
    let log = scene.path("logs").join("app.jsonl");
    let metadata = std::fs::metadata(&log).unwrap();
    let half = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .take(50)
        .map(|l| l.len() + 1)
        .sum::<usize>();
    // What a sender before file ids left behind: the first 50 lines acknowledged.
    let contents = std::fs::read(&log).unwrap();
    let fingerprint_bytes = contents.len().min(256);
    let crc = crc32c(&contents[..fingerprint_bytes]);
    std::fs::create_dir_all(scene.path("state")).unwrap();
    std::fs::write(
        scene.path("state").join("registry"),
        format!(
            "relay-sender-registry 1\n{} {} {fingerprint_bytes} {crc} {half} {}\n",
            std::os::unix::fs::MetadataExt::dev(&metadata),
            std::os::unix::fs::MetadataExt::ino(&metadata),
            log.display()
        ),
    )
    .unwrap();
    let mut sender = scene.sender(&broker, "upgrade");
    let arrived = wait_until(Duration::from_secs(30), || topic_records(&broker, "upgrade") >= 50);
    assert!(arrived, "{}", sender.log());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        topic_records(&broker, "upgrade"),
        50,
        "only the unacknowledged half is sent"
    );
    sender.terminate();
    let registry = std::fs::read_to_string(scene.path("state").join("registry")).unwrap();
    assert!(registry.starts_with("relay-sender-registry 3\n"), "{registry}");
}

/// CRC-32C (Castagnoli), bitwise: the test's own, so it checks the sender's.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
