//! The `relay status` screen, pinned: every section drawn from a fixed
//! snapshot, scrape and sender state, compared byte for byte.

use super::render::render;
use super::snapshot::{GroupRow, History, Snapshot, TopicRow};
use super::*;
use relay_client::admin::PartitionLag;
use relay_client::permissions::Permissions;
use relay_client::settings::ClientSettings;
use relay_sender::identity::{key_of, FileId, Fingerprint};
use relay_sender::registry::{Entry, Registry};
use relay_supervisor::scrape::Sample;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longer than the SENDER FILE column, so that its padding does not
/// depend on where the temporary directory is.
const LONG_NAME: &str = "a-file-name-long-enough-to-overflow-the-fifty-six-column-field.log";

fn lag(topic: &str, partition: i32, committed: i64, end_offset: i64, metadata: &str) -> PartitionLag {
    PartitionLag {
        topic: topic.into(),
        partition,
        committed,
        end_offset,
        lag: end_offset - committed,
        metadata: metadata.into(),
    }
}

fn snapshot(at: Instant, end_offsets: i64, committed: i64) -> Snapshot {
    let topic = |name: &str, partitions, end_offsets, size_bytes| TopicRow {
        name: name.into(),
        partitions,
        end_offsets,
        size_bytes,
    };
    Snapshot {
        at,
        at_ms: 1_000_000_000,
        oldest_ms: [(("loader".to_owned(), "events".to_owned(), 0), 1_000_000_000 - 90_000)].into(),
        cluster_id: "c-1".into(),
        topics: vec![topic("events", 2, end_offsets, 5_000_000), topic("t", 1, 7, 100)],
        groups: vec![
            GroupRow {
                group: "loader".into(),
                state: "Stable".into(),
                members: 1,
                lags: vec![
                    lag("events", 0, committed, end_offsets, ""),
                    lag("events", 1, 3, 9, &relay_proto::offset_metadata::encode_gaps(2)),
                ],
            },
            GroupRow {
                group: "idle".into(),
                state: "Empty".into(),
                members: 0,
                lags: vec![],
            },
        ],
        access: Ok(Permissions {
            cluster: Some(vec!["describe"]),
            topics: vec![
                ("events".into(), Some(vec!["read", "write"])),
                ("t".into(), Some(vec![])),
            ],
            groups: vec![("loader".into(), Some(vec!["consume"])), ("idle".into(), None)],
        }),
    }
}

fn sample(name: &str, labels: &[(&str, &str)], value: f64) -> Sample {
    Sample {
        name: name.into(),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        value,
    }
}

fn scraped(file: &str) -> Vec<(String, Result<Vec<Sample>, String>)> {
    let partition = |p| [("topic", "t"), ("partition", p)];
    let samples = vec![
        sample(
            "relay_broker_group_commit_age_seconds",
            &[("group", "loader"), ("topic", "events"), ("partition", "1")],
            42.4,
        ),
        sample("relay_broker_retention_hard_limit_bytes", &[("topic", "t")], 1000.0),
        sample("relay_broker_log_size_bytes", &partition("0"), 250.0),
        sample("relay_broker_retention_protected_bytes", &partition("0"), 200.0),
        sample(
            "relay_broker_log_size_bytes",
            &[("topic", "u"), ("partition", "0")],
            10.0,
        ),
        sample(
            "relay_broker_retention_protected_bytes",
            &[("topic", "u"), ("partition", "0")],
            5.0,
        ),
        sample(
            "relay_broker_retention_protected_deleted_records_total",
            &[("topic", "t"), ("group", "loader")],
            3.0,
        ),
        sample("relay_sender_bytes_behind", &[("file", file)], 2048.0),
        sample("relay_sender_bytes_behind", &[("file", "/only/scraped.log")], 5.0),
        sample("relay_sender_unreadable_paths", &[("topic", "events")], 2.0),
        sample("relay_sender_send_blocked", &[("topic", "events")], 1.0),
        sample(
            "relay_loader_lag",
            &[("table", "events"), ("topic", "events"), ("partition", "0")],
            12.0,
        ),
    ];
    vec![
        ("127.0.0.1:9100".into(), Ok(samples)),
        (
            "127.0.0.1:9101".into(),
            Err("cannot reach metrics at 127.0.0.1:9101: refused".into()),
        ),
    ]
}

/// A state directory knowing two files: one still at its path, one gone.
fn sender_state(root: &Path) -> (PathBuf, PathBuf) {
    let state = root.join("state");
    let here = root.join(LONG_NAME);
    std::fs::write(&here, vec![b'x'; 3000]).unwrap();
    let gone = root.join(format!("gone-{LONG_NAME}"));
    std::fs::write(&gone, b"y\n").unwrap();
    let registry = Registry::open(&state).unwrap();
    for (path, acked_position) in [(&here, 1000), (&gone, 2)] {
        let entry = Entry {
            fingerprint: Fingerprint { bytes: 0, crc: 0 },
            acked_position,
            file_id: FileId(1),
            previous: None,
            before: None,
            path: path.clone(),
        };
        registry.set(key_of(&std::fs::File::open(path).unwrap()).unwrap(), entry);
    }
    registry.save().unwrap();
    std::fs::remove_file(&gone).unwrap();
    (state, here)
}

