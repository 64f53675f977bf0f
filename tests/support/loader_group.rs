//! A consumer group of `relay load` processes sharing one warehouse, for the
//! scale-out tests (`tests/loader_scale_out.rs`): members that can be killed
//! (`kill -9`), stopped (SIGTERM), paused (SIGSTOP) and started again; events
//! produced in paced rounds while they load; every partition as the
//! warehouse and the broker see it; and the exactly-once check, which on
//! failure prints the counts of every partition and what each member logged
//! about its membership and its fenced batches.
//!
//! It never decides what a member does: the tests script the membership.

use crate::support::warehouse::Warehouse;
use crate::support::{relay_binary, run_with_timeout, BrokerProcess, RelayProcess};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const TOPIC: &str = "events";
pub const GROUP: &str = "scale-out";
pub const TABLE: &str = "events";
pub const PARTITIONS: u32 = 6;
/// Small batches closed quickly, so every member commits many transactions
/// while the group rebalances around it.
const BATCH_RECORDS_MAX: usize = 500;
const BATCH_WAIT_MS: u64 = 100;
/// Every batch waits to fill or for its time: the fencing test pauses a
/// member while it holds records it fetched and has not written, which a
/// member writing as soon as it is idle seldom does.
const WRITE_WHEN_IDLE: bool = false;
/// Lines of each member's log shown with a failure.
const LOG_LINES_SHOWN_MAX: usize = 40;

