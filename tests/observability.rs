//! Operations, end to end through the `relay` binary: the `/metrics` of a
//! running broker, sender and loader report exactly what passed through
//! them (the loader's lag is the records produced but not yet loaded);
//! `/health` answers; `relay send` against another cluster id exits 2,
//! naming both ids, and sends nothing; `relay status` prints each group's
//! lag; `--log-format json` writes one JSON object per line.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::warehouse::Warehouse;
use support::{http_get, metric_sum, relay_binary, run_with_timeout, wait_until, BrokerProcess, RelayProcess};

const WAIT: Duration = Duration::from_secs(60);

fn scrape(address: &str) -> String {
    match http_get(address, "/metrics") {
        Some((200, body)) => body,
        other => panic!("GET http://{address}/metrics: {other:?}"),
    }
}

fn write_events(path: &Path, from: usize, count: usize) -> u64 {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for n in from..from + count {
        writeln!(
            file,
            r#"{{"uuid":"00000000-0000-4000-8000-{n:012}","player_id":{},"event_type":"level_up"}}"#,
            n % 7
        )
        .unwrap();
    }
    file.sync_all().unwrap();
    std::fs::metadata(path).unwrap().len()
}

fn relay(args: &[&str]) -> std::process::Output {
    run_with_timeout(Command::new(relay_binary()).args(args), Duration::from_secs(60))
}

