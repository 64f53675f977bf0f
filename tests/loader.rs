//! `relay load` as a process, into SQLite and into a real PostgreSQL server
//! started by the test: `kill -9` at random moments loses and duplicates
//! nothing; duplicate events load once; malformed and wrong-typed records
//! land in `relay_rejects` with their offsets; a PostgreSQL outage only
//! pauses loading; a backfill group loads exactly the events from a time on.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};
use support::postgres::Postgres;
use support::warehouse::Warehouse;
use support::{relay_binary, run_with_timeout, BrokerProcess, RelayProcess};

struct LoaderProcess(RelayProcess);

impl LoaderProcess {
    fn start(broker: &BrokerProcess, config: &Path, extra: &[&str], log: &Path) -> Self {
        let mut args = vec![
            "load".to_owned(),
            "--broker".to_owned(),
            broker.address.clone(),
            "--config".to_owned(),
            config.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self(RelayProcess::start(args, log))
    }

    fn launch(&mut self) {
        self.0.launch();
    }

    fn kill9(&mut self) {
        self.0.kill9();
    }

    fn pid(&self) -> u32 {
        self.0.pid()
    }

    fn log(&self) -> String {
        self.0.log()
    }
}

fn write_config(dir: &Path, warehouse: &Warehouse, table: &str, topic: &str) -> PathBuf {
    let path = dir.join(format!("load-{table}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"[[load]]
topic = "{topic}"
group = "loader-{table}"
warehouse = "{}"
table = "{table}"
batch_records_max = 2000
batch_wait_ms = 100
metadata = ["partition", "offset", "record_timestamp"]

[[load.columns]]
name = "uuid"
pointer = "/uuid"
type = "uuid"

[[load.columns]]
name = "player"
pointer = "/player_id"
type = "text"

[[load.columns]]
name = "amount"
pointer = "/amount"
type = "bigint"

[[load.columns]]
name = "at"
pointer = "/at"
type = "timestamptz"
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
    format!(
        "{{\"uuid\":\"{}\",\"player_id\":\"p{}\",\"amount\":{},\"at\":\"2026-01-01T00:00:00Z\"}}",
        uuid_of(n),
        n % 97,
        n % 1000
    )
}

fn produce(broker: &BrokerProcess, dir: &Path, topic: &str, lines: &[String]) {
    let file = dir.join(format!("{topic}-{}.jsonl", lines.len()));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    for line in lines {
        writeln!(out, "{line}").unwrap();
    }
    drop(out);
    let output = run_with_timeout(
        Command::new(relay_binary())
            .args(["produce", "--topic", topic, file.to_str().unwrap()])
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(300),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

fn create_topic(broker: &BrokerProcess, topic: &str, partitions: u32) {
    let output = run_with_timeout(
        Command::new(relay_binary())
            .args(["topics", "create", topic, "--partitions", &partitions.to_string()])
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(30),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

fn wait_until(what: &str, limit: Duration, log: impl Fn() -> String, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < limit,
            "{what} not reached in {limit:?}; loader log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn kill9_loop_loads_every_event_exactly_once(warehouse: Warehouse, dir: &Path) {
    let events: u64 = std::env::var("RELAY_TEST_LOADER_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let broker = BrokerProcess::start(dir, "");
    create_topic(&broker, "events", 4);
    let config = write_config(dir, &warehouse, "events", "events");
    let mut loader = LoaderProcess::start(&broker, &config, &[], &dir.join("load.log"));
    let producing = {
        let (address, dir) = (broker.address.clone(), dir.to_path_buf());
        std::thread::spawn(move || {
            for chunk in 0..10u64 {
                let lines: Vec<String> = (chunk * events / 10..(chunk + 1) * events / 10).map(event).collect();
                let file = dir.join(format!("chunk-{chunk}.jsonl"));
                std::fs::write(&file, lines.join("\n") + "\n").unwrap();
                let status = Command::new(relay_binary())
                    .args(["produce", "--topic", "events", file.to_str().unwrap()])
                    .env("RELAY_BROKER", &address)
                    .stderr(Stdio::null())
                    .status()
                    .unwrap();
                assert!(status.success());
            }
        })
    };
    let mut seed: u64 = 0x1234_5678_9abc_def1;
    for _ in 0..20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(300 + seed % 700));
        loader.kill9();
        loader.launch();
    }
    producing.join().unwrap();
    let stored =
        || warehouse.count("SELECT COALESCE(SUM(next_offset), 0) FROM relay_offsets WHERE group_id = 'loader-events'");
    wait_until(
        "all offsets stored",
        Duration::from_secs(600),
        || loader.log(),
        || stored() == events as i64,
    );
    assert_eq!(
        warehouse.count("SELECT COUNT(*) FROM events"),
        events as i64,
        "every event, exactly once"
    );
    assert_eq!(
        warehouse.count("SELECT COUNT(DISTINCT uuid) FROM events"),
        events as i64
    );
    assert_eq!(warehouse.count("SELECT COUNT(*) FROM relay_rejects"), 0);
    // relay_offsets equals the end offsets, partition by partition.
    let describe = run_with_timeout(
        Command::new(relay_binary())
            .args(["topics", "describe", "events"])
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(30),
    );
    for line in String::from_utf8_lossy(&describe.stdout).lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let stored = warehouse.count(&format!(
            "SELECT next_offset FROM relay_offsets WHERE group_id = 'loader-events' AND partition = {}",
            fields[0]
        ));
        assert_eq!(stored.to_string(), fields[3], "partition {}", fields[0]);
    }
    // Rows agree with their offsets: no row from beyond a stored offset.
    let beyond = warehouse.count(
        "SELECT COUNT(*) FROM events e JOIN relay_offsets o ON o.group_id = 'loader-events' AND o.partition = e.relay_partition \
         WHERE e.relay_offset >= o.next_offset",
    );
    assert_eq!(beyond, 0);
}

#[test]
fn sqlite_kill9_twenty_times_loads_every_event_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    kill9_loop_loads_every_event_exactly_once(Warehouse::sqlite(dir.path()), dir.path());
}

#[test]
fn postgres_kill9_twenty_times_loads_every_event_exactly_once() {
    let Some(postgres) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    kill9_loop_loads_every_event_exactly_once(Warehouse::Postgres(postgres), dir.path());
}

fn duplicates_and_bad_records(warehouse: Warehouse, dir: &Path) {
    let broker = BrokerProcess::start(dir, "");
    let mut lines = Vec::new();
    let mut bad_offsets = Vec::new();
    for n in 0..5000u64 {
        let line = match n % 100 {
            13 => "{\"uuid\": broken json".to_owned(),
            57 => format!("{{\"uuid\":\"{}\",\"amount\":\"lots\"}}", uuid_of(n)),
            71 => format!("{{\"uuid\":\"{}\",\"at\":\"last tuesday\"}}", uuid_of(n)),
            // The same event sent again later (a retry upstream).
            88 => event(n - 50),
            _ => event(n),
        };
        if matches!(n % 100, 13 | 57 | 71) {
            bad_offsets.push(n);
        }
        lines.push(line);
    }
    produce(&broker, dir, "mixed", &lines);
    let config = write_config(dir, &warehouse, "mixed", "mixed");
    let loader = LoaderProcess::start(&broker, &config, &[], &dir.join("load.log"));
    let stored = || warehouse.count("SELECT COALESCE(SUM(next_offset), 0) FROM relay_offsets");
    wait_until(
        "all offsets stored",
        Duration::from_secs(120),
        || loader.log(),
        || stored() == 5000,
    );
    let good = 5000 - bad_offsets.len() as i64 - 50; // 50 duplicates
    assert_eq!(
        warehouse.count("SELECT COUNT(*) FROM mixed"),
        good,
        "each uuid once, every good line loaded"
    );
    assert_eq!(warehouse.count("SELECT COUNT(DISTINCT uuid) FROM mixed"), good);
    assert_eq!(
        warehouse.count("SELECT COUNT(*) FROM relay_rejects"),
        bad_offsets.len() as i64
    );
    let rejected: Vec<i64> = (0..bad_offsets.len())
        .map(|i| {
            warehouse.count(&format!(
                "SELECT \"offset\" FROM relay_rejects ORDER BY \"offset\" LIMIT 1 OFFSET {i}"
            ))
        })
        .collect();
    assert_eq!(
        rejected,
        bad_offsets.iter().map(|o| *o as i64).collect::<Vec<_>>(),
        "rejects carry their offsets"
    );
    let reason = warehouse.query("SELECT error FROM relay_rejects WHERE \"offset\" = 57");
    assert!(reason.contains("amount"), "{reason}");
}

#[test]
fn sqlite_duplicates_load_once_and_bad_records_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    duplicates_and_bad_records(Warehouse::sqlite(dir.path()), dir.path());
}

#[test]
fn postgres_duplicates_load_once_and_bad_records_are_rejected() {
    let Some(postgres) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    duplicates_and_bad_records(Warehouse::Postgres(postgres), dir.path());
}

#[test]
fn postgres_outage_of_30_seconds_only_pauses_loading() {
    let Some(postgres) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let mut warehouse = Warehouse::Postgres(postgres);
    let config = write_config(dir.path(), &warehouse, "events", "events");
    produce(
        &broker,
        dir.path(),
        "events",
        &(0..20_000).map(event).collect::<Vec<_>>(),
    );
    let loader = LoaderProcess::start(&broker, &config, &[], &dir.path().join("load.log"));
    let stored = |w: &Warehouse| w.count("SELECT COALESCE(SUM(next_offset), 0) FROM relay_offsets");
    wait_until(
        "first events loaded",
        Duration::from_secs(60),
        || loader.log(),
        || stored(&warehouse) >= 20_000,
    );
    let Warehouse::Postgres(postgres) = &mut warehouse else {
        unreachable!()
    };
    postgres.stop_server();
    produce(
        &broker,
        dir.path(),
        "events",
        &(20_000..40_000).map(event).collect::<Vec<_>>(),
    );
    std::thread::sleep(Duration::from_secs(30));
    postgres.start_server();
    wait_until(
        "everything loaded after the outage",
        Duration::from_secs(120),
        || loader.log(),
        || stored(&warehouse) == 40_000,
    );
    assert_eq!(warehouse.count("SELECT COUNT(*) FROM events"), 40_000);
    assert_eq!(warehouse.count("SELECT COUNT(DISTINCT uuid) FROM events"), 40_000);
    assert!(
        loader.log().contains("warehouse unavailable"),
        "the outage is logged once"
    );
    assert!(loader.log().contains("warehouse available again"));
}

#[test]
fn a_backfill_group_loads_exactly_the_events_from_a_time_on() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let warehouse = Warehouse::sqlite(dir.path());
    produce(&broker, dir.path(), "events", &(0..3000).map(event).collect::<Vec<_>>());
    std::thread::sleep(Duration::from_millis(1100));
    let cut_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    std::thread::sleep(Duration::from_millis(50));
    produce(
        &broker,
        dir.path(),
        "events",
        &(3000..5000).map(event).collect::<Vec<_>>(),
    );
    let config = write_config(dir.path(), &warehouse, "events", "events");
    let main = LoaderProcess::start(&broker, &config, &[], &dir.path().join("main.log"));
    let cut = relay_client::time::format_rfc3339_micros(cut_ms * 1000);
    let backfill = LoaderProcess::start(
        &broker,
        &config,
        &[
            "--group",
            "backfill-1",
            "--table",
            "events_backfill",
            "--from",
            &format!("time:{cut}"),
        ],
        &dir.path().join("backfill.log"),
    );
    wait_until(
        "main loader done",
        Duration::from_secs(120),
        || main.log(),
        || warehouse.count("SELECT COUNT(*) FROM events") == 5000,
    );
    wait_until(
        "backfill done",
        Duration::from_secs(120),
        || backfill.log(),
        || {
            warehouse.count("SELECT COALESCE(SUM(next_offset), 0) FROM relay_offsets WHERE group_id = 'backfill-1'")
                == 5000
        },
    );
    assert_eq!(
        warehouse.count("SELECT COUNT(*) FROM events_backfill"),
        2000,
        "exactly the events from the cut on"
    );
    assert_eq!(
        warehouse.count(&format!(
            "SELECT COUNT(*) FROM events_backfill WHERE uuid = '{}'",
            uuid_of(3000)
        )),
        1
    );
    assert_eq!(
        warehouse.count(&format!(
            "SELECT COUNT(*) FROM events_backfill WHERE uuid = '{}'",
            uuid_of(2999)
        )),
        0
    );
    assert_eq!(
        warehouse.query("SELECT COUNT(*) FROM events_backfill WHERE relay_offset < 3000"),
        "0"
    );
}

fn a_paused_loader_cannot_commit_for_partitions_it_lost(warehouse: Warehouse, dir: &Path) {
    let broker = BrokerProcess::start(dir, "");
    create_topic(&broker, "shared", 4);
    let config = write_config(dir, &warehouse, "shared", "shared");
    let mut first = LoaderProcess::start(&broker, &config, &[], &dir.join("first.log"));
    let second = LoaderProcess::start(&broker, &config, &[], &dir.join("second.log"));
    produce(&broker, dir, "shared", &(0..20_000).map(event).collect::<Vec<_>>());
    let stored = || warehouse.count("SELECT COALESCE(SUM(next_offset), 0) FROM relay_offsets");
    wait_until(
        "the first events loaded",
        Duration::from_secs(60),
        || first.log(),
        || stored() >= 20_000,
    );
    // Pause the first loader past its 10 s session: its partitions move to the second.
    let pid = first.pid().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    produce(&broker, dir, "shared", &(20_000..40_000).map(event).collect::<Vec<_>>());
    std::thread::sleep(Duration::from_secs(14));
    Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    produce(&broker, dir, "shared", &(40_000..60_000).map(event).collect::<Vec<_>>());
    wait_until(
        "everything loaded",
        Duration::from_secs(120),
        || format!("{}\n{}", first.log(), second.log()),
        || stored() == 60_000,
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(warehouse.count("SELECT COUNT(*) FROM shared"), 60_000);
    assert_eq!(warehouse.count("SELECT COUNT(DISTINCT uuid) FROM shared"), 60_000);
    assert_eq!(stored(), 60_000, "offsets never moved past or behind the rows");
    let beyond = warehouse.count(
        "SELECT COUNT(*) FROM shared e JOIN relay_offsets o ON o.group_id = 'loader-shared' AND o.partition = e.relay_partition \
         WHERE e.relay_offset >= o.next_offset",
    );
    assert_eq!(beyond, 0);
    assert!(second.log().contains("joined group"), "{}", second.log());
    first.kill9();
}

#[test]
fn sqlite_a_paused_loader_cannot_commit_for_partitions_it_lost() {
    let dir = tempfile::tempdir().unwrap();
    a_paused_loader_cannot_commit_for_partitions_it_lost(Warehouse::sqlite(dir.path()), dir.path());
}

#[test]
fn postgres_a_paused_loader_cannot_commit_for_partitions_it_lost() {
    let Some(postgres) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    a_paused_loader_cannot_commit_for_partitions_it_lost(Warehouse::Postgres(postgres), dir.path());
}

/// A loader started before anything was ever sent (its topic does not exist
/// yet) loads the events once the topic appears, without a restart.
#[test]
fn a_loader_started_before_its_topic_exists_loads_it_once_created() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = Warehouse::sqlite(dir.path());
    let broker = BrokerProcess::start(dir.path(), "default_partitions = 3");
    let config = write_config(dir.path(), &warehouse, "late", "late");
    let loader = LoaderProcess::start(&broker, &config, &[], &dir.path().join("load.log"));
    std::thread::sleep(Duration::from_secs(2)); // joined, with nothing to own
    let lines: Vec<String> = (0..300).map(event).collect();
    produce(&broker, dir.path(), "late", &lines);
    wait_until(
        "300 rows from a topic created after the loader started",
        Duration::from_secs(60),
        || loader.log(),
        || warehouse.count("SELECT count(*) FROM late") == 300,
    );
    assert_eq!(
        warehouse.count("SELECT COALESCE(SUM(next_offset), 0) FROM relay_offsets WHERE group_id = 'loader-late'"),
        300
    );
}