pub fn create_topic(broker: &BrokerProcess) {
    let output = run_with_timeout(
        Command::new(relay_binary())
            .args(["topics", "create", TOPIC, "--partitions", &PARTITIONS.to_string()])
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(30),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// The one `[[load]]` section every member runs.
pub fn write_config(dir: &Path, warehouse: &Warehouse) -> PathBuf {
    let path = dir.join("load.toml");
    std::fs::write(
        &path,
        format!(
            r#"[[load]]
topic = "{TOPIC}"
group = "{GROUP}"
warehouse = "{}"
table = "{TABLE}"
batch_records_max = {BATCH_RECORDS_MAX}
batch_wait_ms = {BATCH_WAIT_MS}
write_when_idle = {WRITE_WHEN_IDLE}
metadata = ["partition", "offset"]

[[load.columns]]
name = "uuid"
pointer = "/uuid"
type = "uuid"

[[load.columns]]
name = "amount"
pointer = "/amount"
type = "bigint"
"#,
            warehouse.url()
        ),
    )
    .unwrap();
    path
}

fn uuid_of(n: u64) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", n >> 16, n)
}

fn event(n: u64) -> String {
    format!("{{\"uuid\":\"{}\",\"amount\":{}}}\n", uuid_of(n), n % 1000)
}

/// One `relay load` process of the group, logging to `<name>.log`.
pub struct Member {
    pub name: String,
    process: RelayProcess,
}

impl Member {
    pub fn start(broker: &BrokerProcess, config: &Path, dir: &Path, name: &str) -> Self {
        let args = vec![
            "load".to_owned(),
            "--broker".to_owned(),
            broker.address.clone(),
            "--config".to_owned(),
            config.display().to_string(),
        ];
        Self {
            name: name.to_owned(),
            process: RelayProcess::start(args, &dir.join(format!("{name}.log"))),
        }
    }

    /// Starts the process again (a new group member, same log).
    pub fn restart(&mut self) {
        assert!(self.process.child.is_none(), "{} is still running", self.name);
        self.process.launch();
    }

    pub fn kill9(&mut self) {
        self.process.kill9();
    }

    /// SIGTERM: the member finishes the batch in hand and leaves the group.
    pub fn terminate(&mut self) -> Option<i32> {
        self.process.terminate()
    }

    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.process.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {}", self.name);
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// How many times `needle` appears in the log.
    pub fn logged(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    /// The partitions of the member's last assignment, from its last
    /// "joined group" line.
    pub fn last_assignment(&self) -> Option<usize> {
        let log = self.log();
        let line = log.lines().rev().find(|l| l.contains("joined group"))?;
        let rest = line.split("partitions=").nth(1)?;
        rest.split_whitespace().next()?.parse().ok()
    }
}

/// Sends events `events` with one `relay produce`, waiting for it.
pub fn produce(address: &str, dir: &Path, events: Range<u64>) {
    let file = dir.join(format!("events-{}-{}.jsonl", events.start, events.end));
    std::fs::write(&file, events.map(event).collect::<String>()).unwrap();
    let output = run_with_timeout(
        Command::new(relay_binary())
            .args(["produce", "--topic", TOPIC])
            .arg(&file)
            .env("RELAY_BROKER", address),
        Duration::from_secs(60),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Events sent from a thread, `round` at a time with one `relay produce`
/// every `interval`, until stopped: the members load while more arrive.
pub struct Producer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Producer {
    /// Starts sending events `first..` in rounds.
    pub fn start(broker: &BrokerProcess, dir: &Path, first: u64, round: u64, interval: Duration) -> Self {
        let (address, dir) = (broker.address.clone(), dir.to_path_buf());
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut next = first;
            for rounds in 1u32.. {
                produce(&address, &dir, next..next + round);
                next += round;
                if stopped.load(Ordering::Acquire) {
                    break;
                }
                std::thread::sleep((interval * rounds).saturating_sub(started.elapsed()));
            }
            next
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops after the round in progress; returns the end (exclusive) of the
    /// events sent. A failed round fails the test.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Release);
        let thread = self.thread.take().expect("running");
        thread.join().expect("the producer failed")
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// The next offset of every partition stored in `relay_offsets` for the group.
pub fn next_offsets(warehouse: &Warehouse) -> BTreeMap<i32, i64> {
    pairs(&warehouse.column(&format!(
        "SELECT CAST(partition AS TEXT) || ' ' || CAST(next_offset AS TEXT) FROM relay_offsets \
         WHERE group_id = '{GROUP}' AND topic = '{TOPIC}'"
    )))
}

/// The sum of the group's stored next offsets: the records it has loaded.
pub fn stored_total(warehouse: &Warehouse) -> i64 {
    warehouse.count(&format!(
        "SELECT COALESCE(SUM(next_offset), 0) FROM relay_offsets WHERE group_id = '{GROUP}'"
    ))
}

/// The end offset of every partition, from `relay topics describe`.
pub fn end_offsets(broker: &BrokerProcess) -> BTreeMap<i32, i64> {
    let describe = run_with_timeout(
        Command::new(relay_binary())
            .args(["topics", "describe", TOPIC])
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(30),
    );
    assert!(
        describe.status.success(),
        "{}",
        String::from_utf8_lossy(&describe.stderr)
    );
    let lines: Vec<String> = String::from_utf8_lossy(&describe.stdout)
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            format!("{} {}", fields[0], fields[3])
        })
        .collect();
    pairs(&lines)
}

fn pairs(lines: &[String]) -> BTreeMap<i32, i64> {
    lines
        .iter()
        .map(|line| {
            let (key, value) = line.split_once(' ').unwrap_or_else(|| panic!("{line:?}"));
            (key.parse().unwrap(), value.parse().unwrap())
        })
        .collect()
}

/// Polls `done` every 100 ms for at most `limit`; panics with `evidence()` then.
pub fn wait_for(what: &str, limit: Duration, evidence: impl Fn() -> String, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < limit,
            "{what}: not reached in {limit:?}\n{}",
            evidence()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every partition (end offset, stored next offset, rows, distinct offsets
/// among the rows), the rejects, and each member's log about membership,
/// fencing and trouble.
pub fn evidence(warehouse: &Warehouse, broker: &BrokerProcess, members: &[&Member]) -> String {
    let ends = end_offsets(broker);
    let stored = next_offsets(warehouse);
    let rows = warehouse.column(&format!(
        "SELECT CAST(relay_partition AS TEXT) || ' ' || CAST(COUNT(*) AS TEXT) || ' ' || \
         CAST(COUNT(DISTINCT relay_offset) AS TEXT) FROM {TABLE} GROUP BY relay_partition"
    ));
    let mut text = String::from("partition: end offset, stored next offset, rows (distinct offsets)\n");
    for (partition, end) in &ends {
        let counts = rows
            .iter()
            .find(|r| r.split(' ').next() == Some(&partition.to_string()))
            .map(|r| r.split_once(' ').unwrap().1.to_owned())
            .unwrap_or_else(|| "0 0".into());
        text += &format!("  {partition}: {end}, {:?}, {counts}\n", stored.get(partition));
    }
    text += &format!("rejects: {}\n", warehouse.count("SELECT COUNT(*) FROM relay_rejects"));
    for member in members {
        let log = member.log();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| {
                [
                    "joined group",
                    "resuming",
                    "fenced",
                    "WARN",
                    "ERROR",
                    "started",
                    "stopped",
                ]
                .iter()
                .any(|needle| l.contains(needle))
            })
            .collect();
        let shown = &lines[lines.len().saturating_sub(LOG_LINES_SHOWN_MAX)..];
        text += &format!(
            "--- {} ({} lines of interest)\n{}\n",
            member.name,
            lines.len(),
            shown.join("\n")
        );
    }
    text
}

/// Waits until the group stored offsets for all `total` events, then checks
/// them exactly: every event once, no reject, every partition's next offset
/// at its end offset, and no row from beyond a stored offset.
pub fn assert_loaded_exactly_once(warehouse: &Warehouse, broker: &BrokerProcess, members: &[&Member], total: i64) {
    let evidence = || evidence(warehouse, broker, members);
    wait_for(
        "offsets of every event stored",
        Duration::from_secs(90),
        evidence,
        || stored_total(warehouse) >= total,
    );
    // Anything still in flight (a stale member's batch) lands or is fenced meanwhile.
    std::thread::sleep(Duration::from_secs(2));
    let counted = warehouse.query(&format!(
        "SELECT CAST(COUNT(*) AS TEXT) || ' ' || CAST(COUNT(DISTINCT uuid) AS TEXT) || ' ' || \
         CAST(COUNT(DISTINCT CAST(relay_partition AS TEXT) || '/' || CAST(relay_offset AS TEXT)) AS TEXT) FROM {TABLE}"
    ));
    assert_eq!(
        counted,
        format!("{total} {total} {total}"),
        "rows, distinct uuids, distinct (partition, offset): every event exactly once\n{}",
        evidence()
    );
    assert_eq!(
        warehouse.count("SELECT COUNT(*) FROM relay_rejects"),
        0,
        "nothing rejected\n{}",
        evidence()
    );
    let ends = end_offsets(broker);
    assert_eq!(ends.len(), PARTITIONS as usize);
    assert_eq!(ends.values().sum::<i64>(), total, "the topic holds every event once");
    assert_eq!(
        stored_total(warehouse),
        total,
        "sum(next_offset) = the end offsets\n{}",
        evidence()
    );
    assert_eq!(
        next_offsets(warehouse),
        ends,
        "each partition's next offset is its end offset\n{}",
        evidence()
    );
    let beyond = warehouse.count(&format!(
        "SELECT COUNT(*) FROM {TABLE} e JOIN relay_offsets o ON o.group_id = '{GROUP}' \
         AND o.partition = e.relay_partition WHERE e.relay_offset >= o.next_offset"
    ));
    assert_eq!(beyond, 0, "no row from beyond a stored offset\n{}", evidence());
}

/// Whether some session has held a warehouse transaction open for a while
/// without waiting for a lock: a paused member caught inside its batch.
pub fn transaction_held(warehouse: &Warehouse) -> bool {
    match warehouse {
        Warehouse::Sqlite(path) => {
            // The live members hold the write lock for milliseconds at a time.
            let connection = rusqlite::Connection::open(path).unwrap();
            connection.busy_timeout(Duration::from_secs(2)).unwrap();
            connection.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").is_err()
        }
        Warehouse::Postgres(postgres) => {
            std::thread::sleep(Duration::from_millis(1_200));
            postgres.query(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
                 AND pid <> pg_backend_pid() AND xact_start < now() - interval '1 second' \
                 AND wait_event_type IS DISTINCT FROM 'Lock'",
            ) != "0"
        }
    }
}
