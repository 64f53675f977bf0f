//! docs/operations.md against what ships, so the guide cannot drift:
//!
//! - its metrics tables name exactly the metrics the code defines (every
//!   `const ...: &str = "relay_<role>_..."` in the crates' sources), and
//!   every family a running `relay up` serves on `/metrics`;
//! - its alert table names exactly the alerts of
//!   `deploy/prometheus/relay-rules.yml`, and names no other alert anywhere;
//! - its units table quotes each `deploy/systemd/` unit's `ExecStart` and
//!   `TimeoutStopSec` as the files have them, no stale copy of a unit is left
//!   in it, and each unit's stop timeout is above the stop bound the code sets
//!   for its process;
//! - its Prometheus `scrape_configs` example passes `promtool check config`
//!   with the shipped rules, its job names match what `RelayDown` reads;
//! - every panel of the Grafana dashboard follows its `instance` variable.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::pki::hash_password;
use support::{external, http_get, metric_sum, relay_binary, wait_until};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The text of `## heading` in docs/operations.md, up to the next `## `.
fn section(heading: &str) -> String {
    let doc = read("docs/operations.md");
    let start = doc
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("docs/operations.md has no section \"## {heading}\""));
    let body = &doc[start + 1..];
    let end = body[3..].find("\n## ").map_or(body.len(), |i| i + 3);
    body[..end].to_owned()
}

/// The backticked words of `text` that start with `prefix`.
fn backticked(text: &str, prefix: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| word.starts_with(prefix) && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(str::to_owned)
        .collect()
}

/// The first cell of each table row of `text` whose first cell is backticked.
fn first_cells(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| line.split('|').nth(1).unwrap().to_owned())
        .collect()
}

/// Files under `dir` ending in `.rs`.
fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// What a metric's name starts with: the roles that record metrics.
const METRIC_PREFIXES: [&str; 5] = [
    "relay_broker_",
    "relay_sender_",
    "relay_loader_",
    "relay_producer_",
    "relay_supervisor_",
];

/// Every metric name the code defines: the string constants
/// (`const NAME: &str = "relay_broker_...";`) of the crates that record.
fn metrics_in_code() -> BTreeSet<String> {
    let mut files = Vec::new();
    for dir in ["broker/src", "client/src", "sender/src", "loader/src", "supervisor/src"] {
        rust_files(&repo(dir), &mut files);
    }
    let mut names = BTreeSet::new();
    for file in files {
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            let Some((head, literal)) = line.split_once(": &str = \"") else {
                continue;
            };
            if !head.trim_start().starts_with("pub const ") && !head.trim_start().starts_with("const ") {
                continue;
            }
            let name = literal.split('"').next().unwrap();
            if METRIC_PREFIXES.iter().any(|prefix| name.starts_with(prefix)) {
                names.insert(name.to_owned());
            }
        }
    }
    assert!(names.len() > 40, "the metric constants were not found: {names:?}");
    names
}

/// Every metric named in the first column of the "## Metrics" tables.
fn metrics_in_doc() -> BTreeSet<String> {
    first_cells(&section("Metrics"))
        .iter()
        .flat_map(|cell| backticked(cell, "relay_"))
        .collect()
}

fn difference(a: &BTreeSet<String>, b: &BTreeSet<String>) -> Vec<String> {
    a.difference(b).cloned().collect()
}

#[test]
fn every_metric_the_code_defines_is_in_the_metrics_table_and_no_other() {
    let (code, doc) = (metrics_in_code(), metrics_in_doc());
    let undocumented = difference(&code, &doc);
    let unknown = difference(&doc, &code);
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "docs/operations.md \"## Metrics\" against the code:\n  \
         defined in the code, missing from the tables: {undocumented:?}\n  \
         in the tables, defined nowhere: {unknown:?}"
    );
}

