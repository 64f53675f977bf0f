//! `relay status` as the verdict, through the binary against real roles:
//! its first line is OK, DEGRADED or DOWN, then one reason per problem
//! naming the role and what, the same as the roles' /health; the exit code
//! says which (0, 1, 3); `--format json` carries the same for scripts, with
//! each group's lag in records and in seconds. Faults driven: the
//! warehouse stopped (PostgreSQL), records no route takes, a sender path in
//! a missing directory, the broker down with a sender's backlog on disk.

mod support;

use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::postgres::Postgres;
use support::warehouse::Warehouse;
use support::{http_get, metric_sum, relay_binary, run_with_timeout, wait_until, BrokerProcess, RelayProcess};

/// How long one `relay status` may take (a look, a 1 s window, a look).
const STATUS_LIMIT: Duration = Duration::from_secs(60);

/// `relay status --broker ADDRESS` plus `args`: exit code, stdout, stderr.
fn status(address: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let output = run_with_timeout(
        Command::new(relay_binary())
            .args(["status", "--broker", address, "--interval-ms", "200"])
            .args(args),
        STATUS_LIMIT,
    );
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The same, `--format json`, parsed.
fn status_json(address: &str, args: &[&str]) -> (Option<i32>, Value) {
    let mut with_json = vec!["--format", "json"];
    with_json.extend_from_slice(args);
    let (code, stdout, stderr) = status(address, &with_json);
    let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
    (code, value)
}

fn reasons(json: &Value) -> Vec<String> {
    json["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

fn produce(broker: &BrokerProcess, dir: &Path, topic: &str, lines: &[String]) {
    let file = dir.join(format!("{topic}-produce.jsonl"));
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let output = run_with_timeout(
        Command::new(relay_binary())
            .args(["produce", "--broker", &broker.address, "--topic", topic])
            .arg(&file),
        Duration::from_secs(60),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

fn events(kind: &str, range: std::ops::Range<u64>) -> Vec<String> {
    range
        .map(|n| format!(r#"{{"uuid":"event-{kind}-{n}","type":"{kind}","n":{n}}}"#))
        .collect()
}

/// A `relay load --config` of `section` serving /metrics and /health.
fn loader(dir: &Path, broker: &BrokerProcess, section: &str) -> RelayProcess {
    let config = dir.join("load.toml");
    std::fs::write(&config, section).unwrap();
    let args = [
        "load",
        "--broker",
        &broker.address,
        "--config",
        config.to_str().unwrap(),
        "--metrics",
        "127.0.0.1:0",
    ];
    RelayProcess::start(args.iter().map(|s| s.to_string()).collect(), &dir.join("load.log"))
}

fn metric(address: &str, name: &str) -> Option<f64> {
    http_get(address, "/metrics").and_then(|(_, body)| metric_sum(&body, name, &[]))
}

/// PostgreSQL stopped under a running loader: DEGRADED, exit 1, the
/// loader's /health reason; the group's lag in records and in seconds.
#[test]
fn a_stopped_warehouse_is_degraded_with_the_loaders_reason() {
    let Some(postgres) = Postgres::start() else { return };
    let mut warehouse = Warehouse::Postgres(postgres);
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    produce(&broker, dir.path(), "events", &events("a", 0..50));
    let section = format!(
        "[[load]]\ntopic = \"events\"\ngroup = \"events-loader\"\nwarehouse = \"{}\"\ntable = \"events\"\n\
         batch_wait_ms = 100\nretry_backoff_max_ms = 1000\n",
        warehouse.url()
    );
    let loader = loader(dir.path(), &broker, &section);
    let metrics = loader.metrics_address(1);
    let loaded = wait_until(Duration::from_secs(30), || {
        metric(&metrics, "relay_loader_rows_loaded_total") == Some(50.0)
            && metric(&metrics, "relay_loader_lag") == Some(0.0)
    });
    assert!(loaded, "{}", loader.log());
    let (code, screen, stderr) = status(&broker.address, &["--scrape", &metrics]);
    assert_eq!(screen.lines().next(), Some("OK"), "{screen}{stderr}");
    assert_eq!(code, Some(0), "{screen}{stderr}");

    let Warehouse::Postgres(postgres) = &mut warehouse else {
        unreachable!()
    };
    postgres.stop_server();
    produce(&broker, dir.path(), "events", &events("a", 50..70));
    let unhealthy = wait_until(Duration::from_secs(30), || {
        http_get(&metrics, "/health").is_some_and(|(status, _)| status == 503)
    });
    assert!(unhealthy, "{}", loader.log());
    // The 20 waiting records get older: their age is the lag in time.
    std::thread::sleep(Duration::from_secs(2));
    let (code, screen, stderr) = status(&broker.address, &["--scrape", &metrics]);
    println!("{screen}");
    let mut lines = screen.lines();
    assert_eq!(lines.next(), Some("DEGRADED"), "{screen}{stderr}");
    assert_eq!(
        lines.next(),
        Some("  - loader events: warehouse unavailable; retrying"),
        "{screen}"
    );
    assert_eq!(code, Some(1), "{screen}{stderr}");
    assert!(screen.contains("oldest unloaded"), "{screen}");

    let (code, json) = status_json(&broker.address, &["--scrape", &metrics]);
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(json["verdict"], "DEGRADED", "{json}");
    assert!(
        reasons(&json).contains(&"loader events: warehouse unavailable; retrying".to_owned()),
        "{json}"
    );
    let group = json["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "events-loader")
        .unwrap_or_else(|| panic!("no group events-loader: {json}"));
    assert_eq!(group["lag_records"], 20, "{json}");
    let seconds = group["lag_seconds"]
        .as_f64()
        .unwrap_or_else(|| panic!("no lag in seconds: {json}"));
    assert!((2.0..3600.0).contains(&seconds), "{json}");
    assert_eq!(json["loaders"][0]["table"], "events", "{json}");
    postgres.start_server();
}

/// Records that no route takes (no default table): DEGRADED with the
/// count; counted in the JSON's loaders.
#[test]
fn unrouted_records_are_degraded() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let warehouse = Warehouse::sqlite(dir.path());
    let section = format!(
        "[[load]]\ntopic = \"games\"\ngroup = \"games-loader\"\nwarehouse = \"{}\"\nbatch_wait_ms = 100\n\n\
         [[load.route]]\ntable = \"sessions\"\nwhen = {{ pointer = \"/type\", equals = \"login\" }}\n\n\
         [[load.route.columns]]\nname = \"uuid\"\npointer = \"/uuid\"\ntype = \"text\"\n",
        warehouse.url()
    );
    produce(&broker, dir.path(), "games", &events("login", 0..10));
    let loader = loader(dir.path(), &broker, &section);
    let metrics = loader.metrics_address(1);
    produce(&broker, dir.path(), "games", &events("match_start", 0..7));
    let skipped = wait_until(Duration::from_secs(30), || {
        metric(&metrics, "relay_loader_records_unrouted_total") == Some(7.0)
    });
    assert!(skipped, "{}", loader.log());
    let (code, screen, stderr) = status(&broker.address, &["--scrape", &metrics]);
    assert_eq!(screen.lines().next(), Some("DEGRADED"), "{screen}{stderr}");
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("  - loader sessions: 7 record(s) unrouted")),
        "{screen}"
    );
    assert_eq!(code, Some(1), "{screen}{stderr}");
    let (_, json) = status_json(&broker.address, &["--scrape", &metrics]);
    assert_eq!(json["verdict"], "DEGRADED", "{json}");
    assert_eq!(json["loaders"][0]["unrouted"], 7.0, "{json}");
    assert_eq!(json["loaders"][0]["table"], "sessions", "{json}");
}

/// A sender whose path names a directory that does not exist: its /health
/// reason, under the sender's name.
#[test]
fn a_sender_path_in_a_missing_directory_is_degraded() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let pattern = dir.path().join("missing/*.log").display().to_string();
    let state = dir.path().join("state").display().to_string();
    let args = [
        "send",
        "--broker",
        &broker.address,
        "--topic",
        "app",
        "--path",
        &pattern,
        "--state-dir",
        &state,
        "--metrics",
        "127.0.0.1:0",
    ];
    let sender = RelayProcess::start(
        args.iter().map(|s| s.to_string()).collect(),
        &dir.path().join("send.log"),
    );
    let metrics = sender.metrics_address(1);
    let unhealthy = wait_until(Duration::from_secs(20), || {
        http_get(&metrics, "/health").is_some_and(|(status, _)| status == 503)
    });
    assert!(unhealthy, "{}", sender.log());
    let (code, screen, stderr) = status(&broker.address, &["--scrape", &metrics]);
    assert_eq!(screen.lines().next(), Some("DEGRADED"), "{screen}{stderr}");
    let reason = format!("  - sender app: {pattern}");
    assert!(screen.lines().any(|l| l.starts_with(&reason)), "{screen}");
    assert_eq!(code, Some(1), "{screen}{stderr}");
    let (_, json) = status_json(&broker.address, &["--scrape", &metrics]);
    assert!(
        reasons(&json)
            .iter()
            .any(|r| r.starts_with(&format!("sender app: {pattern}"))),
        "{json}"
    );
}

/// The broker down: DOWN, exit 3, and the sender's backlog read from its
/// state directory (what was appended after the last acknowledgement).
#[test]
fn the_broker_down_shows_the_senders_backlog_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), "");
    let log = dir.path().join("app.log");
    let line = |n: u64| format!("line-{n:04}\n");
    std::fs::write(&log, (0..100).map(line).collect::<String>()).unwrap();
    let state = dir.path().join("state");
    let args = [
        "send",
        "--broker",
        &broker.address,
        "--topic",
        "app",
        "--path",
        log.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let mut sender = RelayProcess::start(
        args.iter().map(|s| s.to_string()).collect(),
        &dir.path().join("send.log"),
    );
    let acked = wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(state.join("registry")).is_ok_and(|r| r.contains("1000"))
    });
    assert!(acked, "{}", sender.log());
    sender.terminate();
    let address = broker.address.clone();
    broker.kill9();
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all((100..130).map(line).collect::<String>().as_bytes())
        .unwrap();
    drop(file);

    let state_arg = state.to_str().unwrap();
    let (code, screen, stderr) = status(&address, &["--sender-state", state_arg]);
    let mut lines = screen.lines();
    assert_eq!(lines.next(), Some("DOWN"), "{screen}{stderr}");
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with(&format!("  - broker {address} unreachable"))),
        "{screen}"
    );
    let row = screen
        .lines()
        .find(|l| l.starts_with(state_arg))
        .unwrap_or_else(|| panic!("no backlog row:\n{screen}"));
    assert_eq!(
        row.split_whitespace().skip(1).collect::<Vec<_>>(),
        ["1", "300", "B", "0"],
        "{screen}"
    );
    assert_eq!(code, Some(3), "{screen}{stderr}");

    let (code, json) = status_json(&address, &["--sender-state", state_arg]);
    assert_eq!(code, Some(3), "{json}");
    assert_eq!(json["verdict"], "DOWN", "{json}");
    assert_eq!(json["broker_reachable"], false, "{json}");
    assert_eq!(json["sender_backlog"][0]["files"], 1, "{json}");
    assert_eq!(json["sender_backlog"][0]["bytes"], 300, "{json}");
}
