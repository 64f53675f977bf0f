//! The compact source headers (`proto-spec/SOURCE_HEADERS.md`) end to end
//! through `relay send`, `relay load` and `relay consume`:
//! - one partition holding both forms (legacy records written with the
//!   client directly, lines from the sender in the compact form, and a line
//!   sent in both forms) loads every line once, each with its file, position
//!   and a dedup key that does not depend on the form;
//! - `relay consume --format json` shows the compact form as the readable
//!   legacy names;
//! - a client that does not name the sticky key sees `relay_source` only on
//!   the first record of a batch's run;
//! - 10,000 lines of 106 bytes from one file take at most 130 bytes each in
//!   the partition's segment (legacy form: well over 200).

mod support;

use bytes::Bytes;
use relay_client::cluster::{Cluster, ClusterConfig};
use relay_client::consumer::{Consumer, ConsumerConfig};
use relay_client::producer::{BatchRecord, Producer, ProducerConfig};
use relay_client::records::ConsumerRecord;
use relay_proto::registry::FileId;
use relay_proto::source_headers::{
    encode_source, put_position, LineSource, Source, HEADER_FILE, HEADER_FILE_ID, HEADER_HOST, HEADER_LINE_POSITION,
    HEADER_POSITION, HEADER_SOURCE, STICKY_HEADER_KEYS,
};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{relay_client, succeeded, wait_until, BrokerProcess, RelayProcess};

/// Bytes a 106-byte line (newline included) may take in the log.
const LOG_BYTES_PER_LINE_MAX: u64 = 130;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn sticky_keys() -> Vec<Bytes> {
    STICKY_HEADER_KEYS
        .iter()
        .map(|k| Bytes::from_static(k.as_bytes()))
        .collect()
}

fn create_topic(broker: &BrokerProcess, topic: &str) {
    succeeded(relay_client(
        broker,
        &["topics", "create", topic, "--partitions", "1"],
        Duration::from_secs(60),
    ));
}

/// The records of partition 0 of `topic`, as many as `count`.
fn consume(broker: &BrokerProcess, topic: &str, count: usize, sticky: Vec<Bytes>) -> Vec<ConsumerRecord> {
    runtime().block_on(async {
        let cluster = Cluster::connect(ClusterConfig::new(&broker.address)).await.unwrap();
        let mut config = ConsumerConfig::new(vec![topic.into()], None);
        config.sticky_header_keys = sticky;
        let mut consumer = Consumer::new(cluster, config).await.unwrap();
        let mut read = Vec::new();
        let started = Instant::now();
        while read.len() < count {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "read {} of {count}",
                read.len()
            );
            read.extend(consumer.poll().await.unwrap().records);
        }
        read
    })
}

/// Sends `records` to partition 0 of `topic` with the client, headers as given.
fn produce(broker: &BrokerProcess, topic: &str, records: Vec<BatchRecord>, sticky: Vec<Bytes>) {
    runtime().block_on(async {
        let cluster: Arc<Cluster> = Cluster::connect(ClusterConfig::new(&broker.address)).await.unwrap();
        let config = ProducerConfig {
            sticky_header_keys: sticky,
            ..ProducerConfig::default()
        };
        let producer = Producer::new(cluster, config).await.unwrap();
        for result in producer.send_batch(topic, Some(0), records).await.unwrap().wait().await {
            result.unwrap();
        }
    })
}

fn header(name: &'static str, value: impl Into<Bytes>) -> (Bytes, Option<Bytes>) {
    (Bytes::from_static(name.as_bytes()), Some(value.into()))
}

/// A line's value and its source, in the legacy form.
fn legacy(value: &str, host: &str, file: &str, file_id: &str, position: u64) -> BatchRecord {
    BatchRecord {
        value: Some(Bytes::from(value.to_owned())),
        headers: vec![
            header(HEADER_HOST, host.to_owned()),
            header(HEADER_FILE, file.to_owned()),
            header(HEADER_FILE_ID, file_id.to_owned()),
            header(HEADER_POSITION, position.to_string()),
        ],
        ..BatchRecord::default()
    }
}

/// A line's value and its source, in the compact form.
fn compact(value: &str, host: &str, file: &str, file_id: FileId, position: u64) -> BatchRecord {
    let source = encode_source(&Source {
        host: host.as_bytes(),
        file: file.as_bytes(),
        file_id: Some(file_id),
    });
    let mut varint = Vec::new();
    put_position(&mut varint, position);
    BatchRecord {
        value: Some(Bytes::from(value.to_owned())),
        headers: vec![header(HEADER_SOURCE, source), header(HEADER_LINE_POSITION, varint)],
        ..BatchRecord::default()
    }
}

fn sender(dir: &Path, broker: &BrokerProcess, topic: &str, file: &Path) -> RelayProcess {
    let args = [
        "send",
        "--broker",
        &broker.address,
        "--topic",
        topic,
        "--path",
        &file.display().to_string(),
        "--state-dir",
        &dir.join("state").display().to_string(),
    ];
    RelayProcess::start_args(&args, &dir.join("send.log"))
}

