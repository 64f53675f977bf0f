//! The client commands through the `relay` binary against `relay broker`:
//! produce, consume (alone and in groups), lag, offset resets by time, the
//! Java-compatible partitioner next to confluent-kafka, and a broker that is
//! not there.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};
use support::{python, python_script, relay_binary, relay_client, run_with_timeout, succeeded as ok, BrokerProcess};

fn relay(broker: &BrokerProcess, args: &[&str]) -> Output {
    relay_client(broker, args, Duration::from_secs(240))
}

fn write_lines(path: &Path, lines: impl Iterator<Item = String>) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

/// Lag per partition from `relay lag` output, summed.
fn total_lag(output: &str) -> i64 {
    output
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("total lag"))
        .map(|l| l.split_whitespace().last().unwrap().parse::<i64>().unwrap())
        .sum()
}

/// Unix milliseconds as RFC 3339 UTC.
fn rfc3339(ms: i64) -> String {
    relay_client::time::format_rfc3339_micros(ms * 1000)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn a_million_lines_come_back_identical_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let file = dir.path().join("lines.jsonl");
    write_lines(
        &file,
        (0..1_000_000).map(|n| format!("{{\"uuid\":\"{n:08}\",\"event\":\"click\",\"amount\":{}}}", n % 997)),
    );
    let produced = relay(&broker, &["produce", "--topic", "million", file.to_str().unwrap()]);
    let summary = String::from_utf8_lossy(&produced.stderr).into_owned();
    ok(produced);
    assert!(summary.contains("produced 1000000 records"), "{summary}");
    let consumed = ok(relay(
        &broker,
        &[
            "consume", "--topic", "million", "--from", "earliest", "--max", "1000000", "--format", "raw",
        ],
    ));
    assert!(
        consumed.as_bytes() == std::fs::read(&file).unwrap().as_slice(),
        "consumed bytes differ from the file"
    );
}

