//! Records deleted before they were loaded are never skipped silently: a
//! loader down longer than retention, restarted, writes a `relay_gaps` row
//! (group, topic, partition, first and last missing offset) in the same
//! transaction as its offset jump, logs ERROR and counts the loss; with
//! `on_gap = "stop"` it refuses to move past the hole (exit 1). And the
//! warehouse is the only truth of a loader's position: a new warehouse for
//! a group whose offsets the broker already holds starts at `from`.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::warehouse::Warehouse;
use support::{relay_binary, run_with_timeout, wait_until, BrokerProcess, RelayProcess};

const TOPIC_SETTINGS: &str = "retention_check_interval_ms = 200
[broker.topics.gappy]
partitions = 1
segment_bytes = 16384
retention_bytes = 65536
";

fn produce(broker: &BrokerProcess, dir: &Path, name: &str, range: std::ops::Range<u64>) {
    let file = dir.join(format!("{name}.jsonl"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    for n in range {
        writeln!(out, r#"{{"uuid":"event-{n}","pad":"{}"}}"#, "p".repeat(80)).unwrap();
    }
    drop(out);
    let output = run_with_timeout(
        Command::new(relay_binary())
            .args(["produce", "--topic", "gappy", file.to_str().unwrap()])
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(120),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

fn loader(broker: &BrokerProcess, dir: &Path, warehouse: &Warehouse, extra: &str) -> RelayProcess {
    let config = dir.join("load.toml");
    std::fs::write(
        &config,
        format!(
            "[[load]]\ntopic = \"gappy\"\ngroup = \"gap-loader\"\nwarehouse = \"{}\"\ntable = \"events\"\n\
             batch_records_max = 500\nbatch_wait_ms = 100\n{extra}\n\n[[load.columns]]\nname = \"uuid\"\npointer = \"/uuid\"\ntype = \"text\"\n",
            warehouse.url()
        ),
    )
    .unwrap();
    RelayProcess::start(
        vec![
            "load".into(),
            "--broker".into(),
            broker.address.clone(),
            "--config".into(),
            config.display().to_string(),
        ],
        &dir.join("load.log"),
    )
}

/// The partition's first offset, from `relay topics describe`.
fn log_start(broker: &BrokerProcess) -> i64 {
    let output = run_with_timeout(
        Command::new(relay_binary())
            .args(["consume", "--topic", "gappy", "--max", "1", "--format", "json"])
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(60),
    );
    let line = String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
    value["offset"].as_i64().unwrap_or(-1)
}

/// Loads 1,000 events, stops the loader, produces 20,000 more (about 2.4 MB
/// against a 64 KiB retention), and waits until the first 1,000 are gone.
fn loader_outlived_by_retention(dir: &Path, warehouse: &Warehouse, extra: &str) -> (BrokerProcess, i64) {
    let broker = BrokerProcess::start(dir, TOPIC_SETTINGS);
    produce(&broker, dir, "first", 0..1000);
    let mut first = loader(&broker, dir, warehouse, extra);
    let loaded = wait_until(Duration::from_secs(30), || {
        warehouse.count("select count(*) from events") >= 1000
    });
    assert!(loaded, "{}", first.log());
    first.kill9();
    produce(&broker, dir, "second", 1000..21_000);
    let deleted = wait_until(Duration::from_secs(30), || log_start(&broker) > 1000);
    assert!(
        deleted,
        "retention did not delete past offset 1000 (start {})",
        log_start(&broker)
    );
    let start = log_start(&broker);
    (broker, start)
}

#[test]
fn a_loader_down_longer_than_retention_records_the_gap_and_loads_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = Warehouse::sqlite(dir.path());
    let (broker, start) = loader_outlived_by_retention(dir.path(), &warehouse, "");
    let second = loader(&broker, dir.path(), &warehouse, "");
    let caught_up = wait_until(Duration::from_secs(60), || {
        warehouse.count("select coalesce(max(next_offset), 0) from relay_offsets") >= 21_000
    });
    assert!(caught_up, "{}", second.log());
    assert_eq!(warehouse.count("select count(*) from relay_gaps"), 1);
    assert_eq!(warehouse.count("select first_offset from relay_gaps"), 1000);
    // Retention may have moved on while the loader read: the hole is what
    // the loader found missing, at least up to the start seen above.
    let last = warehouse.count("select last_offset from relay_gaps");
    assert!(last >= start - 1, "gap ends at {last}, the log started at {start}");
    assert_eq!(warehouse.count("select records from relay_gaps"), last - 1000 + 1);
    assert_eq!(
        warehouse.count("select count(*) from relay_gaps where acknowledged_at is null"),
        1
    );
    // Every record is loaded, or accounted for in the gap.
    assert_eq!(
        warehouse.count("select count(*) from events") + (last - 1000 + 1),
        21_000
    );
    // The WARN follows the transaction that recorded the gap: wait for it too.
    let warned = wait_until(Duration::from_secs(10), || {
        second.log().contains("recorded in relay_gaps")
    });
    assert!(warned, "{}", second.log());
    // `relay lag` fails while the gap is unacknowledged, and says how to acknowledge it.
    let lag = |broker: &BrokerProcess| {
        run_with_timeout(
            Command::new(relay_binary())
                .args(["lag", "--group", "gap-loader"])
                .env("RELAY_BROKER", &broker.address),
            Duration::from_secs(60),
        )
    };
    let failing = wait_until(Duration::from_secs(20), || lag(&broker).status.code() == Some(1));
    let output = lag(&broker);
    assert!(
        failing,
        "relay lag does not fail on the gap: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("UPDATE relay_gaps SET acknowledged_at"));
    let Warehouse::Sqlite(path) = &warehouse else {
        unreachable!()
    };
    rusqlite::Connection::open(path)
        .unwrap()
        .execute(
            "UPDATE relay_gaps SET acknowledged_at = CURRENT_TIMESTAMP WHERE group_id = 'gap-loader'",
            [],
        )
        .unwrap();
    produce(&broker, dir.path(), "third", 21_000..21_010);
    let cleared = wait_until(Duration::from_secs(30), || lag(&broker).status.code() == Some(0));
    assert!(
        cleared,
        "relay lag still fails after the acknowledgement:\n{}",
        second.log()
    );
}

#[test]
fn with_on_gap_stop_the_loader_refuses_to_move_past_deleted_records() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = Warehouse::sqlite(dir.path());
    let (broker, _) = loader_outlived_by_retention(dir.path(), &warehouse, "on_gap = \"stop\"");
    let mut second = loader(&broker, dir.path(), &warehouse, "on_gap = \"stop\"");
    let stopped = wait_until(Duration::from_secs(30), || {
        second.child.as_mut().unwrap().try_wait().unwrap().is_some()
    });
    assert!(stopped, "the loader kept running:\n{}", second.log());
    let code = second.child.as_mut().unwrap().try_wait().unwrap().unwrap().code();
    assert_eq!(code, Some(1), "{}", second.log());
    assert!(second.log().contains("on_gap = \"stop\""), "{}", second.log());
    assert_eq!(warehouse.count("select next_offset from relay_offsets"), 1000);
    assert_eq!(warehouse.count("select count(*) from relay_gaps"), 0);
}

#[test]
fn a_new_warehouse_starts_at_from_even_when_the_broker_holds_offsets_for_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    produce(&broker, dir.path(), "all", 0..2000);
    let first = Warehouse::sqlite(&dir.path().join("one"));
    std::fs::create_dir_all(dir.path().join("one")).unwrap();
    let mut loading = loader(&broker, dir.path(), &first, "");
    let loaded = wait_until(Duration::from_secs(30), || {
        first.count("select count(*) from events") >= 2000
    });
    assert!(loaded, "{}", loading.log());
    // The group's offsets are committed on the broker (mirrored for relay lag).
    loading.terminate();
    let second = Warehouse::sqlite(&dir.path().join("two"));
    std::fs::create_dir_all(dir.path().join("two")).unwrap();
    let again = loader(&broker, dir.path(), &second, "");
    let loaded = wait_until(Duration::from_secs(30), || {
        second.count("select count(*) from events") >= 2000
    });
    assert!(
        loaded,
        "the new warehouse got {} of 2000\n{}",
        second.count("select count(*) from events"),
        again.log()
    );
}

#[test]
fn a_loader_from_latest_that_retention_ran_past_resumes_at_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = Warehouse::sqlite(dir.path());
    let (broker, start) = loader_outlived_by_retention(dir.path(), &warehouse, "");
    // Out of range at 1000: `from` is for partitions without a warehouse
    // offset; this one goes to the log's start (not to the end, past
    // records the log still holds), and only the deleted ones are a gap.
    let second = loader(&broker, dir.path(), &warehouse, "from = \"latest\"");
    let reset = wait_until(Duration::from_secs(30), || second.log().contains("offset out of range"));
    assert!(reset, "{}", second.log());
    produce(&broker, dir.path(), "third", 21_000..21_100);
    let caught_up = wait_until(Duration::from_secs(60), || {
        warehouse.count("select coalesce(max(next_offset), 0) from relay_offsets") >= 21_100
    });
    assert!(caught_up, "{}", second.log());
    let gaps = warehouse.column("select first_offset || '..' || last_offset from relay_gaps");
    let lost = warehouse.count("select coalesce(sum(records), 0) from relay_gaps");
    assert_eq!(
        warehouse.count("select count(*) from events") + lost,
        21_100,
        "every offset is loaded or in relay_gaps: gaps {gaps:?}\n{}",
        second.log()
    );
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(warehouse.count("select first_offset from relay_gaps"), 1000);
    let last = warehouse.count("select last_offset from relay_gaps");
    // Retention goes on deleting until the loader's fetch finds the hole, so
    // the gap may end well past `start`; it must stop short of the end (a
    // reset to `latest` would have skipped the records the log still held).
    assert!(
        last < 21_000 - 1 && last >= start - 1,
        "the gap {gaps:?} is what retention deleted (the log started at {start}), not the whole jump to the end"
    );
}

/// Bytes of a batch of `records` as `raw_client::batch` builds them.
fn batch_bytes(records: usize) -> usize {
    support::raw_client::batch(None, records).len()
}

#[test]
fn a_corrupt_batch_the_broker_sets_aside_is_a_gap_for_the_loader() {
    use support::raw_client::{self, RawConnection};
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), "");
    let mut connection = RawConnection::connect(&broker.address);
    raw_client::create_topic(&mut connection, "rotten", 1);
    for _ in 0..3 {
        let (code, _) = raw_client::produce(&mut connection, "rotten", 0, raw_client::batch(None, 10), 10);
        assert_eq!(code, 0);
    }
    drop(connection);
    broker.kill9();
    // Bit rot inside the second batch's records (offsets 10..=19), after
    // its header: its CRC no longer matches.
    let segment = broker.data_dir.join("rotten-0").join(format!("{:020}.log", 0));
    let mut bytes = std::fs::read(&segment).unwrap();
    let position = batch_bytes(10) + 70;
    bytes[position] ^= 0x55;
    std::fs::write(&segment, &bytes).unwrap();
    broker.restart();
    let warehouse = Warehouse::sqlite(dir.path());
    let output = run_with_timeout(
        Command::new(relay_binary()).args([
            "load",
            "--broker",
            &broker.address,
            "--topic",
            "rotten",
            "--group",
            "g",
            "--warehouse",
            &warehouse.url(),
            "--table",
            "events",
            "--format",
            "text",
            "--until-end",
        ]),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}\n{}", broker.log());
    assert_eq!(warehouse.count("select count(*) from events"), 20, "{stderr}");
    assert_eq!(
        warehouse.column("select first_offset || '..' || last_offset || ':' || records from relay_gaps"),
        vec!["10..19:10".to_owned()],
        "{stderr}"
    );
    assert!(stderr.contains("records the broker no longer serves"), "{stderr}");
}