fn end_offset(broker: &BrokerProcess, topic: &str) -> u64 {
    let output = relay_client(broker, &["topics", "describe", topic], Duration::from_secs(60));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
        .sum()
}

fn wait_for_records(broker: &BrokerProcess, topic: &str, count: u64, process: &RelayProcess) {
    assert!(
        wait_until(Duration::from_secs(60), || end_offset(broker, topic) >= count),
        "{} of {count} records\n{}",
        end_offset(broker, topic),
        process.log()
    );
}

/// `{"n":N}` lines appended to `file`; returns each line's (n, position).
fn append(file: &Path, numbers: std::ops::Range<u64>) -> Vec<(u64, u64)> {
    let mut position = std::fs::metadata(file).map_or(0, |m| m.len());
    let mut handle = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .unwrap();
    numbers
        .map(|n| {
            let line = format!("{{\"n\":{n}}}\n");
            handle.write_all(line.as_bytes()).unwrap();
            let at = position;
            position += line.len() as u64;
            (n, at)
        })
        .collect()
}

#[test]
fn a_partition_mixing_both_header_forms_loads_every_line_once_with_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    create_topic(&broker, "mixed");
    let app = dir.path().join("app.jsonl");
    let app_text = app.display().to_string();
    let mut expected: BTreeMap<u64, (String, u64)> = BTreeMap::new();

    // Legacy lines of another file, from an older sender.
    let old_id = FileId(0x00c0_ffee_0000_0000_0000_0000_0000_0001);
    let old_line = |n: u64| (format!("{{\"n\":{n}}}"), 10 * (n - 100));
    let legacy_lines: Vec<BatchRecord> = (100..110)
        .map(|n| {
            let (value, position) = old_line(n);
            expected.insert(n, ("/var/log/old.jsonl".into(), position));
            legacy(&value, "old-host", "/var/log/old.jsonl", &old_id.to_string(), position)
        })
        .collect();
    produce(&broker, "mixed", legacy_lines, Vec::new());

    // The sender's compact lines of app.jsonl.
    for (n, position) in append(&app, 0..20) {
        expected.insert(n, (app_text.clone(), position));
    }
    let mut sending = sender(dir.path(), &broker, "mixed", &app);
    wait_for_records(&broker, "mixed", 30, &sending);
    sending.terminate();
    let sent = consume(&broker, "mixed", 30, sticky_keys());
    let source = |record: &ConsumerRecord| {
        let header = |name: &str| {
            record
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.as_deref())
        };
        LineSource::read(header).unwrap().unwrap().identity().unwrap()
    };
    let app_source = source(&sent[10]);
    let (host, rest) = app_source.split_once(':').unwrap();
    let app_id: FileId = rest.split(':').next().unwrap().parse().unwrap();
    assert!(
        sent[10..].iter().all(|r| r.headers[0].0 == HEADER_SOURCE),
        "the sender writes the compact form"
    );

    // The same lines again, in the other form: app lines 5..15 as an older
    // sender wrote them, old lines 100..105 as this one does.
    let again_legacy = (5..15)
        .map(|n| {
            let (value, position) = (format!("{{\"n\":{n}}}"), expected[&n].1);
            legacy(&value, host, &app_text, &app_id.to_string(), position)
        })
        .collect();
    produce(&broker, "mixed", again_legacy, Vec::new());
    let again_compact = (100..105)
        .map(|n| {
            let (value, position) = old_line(n);
            compact(&value, "old-host", "/var/log/old.jsonl", old_id, position)
        })
        .collect();
    produce(&broker, "mixed", again_compact, sticky_keys());

    // More compact lines behind them, from the sender's next start.
    for (n, position) in append(&app, 20..30) {
        expected.insert(n, (app_text.clone(), position));
    }
    let mut sending = sender(dir.path(), &broker, "mixed", &app);
    wait_for_records(&broker, "mixed", 55, &sending);
    sending.terminate();

    let json = succeeded(relay_client(
        &broker,
        &["consume", "--topic", "mixed", "--format", "json"],
        Duration::from_secs(60),
    ));
    let shown: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(shown.len(), 55);
    for (index, record) in shown.iter().enumerate() {
        let headers = &record["headers"];
        let n = serde_json::from_str::<serde_json::Value>(record["value"].as_str().unwrap()).unwrap()["n"]
            .as_u64()
            .unwrap();
        let (file, position) = &expected[&n];
        assert_eq!(headers[HEADER_FILE], file.as_str(), "record {index}: {record}");
        assert_eq!(
            headers[HEADER_POSITION],
            position.to_string().as_str(),
            "record {index}"
        );
        assert!(
            headers[HEADER_FILE_ID].as_str().unwrap().len() == 32,
            "record {index}: {record}"
        );
        assert!(headers.get(HEADER_SOURCE).is_none(), "record {index}: {record}");
    }

    let rows = load(dir.path(), &broker, "mixed", expected.len());
    let mut loaded: BTreeMap<u64, (String, u64, String)> = BTreeMap::new();
    for (n, file, position, dedup_key) in rows {
        assert!(
            loaded.insert(n, (file, position, dedup_key)).is_none(),
            "line {n} loaded twice"
        );
    }
    let wanted: BTreeMap<u64, (String, u64, String)> = expected
        .iter()
        .map(|(n, (file, position))| {
            let (host, id) = if *n >= 100 {
                ("old-host", old_id)
            } else {
                (host, app_id)
            };
            (*n, (file.clone(), *position, format!("{host}:{id}:{position}")))
        })
        .collect();
    assert_eq!(loaded, wanted);
}