/// A child process killed when dropped.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `relay up` with a sender, a loader, SASL and grants, as the Prometheus
/// test runs it: the families it serves once rows are loaded.
fn served_families() -> BTreeSet<String> {
    let dir = tempfile::tempdir().unwrap();
    let port = |()| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (broker_port, metrics_port) = (port(()), port(()));
    let config = format!(
        r#"metrics_listen = "127.0.0.1:{metrics_port}"
[client]
security_protocol = "SASL_PLAINTEXT"
sasl_username = "ops"
[broker]
listen = "127.0.0.1:{broker_port}"
data_dir = "data"
[broker.log]
retention_bytes = 1073741824
[broker.sasl]
[broker.sasl.users]
ops = "{credential}"
[[broker.grants]]
users = ["ops"]
role = "admin"
[[send]]
topic = "events"
paths = ["logs/*.jsonl*"]
state_dir = "state"
[[load]]
topic = "events"
group = "loader"
warehouse = "sqlite://w.db"
table = "events"
batch_wait_ms = 200
"#,
        credential = hash_password("scraped"),
    );
    std::fs::write(dir.path().join("up.toml"), config).unwrap();
    let log = dir.path().join("up.log");
    let mut up = Stopped(
        Command::new(relay_binary())
            .args(["up", "--config", "up.toml", "--gen-events", "200"])
            .env("RELAY_SASL_PASSWORD", "scraped")
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let up_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let address = format!("127.0.0.1:{metrics_port}");
    let mut exposition = String::new();
    let loaded = wait_until(Duration::from_secs(60), || {
        exposition = http_get(&address, "/metrics").map(|(_, body)| body).unwrap_or_default();
        metric_sum(&exposition, "relay_loader_rows_loaded_total", &[]).is_some_and(|rows| rows > 0.0)
    });
    assert!(loaded, "relay up loaded no rows\n{}", up_log());
    let _ = up.0.kill();
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
        .filter(|name| name.starts_with("relay_"))
        .collect()
}

#[test]
fn every_metric_relay_up_serves_is_defined_in_the_code_and_documented() {
    let served = served_families();
    assert!(served.len() > 20, "too few families served: {served:?}");
    let not_in_code = difference(&served, &metrics_in_code());
    let not_in_doc = difference(&served, &metrics_in_doc());
    assert!(
        not_in_code.is_empty() && not_in_doc.is_empty(),
        "served by relay up but not a metric constant of the code: {not_in_code:?}\n\
         served by relay up but missing from docs/operations.md: {not_in_doc:?}"
    );
}

/// The alerts of deploy/prometheus/relay-rules.yml.
fn alerts_in_rules() -> BTreeSet<String> {
    let names: BTreeSet<String> = read("deploy/prometheus/relay-rules.yml")
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert: "))
        .map(|name| name.trim().to_owned())
        .collect();
    assert!(names.len() > 10, "the alerts were not found: {names:?}");
    names
}

#[test]
fn the_alert_table_lists_exactly_the_shipped_alerts() {
    let rules = alerts_in_rules();
    let table: BTreeSet<String> = first_cells(&section("What to watch, and alert rules"))
        .iter()
        .flat_map(|cell| backticked(cell, "Relay"))
        .collect();
    let missing = difference(&rules, &table);
    let unknown = difference(&table, &rules);
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "the alert table of docs/operations.md against deploy/prometheus/relay-rules.yml:\n  \
         shipped, missing from the table: {missing:?}\n  in the table, not shipped: {unknown:?}"
    );
    // An alert named anywhere in the guide must exist.
    let named: BTreeSet<String> = backticked(&read("docs/operations.md"), "Relay")
        .into_iter()
        .filter(|word| word.len() > "Relay".len() && word.as_bytes()[5].is_ascii_uppercase())
        .collect();
    let stale = difference(&named, &rules);
    assert!(
        stale.is_empty(),
        "docs/operations.md names alerts that are not shipped: {stale:?}"
    );
}

#[test]
fn the_metrics_the_rules_read_are_defined_in_the_code() {
    let code = metrics_in_code();
    let rules = read("deploy/prometheus/relay-rules.yml");
    let mut unknown = BTreeSet::new();
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if !METRIC_PREFIXES.iter().any(|prefix| word.starts_with(prefix)) {
            continue;
        }
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| word.strip_suffix(suffix).filter(|base| code.contains(*base)))
            .unwrap_or(word);
        if !code.contains(base) {
            unknown.insert(word.to_owned());
        }
    }
    assert!(
        unknown.is_empty(),
        "relay-rules.yml reads metrics the code does not define: {unknown:?}"
    );
}

/// `Key=value` of a unit file.
fn unit_setting(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in\n{unit}"))
        .to_owned()
}