#[test]
fn two_group_members_split_a_topic_and_lag_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    ok(relay(&broker, &["topics", "create", "split", "--partitions", "4"]));
    let file = dir.path().join("lines.jsonl");
    write_lines(
        &file,
        (0..20_000).map(|n| format!("{{\"id\":\"k{}\",\"n\":{n}}}", n % 101)),
    );
    ok(relay(
        &broker,
        &[
            "produce",
            "--topic",
            "split",
            "--key-field",
            "id",
            file.to_str().unwrap(),
        ],
    ));
    let spawn = || {
        Command::new(relay_binary())
            .args(["consume", "--topic", "split", "--group", "g"])
            .env("RELAY_BROKER", &broker.address)
            .env("RUST_LOG", "relay_client=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Both outputs are drained at once: a member blocked on a full pipe
    // would stop consuming and lose its partitions.
    let (a, b) = (spawn(), spawn());
    let a = std::thread::spawn(move || a.wait_with_output().unwrap());
    let b = std::thread::spawn(move || b.wait_with_output().unwrap());
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    let logs = format!(
        "{}\n{}\n{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr),
        broker.log()
    );
    let mut lines: Vec<String> = ok(a)
        .lines()
        .chain(ok(b).lines())
        .map(str::to_owned)
        .collect::<Vec<_>>();
    lines.sort();
    let mut expected: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    expected.sort();
    assert_eq!(
        lines.len(),
        expected.len(),
        "every record printed exactly once between the two:\n{logs}"
    );
    assert_eq!(lines, expected);

    let lag = ok(relay(&broker, &["lag", "--group", "g"]));
    assert_eq!(lag.lines().count(), 6, "one line per partition and a total:\n{lag}");
    assert!(lag.contains("total lag of group g on split: 0"), "{lag}");
    assert_eq!(total_lag(&lag), 0, "{lag}");
    assert_eq!(
        relay(&broker, &["lag", "--group", "g", "--max", "0"]).status.code(),
        Some(0)
    );
    let more = dir.path().join("more.jsonl");
    write_lines(&more, (0..10).map(|n| format!("{{\"id\":\"late{n}\"}}")));
    ok(relay(
        &broker,
        &[
            "produce",
            "--topic",
            "split",
            "--key-field",
            "id",
            more.to_str().unwrap(),
        ],
    ));
    let lag = ok(relay(&broker, &["lag", "--group", "g"]));
    assert_eq!(total_lag(&lag), 10);
    assert!(lag.contains("total lag of group g on split: 10"), "{lag}");
    assert_eq!(
        relay(&broker, &["lag", "--group", "g", "--max", "5"]).status.code(),
        Some(1)
    );
    assert_eq!(
        relay(&broker, &["lag", "--max", "10"]).status.code(),
        Some(0),
        "all groups"
    );
}

#[test]
fn reset_offsets_to_a_time_replays_exactly_the_records_from_then() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    ok(relay(&broker, &["topics", "create", "replay", "--partitions", "2"]));
    let before = dir.path().join("before.txt");
    write_lines(&before, (0..300).map(|n| format!("before {n}")));
    ok(relay(
        &broker,
        &["produce", "--topic", "replay", before.to_str().unwrap()],
    ));
    std::thread::sleep(Duration::from_millis(1100));
    let cut = rfc3339(now_ms());
    std::thread::sleep(Duration::from_millis(50));
    let after = dir.path().join("after.txt");
    write_lines(&after, (0..120).map(|n| format!("after {n}")));
    ok(relay(
        &broker,
        &["produce", "--topic", "replay", after.to_str().unwrap()],
    ));
    assert_eq!(
        ok(relay(&broker, &["consume", "--topic", "replay", "--group", "r"]))
            .lines()
            .count(),
        420
    );
    assert_eq!(
        ok(relay(&broker, &["consume", "--topic", "replay", "--group", "r"]))
            .lines()
            .count(),
        0,
        "all committed"
    );
    let reset = ok(relay(
        &broker,
        &[
            "groups",
            "reset-offsets",
            "r",
            "--topic",
            "replay",
            "--to",
            &format!("time:{cut}"),
        ],
    ));
    assert_eq!(reset.lines().count(), 2, "{reset}");
    let mut replayed: Vec<String> = ok(relay(&broker, &["consume", "--topic", "replay", "--group", "r"]))
        .lines()
        .map(str::to_owned)
        .collect();
    replayed.sort();
    let mut expected: Vec<String> = (0..120).map(|n| format!("after {n}")).collect();
    expected.sort();
    assert_eq!(replayed, expected);
    // Without a group, --from time: gives the same records.
    assert_eq!(
        ok(relay(
            &broker,
            &["consume", "--topic", "replay", "--from", &format!("time:{cut}")]
        ))
        .lines()
        .count(),
        120
    );
}

#[test]
fn topics_and_groups_commands_describe_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    ok(relay(
        &broker,
        &[
            "topics",
            "create",
            "orders",
            "--partitions",
            "3",
            "--retention-ms",
            "3600000",
        ],
    ));
    let exists = relay(&broker, &["topics", "create", "orders"]);
    assert_eq!(exists.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&exists.stderr).contains("already exists"));
    let list = ok(relay(&broker, &["topics", "list"]));
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["orders", "3"]),
        "{list}"
    );
    let file = dir.path().join("o.txt");
    write_lines(&file, (0..30).map(|n| format!("order {n}")));
    ok(relay(
        &broker,
        &["produce", "--topic", "orders", file.to_str().unwrap()],
    ));
    let describe = ok(relay(&broker, &["topics", "describe", "orders"]));
    let records: i64 = describe
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().last().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(records, 30, "{describe}");
    ok(relay(
        &broker,
        &["consume", "--topic", "orders", "--group", "billing", "--max", "7"],
    ));
    let groups = ok(relay(&broker, &["groups", "list"]));
    assert!(groups.contains("billing"), "{groups}");
    let described = ok(relay(&broker, &["groups", "describe", "billing"]));
    assert!(described.contains("Empty"), "{described}");
    assert_eq!(
        total_lag(&ok(relay(&broker, &["lag", "--group", "billing"]))),
        23,
        "exactly the 7 printed were committed"
    );
    ok(relay(&broker, &["topics", "delete", "orders"]));
    assert!(!ok(relay(&broker, &["topics", "list"])).contains("orders"));
}