/// Loads `topic` into SQLite with the source columns until `rows` rows are
/// in (and a moment more, for a duplicate to show); every row's
/// (n, source_file, source_position, dedup_key).
fn load(dir: &Path, broker: &BrokerProcess, topic: &str, rows: usize) -> Vec<(u64, String, u64, String)> {
    let warehouse = dir.join("warehouse.db");
    let config = dir.join("load.toml");
    std::fs::write(
        &config,
        format!(
            "[[load]]\ntopic = \"{topic}\"\ngroup = \"loaders\"\nwarehouse = \"sqlite://{}\"\ntable = \"events\"\n\
             metadata = [\"source_file\", \"source_position\"]\n\n\
             [[load.columns]]\nname = \"event\"\npointer = \"\"\ntype = \"json\"\nnullable = false\n",
            warehouse.display()
        ),
    )
    .unwrap();
    let args = [
        "load",
        "--broker",
        &broker.address,
        "--config",
        &config.display().to_string(),
    ];
    let mut loader = RelayProcess::start(args.iter().map(|s| s.to_string()).collect(), &dir.join("load.log"));
    let read = |warehouse: &PathBuf| -> Vec<(u64, String, u64, String)> {
        let Ok(connection) = rusqlite::Connection::open(warehouse) else {
            return Vec::new();
        };
        let Ok(mut statement) = connection.prepare(
            "select json_extract(event, '$.n'), relay_source_file, relay_source_position, dedup_key from events",
        ) else {
            return Vec::new();
        };
        statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)? as u64,
                    row.get(1)?,
                    row.get::<_, i64>(2)? as u64,
                    row.get(3)?,
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let complete = wait_until(Duration::from_secs(60), || read(&warehouse).len() >= rows);
    assert!(complete, "{} of {rows} rows\n{}", read(&warehouse).len(), loader.log());
    std::thread::sleep(Duration::from_secs(1));
    loader.terminate();
    read(&warehouse)
}

/// The bytes of a partition's segments.
fn segment_bytes(broker: &BrokerProcess, topic: &str) -> u64 {
    std::fs::read_dir(broker.data_dir.join(format!("{topic}-0")))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "log"))
        .map(|path| std::fs::metadata(path).unwrap().len())
        .sum()
}

#[test]
fn lines_from_one_file_take_at_most_130_bytes_each_in_the_log() {
    const LINES: u64 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    create_topic(&broker, "compact");
    create_topic(&broker, "legacy");
    let file = dir.path().join("app.log");
    let mut text = String::new();
    for n in 0..LINES {
        // 105 bytes and the newline.
        text.push_str(&format!("{n:010} {}\n", "x".repeat(94)));
    }
    std::fs::write(&file, &text).unwrap();
    let mut sending = sender(dir.path(), &broker, "compact", &file);
    wait_for_records(&broker, "compact", LINES, &sending);
    sending.terminate();
    let compact_bytes = segment_bytes(&broker, "compact");

    // The same lines with the legacy headers, as the sender wrote them before.
    let sent = consume(&broker, "compact", 1, sticky_keys());
    let header = |name: &str| {
        sent[0]
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    };
    let source = LineSource::read(header).unwrap().unwrap();
    let host = String::from_utf8_lossy(source.host.as_deref().unwrap()).into_owned();
    let file_id = source.file_id.as_deref().unwrap().to_owned();
    let file_text = file.display().to_string();
    let records: Vec<BatchRecord> = text
        .lines()
        .scan(0u64, |position, line| {
            let at = *position;
            *position += line.len() as u64 + 1;
            Some(legacy(line, &host, &file_text, &file_id, at))
        })
        .collect();
    produce(&broker, "legacy", records, Vec::new());
    let legacy_bytes = segment_bytes(&broker, "legacy");

    let per_line = |bytes: u64| bytes as f64 / LINES as f64;
    println!(
        "bytes in the log per 106-byte line: compact {:.1}, legacy {:.1} ({} path bytes)",
        per_line(compact_bytes),
        per_line(legacy_bytes),
        file_text.len()
    );
    assert!(
        compact_bytes <= LINES * LOG_BYTES_PER_LINE_MAX,
        "{compact_bytes} bytes for {LINES} lines: {:.1} a line",
        per_line(compact_bytes)
    );
    assert!(
        legacy_bytes > compact_bytes + LINES * 60,
        "legacy {legacy_bytes}, compact {compact_bytes}"
    );
}