#[test]
fn metrics_of_broker_sender_and_loader_match_what_passed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start_with_args(dir.path(), "default_partitions = 2", &["--metrics", "127.0.0.1:0"]);
    let broker_metrics = broker
        .metrics_address
        .clone()
        .expect("the broker announces its metrics address");
    let events = dir.path().join("events.jsonl");
    let size_bytes = write_events(&events, 0, 500);

    // The sender: every line read and acknowledged, nothing behind.
    let mut sender = RelayProcess::start(
        vec![
            "send".into(),
            "--broker".into(),
            broker.address.clone(),
            "--topic".into(),
            "events".into(),
            "--path".into(),
            dir.path().join("*.jsonl").display().to_string(),
            "--state-dir".into(),
            dir.path().join("state").display().to_string(),
            "--metrics".into(),
            "127.0.0.1:0".into(),
        ],
        &dir.path().join("send.log"),
    );
    let sender_metrics = sender.metrics_address(1);
    let file = events.display().to_string();
    let by_file = [("topic", "events"), ("file", file.as_str())];
    // Counters are per topic (file paths are unbounded); bytes behind is per file.
    let by_topic = [("topic", "events")];
    let acked = wait_until(WAIT, || {
        http_get(&sender_metrics, "/metrics")
            .is_some_and(|(_, body)| metric_sum(&body, "relay_sender_lines_acked_total", &by_topic) == Some(500.0))
    });
    assert!(acked, "the sender did not acknowledge 500 lines\n{}", sender.log());
    let sent = scrape(&sender_metrics);
    assert_eq!(
        metric_sum(&sent, "relay_sender_lines_read_total", &by_topic),
        Some(500.0)
    );
    assert_eq!(
        metric_sum(&sent, "relay_sender_bytes_read_total", &by_topic),
        Some(size_bytes as f64)
    );
    assert_eq!(
        metric_sum(&sent, "relay_sender_bytes_acked_total", &by_topic),
        Some(size_bytes as f64)
    );
    assert_eq!(metric_sum(&sent, "relay_sender_bytes_behind", &by_file), Some(0.0));
    assert_eq!(
        metric_sum(&sent, "relay_sender_lines_rejected_total", &by_topic),
        Some(0.0)
    );
    assert_eq!(
        http_get(&sender_metrics, "/health").map(|(status, _)| status),
        Some(200)
    );

    // The broker: 500 records in, end offsets adding up to 500, 2 partitions.
    let stored = scrape(&broker_metrics);
    let topic = [("topic", "events")];
    assert_eq!(
        metric_sum(&stored, "relay_broker_records_in_total", &topic),
        Some(500.0)
    );
    assert_eq!(metric_sum(&stored, "relay_broker_log_end_offset", &topic), Some(500.0));
    assert_eq!(metric_sum(&stored, "relay_broker_log_segments", &topic), Some(2.0));
    assert!(metric_sum(&stored, "relay_broker_log_size_bytes", &topic).unwrap() > size_bytes as f64);
    assert!(metric_sum(&stored, "relay_broker_produce_latency_seconds_count", &[]).unwrap() >= 1.0);
    assert!(metric_sum(&stored, "relay_broker_fsync_latency_seconds_count", &[]).unwrap() >= 1.0);
    assert!(metric_sum(&stored, "relay_broker_connections", &[]).unwrap() >= 1.0);
    assert_eq!(
        http_get(&broker_metrics, "/health").map(|(status, _)| status),
        Some(200)
    );

    // A loader that holds its whole batch: lag = every record, nothing loaded.
    let warehouse = Warehouse::sqlite(dir.path());
    let config = dir.path().join("load.toml");
    // Holding: the batch waits its time even while the warehouse is idle.
    let write_config = |batch_wait_ms: u64, write_when_idle: bool| {
        std::fs::write(
            &config,
            format!(
                "[[load]]\ntopic = \"events\"\ngroup = \"loaders\"\nwarehouse = \"{}\"\ntable = \"events\"\n\
                 batch_records_max = 100000\nbatch_wait_ms = {batch_wait_ms}\n\
                 write_when_idle = {write_when_idle}\n",
                warehouse.url()
            ),
        )
        .unwrap()
    };
    write_config(3_600_000, false);
    let load_args = vec![
        "load".to_owned(),
        "--broker".into(),
        broker.address.clone(),
        "--config".into(),
        config.display().to_string(),
        "--metrics".into(),
        "127.0.0.1:0".into(),
    ];
    let mut loader = RelayProcess::start(load_args, &dir.path().join("load.log"));
    let loader_metrics = loader.metrics_address(1);
    let table = [("table", "events")];
    let lagging = wait_until(WAIT, || {
        http_get(&loader_metrics, "/metrics")
            .is_some_and(|(_, body)| metric_sum(&body, "relay_loader_lag", &table) == Some(500.0))
    });
    assert!(
        lagging,
        "no loader lag of 500\n{}\n{}",
        scrape(&loader_metrics),
        loader.log()
    );
    let holding = scrape(&loader_metrics);
    assert_eq!(
        metric_sum(&holding, "relay_loader_rows_loaded_total", &table),
        Some(0.0)
    );
    assert_eq!(metric_sum(&holding, "relay_loader_warehouse_up", &table), Some(1.0));
    assert_eq!(
        http_get(&loader_metrics, "/health").map(|(status, _)| status),
        Some(200)
    );
    // SIGTERM finishes the batch in hand.
    assert_eq!(loader.terminate(), Some(0), "{}", loader.log());
    assert_eq!(warehouse.count("SELECT count(*) FROM events"), 500);

    // Loading as it comes: 200 more lines are loaded, lag back to 0.
    write_config(100, true);
    loader.launch();
    let loader_metrics = loader.metrics_address(2);
    write_events(&events, 500, 200);
    let caught_up = wait_until(WAIT, || {
        http_get(&loader_metrics, "/metrics").is_some_and(|(_, body)| {
            metric_sum(&body, "relay_loader_rows_loaded_total", &table) == Some(200.0)
                && metric_sum(&body, "relay_loader_lag", &table) == Some(0.0)
        })
    });
    assert!(
        caught_up,
        "the loader did not load 200 more rows\n{}\n{}\n{}",
        scrape(&loader_metrics),
        loader.log(),
        sender.log()
    );
    assert_eq!(warehouse.count("SELECT count(*) FROM events"), 700);
    let loaded = scrape(&loader_metrics);
    assert!(metric_sum(&loaded, "relay_loader_transaction_latency_seconds_count", &table).unwrap() >= 1.0);
    assert_eq!(
        metric_sum(&loaded, "relay_loader_rows_rejected_total", &table),
        Some(0.0)
    );
    // The broker sees the loader's group caught up too.
    let committed = wait_until(WAIT, || {
        let body = scrape(&broker_metrics);
        metric_sum(&body, "relay_broker_group_lag", &[("group", "loaders")]) == Some(0.0)
            && metric_sum(&body, "relay_broker_group_committed_offset", &[("group", "loaders")]) == Some(700.0)
    });
    assert!(
        committed,
        "the broker's group lag is not 0\n{}",
        scrape(&broker_metrics)
    );
    assert_eq!(
        metric_sum(&scrape(&broker_metrics), "relay_broker_records_in_total", &topic),
        Some(700.0)
    );
    assert_eq!(loader.terminate(), Some(0), "{}", loader.log());
    assert_eq!(sender.terminate(), Some(0), "{}", sender.log());
}

