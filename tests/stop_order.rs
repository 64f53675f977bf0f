//! Stopping in data order: `relay up` told to stop (SIGTERM, as Ctrl-C)
//! while its generator writes stops the generator, lets the senders drain
//! what they read, lets the loaders load what the topic then holds, and
//! only then the broker: every line written is loaded when it exits. A
//! one-shot backfill (`relay load --until-end`) exits 0 once caught up,
//! saying how many rows were new and how many already present. A loader
//! whose broker is gone stops at once; one whose warehouse is down stops at
//! once too, saying its batch is loaded again after the restart.

mod support;

use std::io::Write;
use std::process::Command;
use std::time::Duration;
use support::postgres::Postgres;
use support::warehouse::Warehouse;
use support::{relay_binary, run_with_timeout, wait_until, BrokerProcess, RelayProcess};

#[test]
fn relay_up_stopped_mid_stream_has_loaded_every_line_written_when_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let warehouse = Warehouse::sqlite(dir.path());
    let config = dir.path().join("up.toml");
    std::fs::write(
        &config,
        format!(
            r#"[broker]
listen = "127.0.0.1:0"
data_dir = "{data}"

[[send]]
topic = "events"
paths = ["{logs}/*.jsonl*"]
state_dir = "{state}"

[[load]]
topic = "events"
group = "up-loader"
warehouse = "{warehouse}"
table = "events"
batch_wait_ms = 200

[[load.columns]]
name = "uuid"
pointer = "/uuid"
type = "text"
"#,
            data = dir.path().join("data").display(),
            logs = logs.display(),
            state = dir.path().join("state").display(),
            warehouse = warehouse.url(),
        ),
    )
    .unwrap();
    let mut up = RelayProcess::start(
        vec![
            "up".into(),
            "--config".into(),
            config.display().to_string(),
            "--gen-events".into(),
            "3000".into(),
        ],
        &dir.path().join("up.log"),
    );
    let flowing = wait_until(Duration::from_secs(30), || {
        warehouse.count("select count(*) from events") > 0
    });
    assert!(flowing, "{}", up.log());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(up.terminate(), Some(0), "{}", up.log());
    let mut written = 0;
    for entry in std::fs::read_dir(&logs).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        written += text.lines().count() as i64;
    }
    assert!(written > 0);
    assert_eq!(
        warehouse.count("select count(*) from events"),
        written,
        "lines written and not loaded at exit\n{}",
        up.log()
    );
}

#[test]
fn a_backfill_with_until_end_exits_once_everything_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let file = dir.path().join("events.jsonl");
    let mut out = std::fs::File::create(&file).unwrap();
    for n in 0..3000 {
        writeln!(out, r#"{{"uuid":"e-{n}"}}"#).unwrap();
    }
    drop(out);
    let produced = run_with_timeout(
        Command::new(relay_binary())
            .args(["produce", "--topic", "backfill", file.to_str().unwrap()])
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(60),
    );
    assert!(produced.status.success());
    let warehouse = Warehouse::sqlite(dir.path());
    let output = run_with_timeout(
        Command::new(relay_binary()).args([
            "load",
            "--broker",
            &broker.address,
            "--topic",
            "backfill",
            "--group",
            "once",
            "--warehouse",
            &warehouse.url(),
            "--table",
            "events",
            "--until-end",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(warehouse.count("select count(*) from events"), 3000);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("3000 rows loaded, 0 already present"), "{said}");
    // The same records again under another group: all of them were there.
    let again = run_with_timeout(
        Command::new(relay_binary()).args([
            "load",
            "--broker",
            &broker.address,
            "--topic",
            "backfill",
            "--group",
            "again",
            "--warehouse",
            &warehouse.url(),
            "--table",
            "events",
            "--until-end",
        ]),
        Duration::from_secs(60),
    );
    let said = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(0), "{said}");
    assert!(said.contains("0 rows loaded, 3000 already present"), "{said}");
    assert_eq!(warehouse.count("select count(*) from events"), 3000);
}

/// A loader whose broker is gone has nothing in flight: SIGTERM stops it at
/// once (its group-join retry watches the stop), with exit 0, and its stop
/// line names no broker (it runs none).
#[test]
fn a_loader_whose_broker_is_gone_stops_at_once_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), "");
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, "{\"uuid\":\"e-1\"}\n{\"uuid\":\"e-2\"}\n").unwrap();
    let produced = run_with_timeout(
        Command::new(relay_binary())
            .args(["produce", "--topic", "events", file.to_str().unwrap()])
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(60),
    );
    assert!(produced.status.success());
    let warehouse = Warehouse::sqlite(dir.path());
    let mut loader = RelayProcess::start(
        [
            "load",
            "--broker",
            &broker.address,
            "--topic",
            "events",
            "--group",
            "gone",
            "--warehouse",
            &warehouse.url(),
            "--table",
            "events",
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect(),
        &dir.path().join("load.log"),
    );
    let loaded = wait_until(Duration::from_secs(30), || {
        warehouse.count("select count(*) from events") == 2
    });
    assert!(loaded, "{}", loader.log());
    broker.kill9();
    let retrying = wait_until(Duration::from_secs(30), || {
        loader.log().contains("joining the group failed; retrying")
    });
    assert!(retrying, "{}", loader.log());
    let asked = std::time::Instant::now();
    let code = loader.terminate();
    let took = asked.elapsed();
    let log = loader.log();
    assert_eq!(code, Some(0), "{log}");
    assert!(took < Duration::from_secs(5), "took {took:?} to stop\n{log}");
    assert!(log.contains("stopping: senders, loaders and helpers"), "{log}");
    assert!(!log.contains("then the broker"), "{log}");
}

/// A loader retrying a batch while its warehouse is down stops at once on
/// SIGTERM: exit 3 (the warehouse cannot be reached), the batch in hand
/// loaded again after the restart.
#[test]
fn a_loader_whose_warehouse_is_down_stops_at_once_on_sigterm() {
    let Some(mut postgres) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let produce = |name: &str| {
        let file = dir.path().join(name);
        std::fs::write(&file, format!("{{\"uuid\":\"{name}\"}}\n")).unwrap();
        let produced = run_with_timeout(
            Command::new(relay_binary())
                .args(["produce", "--topic", "events", file.to_str().unwrap()])
                .env("RELAY_BROKER", &broker.address),
            Duration::from_secs(60),
        );
        assert!(produced.status.success());
    };
    produce("first");
    let mut loader = RelayProcess::start(
        [
            "load",
            "--broker",
            &broker.address,
            "--topic",
            "events",
            "--group",
            "down",
            "--warehouse",
            &postgres.url(),
            "--table",
            "events",
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect(),
        &dir.path().join("load.log"),
    );
    let loaded = wait_until(Duration::from_secs(30), || {
        postgres.try_query("select count(*) from events").as_deref() == Some("1")
    });
    assert!(loaded, "{}", loader.log());
    postgres.stop_server();
    produce("second");
    let retrying = wait_until(Duration::from_secs(30), || {
        loader.log().contains("warehouse unavailable; retrying the same batch")
    });
    assert!(retrying, "{}", loader.log());
    let asked = std::time::Instant::now();
    let code = loader.terminate();
    let took = asked.elapsed();
    let log = loader.log();
    assert_eq!(code, Some(3), "{log}");
    assert!(took < Duration::from_secs(5), "took {took:?} to stop\n{log}");
    assert!(log.contains("loaded again after the restart"), "{log}");
}