/// The unit files of deploy/systemd: (file name, contents).
fn units() -> Vec<(String, String)> {
    let mut units: Vec<(String, String)> = std::fs::read_dir(repo("deploy/systemd"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "service"))
        .map(|path| {
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    units.sort();
    assert_eq!(units.len(), 4, "{units:?}");
    units
}

#[test]
fn the_units_table_quotes_the_shipped_units_and_no_stale_copy_is_left() {
    let section = section("systemd units");
    for (name, unit) in units() {
        let row = section
            .lines()
            .find(|line| line.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("no row for {name} in the units table of docs/operations.md"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(
            cells[3],
            format!("`{}`", unit_setting(&unit, "ExecStart")),
            "{name}: {row}"
        );
        assert_eq!(cells[4], unit_setting(&unit, "TimeoutStopSec"), "{name}: {row}");
    }
    let doc = read("docs/operations.md");
    let unit_texts: Vec<String> = units().into_iter().map(|(_, unit)| unit).collect();
    for block in doc.split("```").skip(1).step_by(2) {
        if block.contains("ExecStart=") {
            let body = block.split_once('\n').map_or("", |(_, body)| body);
            assert!(
                unit_texts.iter().any(|unit| unit == body),
                "docs/operations.md holds a unit that is not one of deploy/systemd's:\n{block}"
            );
        }
    }
    // The units run what the package installs, with the configuration it installs.
    let cargo = read("Cargo.toml");
    assert!(cargo.contains(r#"["target/release/relay", "usr/bin/", "755"]"#));
    assert!(cargo.contains(r#"conf-files = ["/etc/relay/config.toml"]"#));
    for unit in &unit_texts {
        let exec = unit_setting(unit, "ExecStart");
        assert!(
            exec.starts_with("/usr/bin/relay ") && exec.contains(" --config /etc/relay/config.toml "),
            "{exec}"
        );
    }
    for stale in ["/usr/local/bin/relay", "/etc/relay/relay.toml"] {
        assert!(!doc.contains(stale), "docs/operations.md still says {stale}");
    }
}

/// Seconds of a unit's `TimeoutStopSec=`.
fn stop_timeout(unit: &str) -> Duration {
    Duration::from_secs(unit_setting(unit, "TimeoutStopSec").parse().unwrap())
}

#[test]
fn each_unit_waits_longer_than_its_process_may_take_to_stop() {
    // Closing every partition (a flush and an fsync each) after the grace.
    let flush = Duration::from_secs(15);
    let broker = relay_broker::server::listener::SHUTDOWN_GRACE + flush;
    let roles = relay_supervisor::STOP_WAIT_MAX + broker;
    for (name, unit) in units() {
        let bound = if name == "relay-broker.service" { broker } else { roles };
        assert!(
            stop_timeout(&unit) > bound,
            "{name}: TimeoutStopSec={} is not above the {}s its process may take to stop",
            stop_timeout(&unit).as_secs(),
            bound.as_secs()
        );
    }
}

/// The fenced block of docs/operations.md whose first line is `first_line`.
fn block_starting(first_line: &str) -> String {
    read("docs/operations.md")
        .split("```")
        .skip(1)
        .step_by(2)
        .map(|block| block.split_once('\n').map_or("", |(_, body)| body))
        .find(|body| body.starts_with(first_line))
        .unwrap_or_else(|| panic!("docs/operations.md has no block starting {first_line:?}"))
        .to_owned()
}

#[test]
fn the_scrape_configs_example_is_valid_and_its_jobs_are_the_ones_the_rules_expect() {
    let example = block_starting("# prometheus.yml on the monitoring host");
    let jobs: Vec<&str> = example
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- job_name: "))
        .collect();
    assert_eq!(jobs, ["relay-broker", "relay-load", "relay-send"]);
    let rules = read("deploy/prometheus/relay-rules.yml");
    assert!(
        rules.contains(r#"up{job=~"relay.*"}"#),
        "RelayDown no longer reads relay.* jobs"
    );
    assert!(jobs.iter().all(|job| job.starts_with("relay")));
    let Some(promtool) = external("RELAY_TEST_PROMTOOL", "promtool (Debian's prometheus package)") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = example.replace(
        "/usr/share/relay/prometheus/relay-rules.yml",
        repo("deploy/prometheus/relay-rules.yml").to_str().unwrap(),
    );
    let file = dir.path().join("prometheus.yml");
    std::fs::write(&file, config).unwrap();
    let output = Command::new(promtool)
        .args(["check", "config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "promtool check config:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_dashboard_panel_follows_the_instance_variable_and_group_panels_the_group() {
    let dashboard: serde_json::Value = serde_json::from_str(&read("deploy/grafana/relay.json")).unwrap();
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(variables, ["instance", "group"]);
    let mut uses_group = false;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            // Every selector of a relay metric carries the variable.
            let selectors = expr.matches("relay_").count();
            let following = expr.matches(r#"{instance=~"$instance""#).count();
            assert_eq!(selectors, following, "{}: {expr}", panel["title"]);
            if expr.contains("relay_broker_group_") {
                assert!(expr.contains(r#"group=~"$group""#), "{}: {expr}", panel["title"]);
                uses_group = true;
            }
        }
    }
    assert!(uses_group, "no panel uses the group variable");
}
