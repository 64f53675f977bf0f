//! Events dropped on purpose (`discard = true` routes) through `relay load`
//! against `relay broker`: counted in their own counter, apart from the
//! unrouted (which the `RelayRecordsUnrouted` alert reads), never loaded or
//! rejected, and told in one INFO line at once, then at most one a minute.
//! A route without a table that does not say `discard = true` is refused.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::warehouse::Warehouse;
use support::{http_get, metric_sum, relay_binary, run_with_timeout, wait_until, BrokerProcess, RelayProcess};

/// Kinds in turn: logins are loaded, heartbeats discarded, the rest unrouted.
const KINDS: [&str; 4] = ["login", "heartbeat", "purchase", "debug"];

fn produce(broker: &BrokerProcess, dir: &Path, topic: &str, count: u64) {
    let file = dir.join("events.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    for n in 0..count {
        writeln!(out, r#"{{"uuid":"event-{n}","type":"{}"}}"#, KINDS[(n % 4) as usize]).unwrap();
    }
    drop(out);
    let output = run_with_timeout(
        Command::new(relay_binary())
            .args(["produce", "--topic", topic, file.to_str().unwrap()])
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(120),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

fn config(dir: &Path, warehouse: &Warehouse, discard_route: &str) -> String {
    let config = dir.join("load.toml");
    std::fs::write(
        &config,
        format!(
            "[[load]]\ntopic = \"games\"\ngroup = \"g\"\nwarehouse = \"{}\"\nbatch_wait_ms = 100\n\n\
             [[load.route]]\ntable = \"sessions\"\nwhen = {{ pointer = \"/type\", equals = \"login\" }}\n\n\
             [[load.route]]\n{discard_route}when = {{ pointer = \"/type\", equals = \"heartbeat\" }}\n",
            warehouse.url()
        ),
    )
    .unwrap();
    config.display().to_string()
}

/// The sum of `field=N` over the log's "records skipped" lines, and their number.
fn skipped_in_log(log: &str, field: &str) -> (u64, usize) {
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("records skipped")).collect();
    let sum = lines
        .iter()
        .filter_map(|line| line.split(&format!("{field}=")).nth(1))
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u64>().ok())
        .sum();
    (sum, lines.len())
}

#[test]
fn discarded_events_are_counted_apart_from_the_unrouted_and_told_once_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    produce(&broker, dir.path(), "games", 400);
    let warehouse = Warehouse::sqlite(dir.path());
    let config = config(dir.path(), &warehouse, "discard = true\n");
    let args = [
        "load",
        "--broker",
        &broker.address,
        "--config",
        &config,
        "--metrics",
        "127.0.0.1:0",
    ];
    let mut loader = RelayProcess::start(
        args.iter().map(|s| s.to_string()).collect(),
        &dir.path().join("load.log"),
    );
    let metrics = loader.metrics_address(1);
    let counted = |name: &str| {
        http_get(&metrics, "/metrics").and_then(|(_, body)| metric_sum(&body, name, &[("table", "sessions")]))
    };
    let all_counted = wait_until(Duration::from_secs(60), || {
        counted("relay_loader_records_unrouted_total") == Some(200.0)
            && counted("relay_loader_records_discarded_total") == Some(100.0)
    });
    assert!(
        all_counted,
        "unrouted {:?}, discarded {:?}\n{}",
        counted("relay_loader_records_unrouted_total"),
        counted("relay_loader_records_discarded_total"),
        loader.log()
    );
    assert_eq!(warehouse.count("SELECT COUNT(*) FROM sessions"), 100);
    assert_eq!(warehouse.count("SELECT COUNT(*) FROM relay_rejects"), 0);
    assert_eq!(loader.terminate(), Some(0), "{}", loader.log());
    let log = loader.log();
    let (unrouted, lines) = skipped_in_log(&log, "unrouted");
    let (discarded, _) = skipped_in_log(&log, "discarded");
    assert_eq!((unrouted, discarded), (200, 100), "{log}");
    assert!(
        (1..=2).contains(&lines),
        "one line at once, the rest at the stop (all within a minute): {lines}\n{log}"
    );
}

#[test]
fn a_route_without_a_table_must_say_discard() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let warehouse = Warehouse::sqlite(dir.path());
    let config = config(dir.path(), &warehouse, "");
    let output = run_with_timeout(
        Command::new(relay_binary()).args(["load", "--broker", &broker.address, "--config", &config, "--until-end"]),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no table") && stderr.contains("discard = true"),
        "{stderr}"
    );
}