#[test]
fn json_format_shows_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let file = dir.path().join("one.jsonl");
    write_lines(&file, std::iter::once("{\"player_id\":\"p7\",\"score\":3}".to_owned()));
    ok(relay(
        &broker,
        &[
            "produce",
            "--topic",
            "j",
            "--key-field",
            "player_id",
            file.to_str().unwrap(),
        ],
    ));
    let line = ok(relay(&broker, &["consume", "--topic", "j", "--format", "json"]));
    let value: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(value["topic"], "j");
    assert_eq!(value["partition"], 0);
    assert_eq!(value["offset"], 0);
    assert_eq!(value["key"], "p7");
    assert_eq!(value["value"], "{\"player_id\":\"p7\",\"score\":3}");
    assert!(value["timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    assert!(value["headers"].is_object());
}

#[test]
fn unreachable_broker_exits_3_naming_the_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    let mut child = Command::new(relay_binary())
        .args(["produce", "--topic", "t", "--broker", &address])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"x\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&address) && stderr.contains("cannot reach broker"),
        "{stderr}"
    );
    let consume = run_with_timeout(
        Command::new(relay_binary()).args(["consume", "--topic", "t", "--broker", &address]),
        Duration::from_secs(30),
    );
    assert_eq!(consume.status.code(), Some(3));
}

#[test]
fn keys_land_where_confluent_kafka_puts_them_and_records_cross_over() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    ok(relay(
        &broker,
        &["topics", "create", "from-confluent", "--partitions", "6"],
    ));
    ok(relay(&broker, &["topics", "create", "from-relay", "--partitions", "6"]));
    let interop = |args: &[&str]| {
        ok(run_with_timeout(
            Command::new(&python).arg(python_script("interop.py")).args(args),
            Duration::from_secs(120),
        ))
    };
    interop(&["produce", &broker.address, "from-confluent", "500"]);
    let file = dir.path().join("keyed.jsonl");
    write_lines(
        &file,
        (0..500).map(|n| format!("{{\"k\":\"key-{}\",\"n\":{n}}}", n % 50)),
    );
    ok(relay(
        &broker,
        &[
            "produce",
            "--topic",
            "from-relay",
            "--key-field",
            "k",
            file.to_str().unwrap(),
        ],
    ));

    let partitions_by_key = |lines: Vec<(String, String)>| -> BTreeMap<String, String> { lines.into_iter().collect() };
    // relay reads what confluent-kafka wrote.
    let ours: Vec<serde_json::Value> = ok(relay(
        &broker,
        &["consume", "--topic", "from-confluent", "--format", "json"],
    ))
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    assert_eq!(ours.len(), 500);
    let mut values: Vec<String> = ours.iter().map(|v| v["value"].as_str().unwrap().to_owned()).collect();
    values.sort();
    let mut expected: Vec<String> = (0..500).map(|n| format!("c{n}")).collect();
    expected.sort();
    assert_eq!(values, expected);
    let confluent_placement = partitions_by_key(
        ours.iter()
            .map(|v| (v["key"].as_str().unwrap().to_owned(), v["partition"].to_string()))
            .collect(),
    );
    // confluent-kafka reads what relay wrote, and keys sit on the same partitions.
    let theirs = interop(&["consume", &broker.address, "from-relay", "500"]);
    assert_eq!(theirs.lines().count(), 500);
    let relay_placement = partitions_by_key(
        theirs
            .lines()
            .map(|l| {
                let fields: Vec<&str> = l.splitn(3, ' ').collect();
                (fields[1].to_owned(), fields[0].to_owned())
            })
            .collect(),
    );
    assert_eq!(relay_placement.len(), 50);
    assert_eq!(
        relay_placement, confluent_placement,
        "murmur2 placement matches librdkafka's murmur2_random"
    );
}