#[test]
fn screen_is_unchanged() {
    let root = tempfile::tempdir().unwrap();
    let (state, here) = sender_state(root.path());
    let args = StatusArgs {
        client: ClientSettings {
            brokers: Some("127.0.0.1:9092".into()),
            sasl_username: Some("alice".into()),
            ..ClientSettings::default()
        },
        config: None,
        watch: None,
        interval_ms: 1000,
        format: "text".into(),
        sender_states: vec![state, root.path().join("no-state")],
        scrapes: vec![],
    };
    let start = Instant::now();
    let mut history = History::default();
    render(&snapshot(start, 100, 10), &mut history, &args, &[]);
    let screen = render(
        &snapshot(start + Duration::from_secs(2), 150, 20),
        &mut history,
        &args,
        &scraped(&here.display().to_string()),
    );
    let (first, rest) = screen.split_once('\n').unwrap();
    assert!(first.starts_with("cluster c-1   broker 127.0.0.1:9092   "), "{first}");
    let rest = rest.replace(&root.path().display().to_string(), "<root>");
    // A deliberate change of the screen: write it out, read it, paste it below.
    if let Ok(path) = std::env::var("RELAY_STATUS_GOLDEN_WRITE") {
        std::fs::write(path, &rest).unwrap();
    }
    assert_eq!(rest, GOLDEN);
}

const GOLDEN: &str = r#"
ACCESS (user "alice")
  cluster: describe
  topic events: read, write
  topic t: nothing
  group loader: group
  group idle: not reported

TOPIC                            PARTITIONS      END OFFSETS         SIZE    RECORDS/S
events                                    2              150      4.8 MiB         25.0
t                                         1                7        100 B          0.0

GROUP                    STATE                MEMBERS TOPIC                    PARTITION    COMMITTED          END        LAG    LAG AGE COMMIT AGE
loader                   Stable                     1 events                           0           20          150        130      1m30s         0s
loader                   Stable                     1 events                           1            3            9          6          -        42s
loader                   total lag 136 records, oldest unloaded 1m30s
idle                     Empty                      0

SENDER FILE                                                        SIZE   ACKNOWLEDGED         BEHIND
/only/scraped.log                                                     -              -            5 B
<root>/a-file-name-long-enough-to-overflow-the-fifty-six-column-field.log        2.9 KiB         1000 B        2.0 KiB
<root>/gone-a-file-name-long-enough-to-overflow-the-fifty-six-column-field.log          moved            2 B              -

LOADER TABLE             TOPIC                    PARTITION          LAG
events                   events                           0           12

PROTECTED TOPIC                  PARTITION         SIZE         HELD     HARD CAP   OF CAP
t                                        0        250 B        200 B       1000 B      25%
u                                        0         10 B          5 B         none        -

group loader on events/1: 2 unacknowledged gap(s), records deleted before they were loaded (relay_gaps in its warehouse; `relay lag` says how to acknowledge)

<root>/no-state: <root>/no-state holds no sender registry

sender of topic events at 127.0.0.1:9100: 2 path(s) match nothing or cannot be read (its /health and log name them)

sender of topic events at 127.0.0.1:9100: lines cannot be sent and are being retried (see its log); no line is skipped

scrape 127.0.0.1:9101: cannot reach metrics at 127.0.0.1:9101: refused

retention deleted 3 record(s) of topic t that protected group loader had not read (the partition passed retention_bytes_hard; see the broker's ERROR log)
"#;

#[test]
fn health_answers_become_reasons_named_by_role() {
    let answer = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\r\nunhealthy\n\
                  broker: ok\nload events: warehouse unavailable; retrying\nsend app: /x/*.log: matches no directory\n";
    let healths = vec![
        ("127.0.0.1:9100".to_owned(), super::health::parse(answer)),
        (
            "127.0.0.1:9101".to_owned(),
            Err("cannot reach 127.0.0.1:9101: refused".to_owned()),
        ),
    ];
    let metrics = vec![(
        "127.0.0.1:9100".to_owned(),
        Ok(vec![
            sample("relay_loader_records_unrouted_total", &[("table", "events")], 4.0),
            sample("relay_loader_rows_rejected_total", &[("table", "events")], 2.0),
        ]),
    )];
    let snapshot = snapshot(Instant::now(), 100, 10);
    let seen = |snapshot| verdict::Seen {
        broker_address: "127.0.0.1:9092",
        snapshot,
        healths: &healths[..1],
        scraped: &metrics,
        backlogs: &[],
    };
    let judged = verdict::judge(&seen(Ok(&snapshot)));
    let reasons: Vec<&str> = judged.reasons.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "loader events: warehouse unavailable; retrying",
            "sender app: /x/*.log: matches no directory",
            "loader events: 4 record(s) unrouted since it started (no route took them and it has no default table)",
            "group loader on events/1: 2 unacknowledged gap(s)",
        ]
    );
    assert_eq!(judged.level(), verdict::Level::Degraded);
    assert_eq!(judged.level().exit_code(), crate::exit::FAILURE);

    let down = verdict::Seen {
        healths: &healths,
        ..seen(Err("connection refused"))
    };
    let judged = verdict::judge(&down);
    assert_eq!(judged.level(), verdict::Level::Down);
    assert_eq!(
        judged.reasons[0].1,
        "broker 127.0.0.1:9092 unreachable (connection refused)"
    );
    assert!(judged
        .reasons
        .iter()
        .any(|(_, r)| r.starts_with("role at 127.0.0.1:9101 does not answer")));
    assert_eq!(verdict::loader_counts(&metrics)["events"].rejected, 2.0);
}

#[test]
fn backlog_counts_unacknowledged_bytes_from_the_state_directory() {
    let root = tempfile::tempdir().unwrap();
    let (state, _) = sender_state(root.path());
    let backlogs = verdict::backlogs(&[state.clone(), root.path().join("no-state")]);
    assert_eq!((backlogs[0].files, backlogs[0].bytes, backlogs[0].moved), (1, 2000, 1));
    assert_eq!(backlogs[0].error, None);
    assert!(backlogs[1].error.as_deref().unwrap().contains("no sender registry"));
    assert_eq!(super::units::human_seconds(3725.0), "1h02m");
}