#[test]
fn send_refuses_another_cluster_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let events = dir.path().join("events.jsonl");
    write_events(&events, 0, 10);
    let output = relay(&[
        "send",
        "--broker",
        &broker.address,
        "--expect-cluster-id",
        "qa-cluster",
        "--topic",
        "events",
        "--path",
        &events.display().to_string(),
        "--state-dir",
        &dir.path().join("state").display().to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let actual = broker.log();
    let cluster_id = actual
        .split("cluster_id=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the broker logs its cluster id")
        .trim_matches('"')
        .to_owned();
    assert!(stderr.contains("qa-cluster"), "{stderr}");
    assert!(stderr.contains(&cluster_id), "{stderr} lacks {cluster_id}");
    // Nothing was sent: the topic was never even created.
    let topics = relay(&["topics", "--broker", &broker.address, "list"]);
    assert!(!String::from_utf8_lossy(&topics.stdout).contains("events"));
    // The same id from a [client] section of the config is refused the same way.
    let config = dir.path().join("relay.toml");
    std::fs::write(&config, "[client]\nexpect_cluster_id = \"qa-cluster\"\n").unwrap();
    let output = relay(&[
        "send",
        "--broker",
        &broker.address,
        "--config",
        &config.display().to_string(),
        "--topic",
        "events",
        "--path",
        &events.display().to_string(),
        "--state-dir",
        &dir.path().join("state").display().to_string(),
    ]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The right id works.
    let output = relay(&[
        "topics",
        "--broker",
        &broker.address,
        "--expect-cluster-id",
        &cluster_id,
        "list",
    ]);
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn status_shows_each_groups_lag() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let lines: String = (0..100).map(|n| format!("line {n}\n")).collect();
    let input = dir.path().join("lines.txt");
    std::fs::write(&input, lines).unwrap();
    let input = input.display().to_string();
    let produced = relay(&["produce", "--broker", &broker.address, "--topic", "clicks", &input]);
    assert_eq!(produced.status.code(), Some(0));
    for (group, max) in [("dashboards", "30"), ("archive", "75")] {
        let consumed = relay(&[
            "consume",
            "--broker",
            &broker.address,
            "--topic",
            "clicks",
            "--group",
            group,
            "--max",
            max,
        ]);
        assert_eq!(
            consumed.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&consumed.stderr)
        );
    }
    let output = relay(&["status", "--broker", &broker.address, "--interval-ms", "200"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let row = |group: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|line| line.starts_with(group) && line.contains("clicks"))
            .unwrap_or_else(|| panic!("no row for {group}:\n{stdout}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    // GROUP STATE MEMBERS TOPIC PARTITION COMMITTED END LAG AGE
    assert_eq!(row("dashboards")[5..8], ["30", "100", "70"], "{stdout}");
    assert_eq!(row("archive")[5..8], ["75", "100", "25"], "{stdout}");
    assert!(stdout.contains("dashboards               total lag 70"), "{stdout}");
    assert!(stdout.contains("archive                  total lag 25"), "{stdout}");
    let topic = stdout
        .lines()
        .find(|line| line.starts_with("clicks"))
        .unwrap_or_else(|| panic!("no topic row:\n{stdout}"));
    assert_eq!(topic.split_whitespace().nth(2), Some("100"), "{stdout}");
    // The size on disk comes from DescribeLogDirs: 100 records in batches are over 1 KiB.
    assert_eq!(topic.split_whitespace().nth(4), Some("KiB"), "{stdout}");
    // The verdict first (nothing is wrong), then the cluster.
    assert!(stdout.starts_with("OK\n\ncluster "), "{stdout}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = RelayProcess::start(
        vec![
            "--log-format".into(),
            "json".into(),
            "broker".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            dir.path().join("data").display().to_string(),
        ],
        &dir.path().join("broker.log"),
    );
    assert!(
        wait_until(WAIT, || broker.log().contains("broker started")),
        "{}",
        broker.log()
    );
    assert_eq!(broker.terminate(), Some(0));
    let log = broker.log();
    // stdout (the start line) shares the file; every stderr line is JSON.
    let stderr: Vec<&str> = log
        .lines()
        .filter(|line| !line.starts_with("relay broker listening"))
        .collect();
    assert!(stderr.len() >= 2, "{log}");
    for line in stderr {
        let event: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(event["timestamp"].is_string() && event["level"].is_string(), "{line}");
    }
    assert!(log.contains(r#""message":"broker stopped cleanly""#), "{log}");
}
