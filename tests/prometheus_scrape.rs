//! A real Prometheus (Debian's) scraping a running `relay up` with its
//! alert rules loaded: every series the rules read exists with the labels
//! the rules group by, every rule evaluates without error, and every query
//! of the Grafana dashboard (`deploy/grafana/relay.json`) returns data. Event-only
//! counters (records lost, protected records deleted, authorization
//! denials) are there at zero from the start, so an `increase()` alert sees
//! the first event. `scripts/test.sh` installs Prometheus when root.

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::pki::hash_password;
use support::{external, http_get, relay_binary};

const PASSWORD: &str = "scraped";

/// The series the rules read, with the labels each must carry.
const SERIES: [(&str, &[&str]); 17] = [
    ("relay_loader_lag", &["table", "topic", "partition"]),
    ("relay_loader_batch_retries_total", &["table"]),
    ("relay_loader_batches_total", &["table"]),
    ("relay_loader_warehouse_up", &["table"]),
    ("relay_loader_rows_rejected_total", &["table"]),
    ("relay_loader_records_lost_total", &["table", "topic"]),
    ("relay_loader_records_unrouted_total", &["table"]),
    ("relay_sender_bytes_behind", &["topic", "file"]),
    ("relay_sender_send_blocked", &["topic"]),
    ("relay_sender_lines_rejected_total", &["topic"]),
    ("relay_broker_log_size_bytes", &["topic", "partition"]),
    ("relay_broker_retention_hard_limit_bytes", &["topic"]),
    (
        "relay_broker_retention_protected_deleted_records_total",
        &["topic", "group"],
    ),
    ("relay_broker_partition_poisoned", &["topic", "partition"]),
    ("relay_broker_fsync_latency_seconds_bucket", &["le"]),
    ("relay_broker_authorization_denied_total", &["operation"]),
    ("up", &["job", "instance"]),
];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Percent-encodes a query parameter value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn api(prometheus: &str, path: &str) -> serde_json::Value {
    let (status, body) = http_get(prometheus, path).unwrap_or_else(|| panic!("Prometheus answers {path}"));
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn prometheus_scrapes_every_series_the_rules_and_the_dashboard_read() {
    let Some(binary) = external("RELAY_TEST_PROMETHEUS", "prometheus (Debian's prometheus package)") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (broker_port, metrics_port, prometheus_port) = (free_port(), free_port(), free_port());
    let credential = hash_password(PASSWORD);
    let config = format!(
        r#"metrics_listen = "127.0.0.1:{metrics_port}"

[client]
security_protocol = "SASL_PLAINTEXT"
sasl_username = "ops"

[broker]
listen = "127.0.0.1:{broker_port}"
data_dir = "{data}"

# A retention cap, so the protected topic has a hard cap to near.
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
paths = ["{logs}/*.jsonl*"]
state_dir = "{state}"

[[load]]
topic = "events"
group = "loader"
warehouse = "sqlite://{warehouse}"
table = "events"
batch_wait_ms = 200

[[load.columns]]
name = "uuid"
pointer = "/uuid"
type = "text"

[[load.route]]
table = "purchases"
when = {{ pointer = "/type", equals = "purchase" }}

[[load.route.columns]]
name = "amount"
pointer = "/amount"
type = "bigint"
"#,
        data = dir.path().join("data").display(),
        logs = dir.path().join("logs").display(),
        state = dir.path().join("state").display(),
        warehouse = dir.path().join("w.db").display(),
    );
    std::fs::write(dir.path().join("up.toml"), config).unwrap();
    let _up = Killed(
        Command::new(relay_binary())
            .args(["up", "--config", "up.toml", "--gen-events", "500"])
            .env("RELAY_SASL_PASSWORD", PASSWORD)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("up.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus/relay-rules.yml");
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {rules}\nscrape_configs:\n  \
             - job_name: relay\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
        ),
    )
    .unwrap();
    let _prometheus = Killed(
        Command::new(binary)
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let prometheus = format!("127.0.0.1:{prometheus_port}");
    let logs = || {
        format!(
            "relay up:\n{}\nprometheus:\n{}",
            std::fs::read_to_string(dir.path().join("up.log")).unwrap_or_default(),
            std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
        )
    };

    // Wait until the pipeline has loaded rows and Prometheus has scraped them.
    let loaded = format!(
        "/api/v1/query?query={}",
        encode("sum(relay_loader_rows_loaded_total) > 0")
    );
    let started = Instant::now();
    loop {
        let ready = http_get(&prometheus, &loaded)
            .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
            .is_some_and(|v| v["data"]["result"].as_array().is_some_and(|r| !r.is_empty()));
        if ready {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no loaded rows in Prometheus\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let mut missing = BTreeMap::new();
    for (name, labels) in SERIES {
        let series = api(&prometheus, &format!("/api/v1/series?match%5B%5D={}", encode(name)));
        let series = series["data"].as_array().cloned().unwrap_or_default();
        if series.is_empty() {
            missing.insert(name, "no series".to_owned());
            continue;
        }
        for one in &series {
            for label in labels {
                if one.get(label).is_none() {
                    missing.insert(name, format!("a series without label {label}: {one}"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "series the rules read: {missing:#?}\n{}", logs());

    // Every dashboard query returns data (a latency quantile a number).
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana/relay.json")).unwrap(),
    )
    .unwrap();
    // Each template variable ($instance, $group) as Grafana sends it with "All" selected.
    let all_values: Vec<(String, String)> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                format!("${}", v["name"].as_str().unwrap()),
                v["allValue"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut empty = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let mut expr = target["expr"].as_str().unwrap().to_owned();
            for (variable, all) in &all_values {
                expr = expr.replace(variable.as_str(), all);
            }
            let expr = expr.as_str();
            let started = Instant::now();
            let answered = loop {
                let result = api(&prometheus, &format!("/api/v1/query?query={}", encode(expr)));
                let values: Vec<String> = result["data"]["result"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|r| r["value"][1].as_str().map(str::to_owned))
                    .collect();
                if !values.is_empty() && values.iter().any(|v| v != "NaN") {
                    break true;
                }
                if started.elapsed() > Duration::from_secs(45) {
                    break false;
                }
                std::thread::sleep(Duration::from_secs(1));
            };
            if !answered {
                empty.push(format!("{}: {expr}", panel["title"]));
            }
        }
    }
    assert!(
        empty.is_empty(),
        "dashboard queries without data: {empty:#?}\n{}",
        logs()
    );

    // Every rule loaded and evaluated without error; none fires on a healthy pipeline.
    let rules = api(&prometheus, "/api/v1/rules");
    let rules: Vec<serde_json::Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .collect();
    let in_file = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/prometheus/relay-rules.yml"
    ))
    .unwrap()
    .lines()
    .filter(|line| line.trim().starts_with("- alert: "))
    .count();
    assert_eq!(rules.len(), in_file, "{rules:?}");
    for rule in &rules {
        assert_eq!(rule["health"], "ok", "{rule}");
        assert_ne!(rule["state"], "firing", "{rule}\n{}", logs());
    }
}
