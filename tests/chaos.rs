//! The whole chain under fire: writer processes append uniquely identified
//! events with rotation; `relay send`, `relay broker` and `relay load` run as
//! separate processes; a seeded killer sends `kill -9` to a random role at
//! random moments and restarts it. At the end the warehouse must hold every
//! event of every file written exactly once, `relay_offsets` must equal the
//! end offsets, and nothing may be rejected.
//!
//! CI runs a short version (10 kills per warehouse). A long run:
//! `RELAY_CHAOS_CYCLES=100 RELAY_CHAOS_SEED=7 cargo test --test chaos -- --nocapture`.

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::postgres::Postgres;
use support::warehouse::Warehouse;
use support::{relay_binary, run_with_timeout, BrokerProcess, RelayProcess};

struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn config(dir: &Path, warehouse: &Warehouse) -> PathBuf {
    let path = dir.join("pipeline.toml");
    std::fs::write(
        &path,
        format!(
            r#"[[send]]
topic = "events"
paths = ["{logs}/*.jsonl*"]
state_dir = "{state}"

[[load]]
topic = "events"
group = "chaos-loader"
warehouse = "{warehouse}"
table = "events"
batch_records_max = 1000
batch_wait_ms = 100
metadata = ["partition", "offset", "source_file", "source_position"]

[[load.columns]]
name = "uuid"
pointer = "/uuid"
type = "uuid"
nullable = false

[[load.columns]]
name = "player_id"
pointer = "/player_id"
type = "text"

[[load.columns]]
name = "amount"
pointer = "/amount"
type = "bigint"

[[load.columns]]
name = "ts"
pointer = "/ts"
type = "timestamptz"
"#,
            logs = dir.join("logs").display(),
            state = dir.join("state").display(),
            warehouse = warehouse.url(),
        ),
    )
    .unwrap();
    path
}

/// Every uuid in every file the writers wrote (live and rotated).
fn written_uuids(logs: &Path) -> Vec<String> {
    let mut uuids = Vec::new();
    for entry in std::fs::read_dir(logs).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            uuids.push(value["uuid"].as_str().unwrap().to_owned());
        }
    }
    uuids
}

fn topic_records(address: &str) -> i64 {
    let describe = run_with_timeout(
        Command::new(relay_binary()).args(["topics", "describe", "events", "--broker", address]),
        Duration::from_secs(30),
    );
    String::from_utf8_lossy(&describe.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(3)?.parse::<i64>().ok())
        .sum()
}

fn chaos(warehouse: Warehouse, dir: &Path) {
    let cycles: u64 = std::env::var("RELAY_CHAOS_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let seed: u64 = std::env::var("RELAY_CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x00c0_ffee);
    let events_per_writer = 4_000 + cycles * 1_000;
    let started = Instant::now();
    let mut broker = BrokerProcess::start(dir, "");
    let address = broker.address.clone();
    let created = run_with_timeout(
        Command::new(relay_binary()).args(["topics", "create", "events", "--partitions", "4", "--broker", &address]),
        Duration::from_secs(30),
    );
    assert!(created.status.success());
    let config = config(dir, &warehouse);
    let logs = dir.join("logs");
    let writers: Vec<Child> = (0..3)
        .map(|w| {
            Command::new(relay_binary())
                .args(["gen-events", "--file"])
                .arg(logs.join(format!("writer{w}.jsonl")))
                .args([
                    "--rate",
                    "1500",
                    "--rotate-lines",
                    "2500",
                    "--count",
                    &events_per_writer.to_string(),
                ])
                .args(["--seed", &(seed + w).to_string()])
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let client_args = |role: &str| {
        vec![
            role.to_owned(),
            "--broker".to_owned(),
            address.clone(),
            "--config".to_owned(),
            config.display().to_string(),
        ]
    };
    let mut sender = RelayProcess::start(client_args("send"), &dir.join("send.log"));
    let mut loader = RelayProcess::start(client_args("load"), &dir.join("load.log"));
    let mut random = Seeded(seed | 1);
    let mut kills = [0u32; 3];
    for _ in 0..cycles {
        std::thread::sleep(Duration::from_millis(300 + random.next() % 1200));
        let victim = (random.next() % 3) as usize;
        kills[victim] += 1;
        match victim {
            0 => {
                broker.kill9();
                broker.restart();
            }
            1 => {
                sender.kill9();
                sender.launch();
            }
            _ => {
                loader.kill9();
                loader.launch();
            }
        }
    }
    for mut writer in writers {
        assert!(writer.wait().unwrap().success());
    }
    let written = written_uuids(&logs);
    let total = written.len() as i64;
    assert_eq!(total, 3 * events_per_writer as i64);
    let deadline = Instant::now() + Duration::from_secs(300);
    while warehouse.count("SELECT COUNT(*) FROM events") < total {
        assert!(
            Instant::now() < deadline,
            "only {} of {total} events loaded ({} records in the topic); sender rejects: {:?}\nbroker log:\n{}\nsend log:\n{}\nload log:\n{}",
            warehouse.count("SELECT COUNT(*) FROM events"),
            topic_records(&broker.address),
            std::fs::read_to_string(dir.join("state/rejects")).unwrap_or_default(),
            broker.log(),
            sender.log(),
            loader.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Let any in-flight duplicate arrive before judging.
    std::thread::sleep(Duration::from_secs(2));
    let loaded = warehouse.column("SELECT uuid FROM events");
    let loaded_set: HashSet<&String> = loaded.iter().collect();
    let written_set: HashSet<&String> = written.iter().collect();
    assert_eq!(loaded.len(), written.len(), "every event exactly once (no duplicates)");
    assert_eq!(
        loaded_set, written_set,
        "the warehouse holds exactly the events written"
    );
    assert_eq!(warehouse.count("SELECT COUNT(*) FROM relay_rejects"), 0);
    let sender_rejects = std::fs::read_to_string(dir.join("state/rejects")).unwrap_or_default();
    assert!(
        sender_rejects.is_empty(),
        "the sender rejected nothing:\n{sender_rejects}"
    );
    let describe = run_with_timeout(
        Command::new(relay_binary()).args(["topics", "describe", "events", "--broker", &broker.address]),
        Duration::from_secs(30),
    );
    let mut end_offsets = 0;
    for line in String::from_utf8_lossy(&describe.stdout).lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let stored = warehouse.count(&format!(
            "SELECT next_offset FROM relay_offsets WHERE group_id = 'chaos-loader' AND partition = {}",
            fields[0]
        ));
        assert_eq!(
            stored.to_string(),
            fields[3],
            "relay_offsets of partition {} is its end offset",
            fields[0]
        );
        end_offsets += stored;
    }
    eprintln!(
        "chaos: seed {seed}, {cycles} kills (broker {}, sender {}, loader {}), {total} events written and loaded once, \
         {end_offsets} records in the topic ({} duplicates sent and de-duplicated), {:.1} s",
        kills[0],
        kills[1],
        kills[2],
        end_offsets - total,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn chaos_with_sqlite_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    chaos(Warehouse::sqlite(dir.path()), dir.path());
}

#[test]
fn chaos_with_postgres_loses_and_duplicates_nothing() {
    let Some(postgres) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    chaos(Warehouse::Postgres(postgres), dir.path());
}
