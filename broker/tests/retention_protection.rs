//! Retention that respects protected groups: a floor keeps unread segments
//! past retention_bytes, the hard cap deletes them anyway (down to the cap,
//! naming the offsets, counting them per group), and a log or topic without
//! protection is deleted exactly as plain retention always did.

mod common;

use common::{open, segment_files, small_config, T0_MS};
use relay_broker::config::{BrokerConfig, TopicSettings};
use relay_broker::log::{FaultInjector, FsyncPolicy, LogConfig, PartitionLog, RetentionFloor};
use relay_broker::topics::retention::{CommittedOffsets, UnreadDeletion, PROTECTED_DELETED_RECORDS_METRIC};
use relay_broker::topics::Topics;
use relay_proto::{BatchBuilder, RecordSpec};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// 56 batches of 4 records of 40 bytes, about 250 bytes each: seven 2 KiB
/// segments, about 14 KiB, under the default hard cap of 4 x 4096.
const BATCHES: u64 = 56;

fn protected_config() -> LogConfig {
    LogConfig {
        retention_bytes: 4096,
        ..small_config(FsyncPolicy::Never)
    }
}

fn fill(log: &PartitionLog, batches: u64, timestamp_ms: impl Fn(u64) -> i64) {
    for tag in 0..batches {
        let mut builder = BatchBuilder::new(timestamp_ms(tag));
        for index in 0..4 {
            builder.push(RecordSpec::value(format!("{tag:>20} {index:>19}").into_bytes()));
        }
        log.append(&mut builder.build()).unwrap();
    }
}

/// Base offset and size of each segment of a partition directory, oldest first.
fn segments(dir: &Path) -> Vec<(i64, u64)> {
    segment_files(dir)
        .iter()
        .map(|path| {
            let base = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            (base, std::fs::metadata(path).unwrap().len())
        })
        .collect()
}

/// The log start plain retention leaves on a copy of `dir`'s log.
fn plain_retention_start(dir: &Path, config: &LogConfig, now_ms: i64) -> i64 {
    let copy = tempfile::tempdir().unwrap();
    common::copy_dir(dir, copy.path());
    let log = open(copy.path(), config);
    log.enforce_retention(now_ms, RetentionFloor::Unprotected).unwrap();
    log.log_start_offset()
}

#[test]
fn protected_unread_segments_survive_retention_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let config = protected_config();
    let log = open(dir.path(), &config);
    fill(&log, BATCHES, |_| T0_MS);
    let before = segments(dir.path());
    assert_eq!(before.len(), 7, "{before:?}");
    let plain_start = plain_retention_start(dir.path(), &config, T0_MS);
    assert_eq!(plain_start, before[4].0, "plain retention keeps about 4 KiB");
    // The slowest protected group has read into the third segment.
    let floor = before[2].0 + 1;
    let held: u64 = before[2].1 + before[3].1;
    assert_eq!(
        log.retention_protected_bytes(T0_MS, RetentionFloor::KeepFrom(floor)),
        held
    );

    let outcome = log.enforce_retention(T0_MS, RetentionFloor::KeepFrom(floor)).unwrap();
    assert_eq!(
        outcome.offsets_deleted,
        0..before[2].0,
        "only what every group has read"
    );
    assert_eq!(outcome.unread_offsets_deleted, 0..0);
    assert_eq!(log.log_start_offset(), before[2].0);
    assert_eq!(
        log.retention_protected_bytes(T0_MS, RetentionFloor::KeepFrom(floor)),
        held
    );
    assert_eq!(common::read_all(&log, floor, 4096).first().unwrap().0, floor);

    // A group with no committed offset keeps everything from the log start.
    let outcome = log.enforce_retention(T0_MS, RetentionFloor::KeepFrom(0)).unwrap();
    assert_eq!((outcome.segments_deleted, log.log_start_offset()), (0, before[2].0));
    // Once the floor passes them, plain retention deletes them as usual.
    log.enforce_retention(T0_MS, RetentionFloor::KeepFrom(log.end_offset()))
        .unwrap();
    assert_eq!(log.log_start_offset(), plain_start);
    assert_eq!(log.retention_protected_bytes(T0_MS, RetentionFloor::KeepFrom(floor)), 0);
}

#[test]
fn hard_cap_deletes_unread_segments_down_to_the_cap_and_names_their_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes_hard: Some(8192),
        ..protected_config()
    };
    let log = open(dir.path(), &config);
    fill(&log, BATCHES, |_| T0_MS);
    let before = segments(dir.path());
    let total: u64 = before.iter().map(|(_, bytes)| bytes).sum();
    // Oldest first, segments go while the log is over the cap.
    let mut kept = 0;
    let mut left = total;
    while left > 8192 {
        left -= before[kept].1;
        kept += 1;
    }
    assert_eq!(kept, 3, "{before:?}");

    let outcome = log.enforce_retention(T0_MS, RetentionFloor::KeepFrom(0)).unwrap();
    assert_eq!(outcome.offsets_deleted, 0..before[kept].0);
    assert_eq!(outcome.unread_offsets_deleted, 0..before[kept].0);
    assert_eq!(log.log_start_offset(), before[kept].0);
    assert_eq!(log.size_bytes(), left);
    assert!(
        left <= 8192 && left + before[kept - 1].1 > 8192,
        "down to the cap, not below it"
    );
    // Within the cap again, the floor holds.
    let outcome = log.enforce_retention(T0_MS, RetentionFloor::KeepFrom(0)).unwrap();
    assert_eq!(outcome.segments_deleted, 0);

    // Unread offsets start at the floor when it lies inside what was deleted.
    fill(&log, 16, |_| T0_MS);
    let floor = log.log_start_offset() + 2;
    let start = log.log_start_offset();
    let outcome = log.enforce_retention(T0_MS, RetentionFloor::KeepFrom(floor)).unwrap();
    assert_eq!(outcome.offsets_deleted.start, start);
    assert_eq!(outcome.unread_offsets_deleted, floor..log.log_start_offset());
}

#[test]
fn unprotected_log_is_deleted_exactly_as_plain_retention_did() {
    for config in [
        protected_config(),
        LogConfig {
            retention_bytes: -1,
            retention_ms: 60_000,
            retention_bytes_hard: Some(4096),
            ..small_config(FsyncPolicy::Never)
        },
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), &config);
        // Half the batches an hour older than the rest.
        fill(&log, BATCHES, |tag| {
            T0_MS + if tag < BATCHES / 2 { 0 } else { 3_600_000 }
        });
        let now = T0_MS + 3_600_000;
        let copy = tempfile::tempdir().unwrap();
        common::copy_dir(dir.path(), copy.path());
        let all_read = open(copy.path(), &config);
        assert_eq!(log.retention_protected_bytes(now, RetentionFloor::Unprotected), 0);

        let plain = log.enforce_retention(now, RetentionFloor::Unprotected).unwrap();
        let read = all_read
            .enforce_retention(now, RetentionFloor::KeepFrom(all_read.end_offset()))
            .unwrap();
        assert!(plain.segments_deleted > 0, "{config:?}");
        assert_eq!(plain, read, "a floor at the end changes nothing");
        assert_eq!(plain.unread_offsets_deleted, 0..0);
        assert_eq!(log.log_start_offset(), all_read.log_start_offset());
        assert_eq!(log.log_start_offset(), plain.offsets_deleted.end);
    }
}

/// Committed offsets by (group, partition) of topic "t".
#[derive(Default)]
struct Offsets(BTreeMap<(String, i32), i64>);

impl Offsets {
    fn commit(&mut self, group: &str, offset: i64) {
        self.0.insert((group.to_owned(), 0), offset);
    }
}

impl CommittedOffsets for Offsets {
    fn committed_offset(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        assert_eq!(topic, "t");
        self.0.get(&(group.to_owned(), partition)).copied()
    }
}

fn broker_config(dir: &Path, hard: Option<i64>) -> BrokerConfig {
    let mut config = BrokerConfig {
        data_dir: dir.to_path_buf(),
        log: LogConfig {
            index_bytes_max: 4096,
            ..protected_config()
        },
        ..BrokerConfig::default()
    };
    config.topics.insert(
        "t".into(),
        TopicSettings {
            protected_groups: Some(vec!["fast".into(), "slow".into()]),
            retention_bytes_hard: hard,
            ..TopicSettings::default()
        },
    );
    config
}

/// Opens the topics of `config` with topic "t" and an unprotected "plain",
/// both filled alike.
fn filled_topics(config: &BrokerConfig) -> (Topics, Arc<PartitionLog>, Arc<PartitionLog>) {
    let topics = Topics::open(config, FaultInjector::default()).unwrap();
    let protected = Arc::clone(topics.create("t", 1, 1, &[], false).unwrap().partition(0).unwrap());
    let plain = Arc::clone(topics.create("plain", 1, 1, &[], false).unwrap().partition(0).unwrap());
    fill(&protected, BATCHES, |_| T0_MS);
    fill(&plain, BATCHES, |_| T0_MS);
    (topics, protected, plain)
}

#[test]
fn topic_keeps_from_its_slowest_protected_group_and_a_group_without_commits_keeps_all() {
    let dir = tempfile::tempdir().unwrap();
    let (topics, log, plain) = filled_topics(&broker_config(dir.path(), None));
    let bases: Vec<i64> = segments(log.dir()).iter().map(|(base, _)| *base).collect();
    let mut offsets = Offsets::default();
    offsets.commit("fast", log.end_offset());

    assert_eq!(topics.enforce_retention(T0_MS, &offsets), Vec::new());
    assert_eq!(
        log.log_start_offset(),
        0,
        "\"slow\" never committed: everything is kept"
    );
    let plain_start = plain.log_start_offset();
    assert_eq!(plain_start, bases[4], "the unprotected topic is retained as before");

    offsets.commit("slow", bases[2] + 1);
    assert_eq!(topics.enforce_retention(T0_MS, &offsets), Vec::new());
    assert_eq!(log.log_start_offset(), bases[2]);
    let topic = topics.get("t").unwrap();
    assert_eq!(
        topic.retention_floor(0, &offsets),
        RetentionFloor::KeepFrom(bases[2] + 1)
    );
    assert_eq!(
        topics.get("plain").unwrap().retention_floor(0, &offsets),
        RetentionFloor::Unprotected
    );

    offsets.commit("slow", log.end_offset());
    topics.enforce_retention(T0_MS, &offsets);
    assert_eq!(log.log_start_offset(), plain_start);
}

#[test]
fn hard_cap_deletions_are_logged_and_counted_per_group_that_had_not_read_them() {
    let dir = tempfile::tempdir().unwrap();
    let (topics, log, plain) = filled_topics(&broker_config(dir.path(), Some(8192)));
    let bases: Vec<i64> = segments(log.dir()).iter().map(|(base, _)| *base).collect();
    let mut offsets = Offsets::default();
    offsets.commit("fast", bases[2] + 1);

    let recorder = CountingRecorder::default();
    let unread = metrics::with_local_recorder(&recorder, || topics.enforce_retention(T0_MS, &offsets));
    let deleted_end = bases[3];
    assert_eq!(log.log_start_offset(), deleted_end);
    assert_eq!(
        unread,
        vec![
            UnreadDeletion {
                topic: "t".into(),
                partition: 0,
                group: "fast".into(),
                offsets: bases[2] + 1..deleted_end,
            },
            UnreadDeletion {
                topic: "t".into(),
                partition: 0,
                group: "slow".into(),
                offsets: 0..deleted_end,
            },
        ]
    );
    assert_eq!(
        recorder.counts(),
        BTreeMap::from([
            (
                format!("{PROTECTED_DELETED_RECORDS_METRIC}{{topic=t,group=fast}}"),
                (deleted_end - bases[2] - 1) as u64
            ),
            (
                format!("{PROTECTED_DELETED_RECORDS_METRIC}{{topic=t,group=slow}}"),
                deleted_end as u64
            ),
        ])
    );
    assert_eq!(
        plain.log_start_offset(),
        bases[4],
        "the unprotected topic is retained as before"
    );
}

#[test]
fn protection_is_read_from_the_config_at_every_open_and_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let protected = broker_config(dir.path(), Some(8192));
    let topics = Topics::open(&protected, FaultInjector::default()).unwrap();
    topics.create("t", 1, 1, &[], false).unwrap();
    let file = std::fs::read_to_string(dir.path().join("topics/t.toml")).unwrap();
    assert!(!file.contains("protected") && !file.contains("hard"), "{file}");
    topics.close_all();

    let unprotected = BrokerConfig {
        topics: BTreeMap::new(),
        ..protected.clone()
    };
    let topics = Topics::open(&unprotected, FaultInjector::default()).unwrap();
    let topic = topics.get("t").unwrap();
    assert_eq!(
        topic.retention_floor(0, &Offsets::default()),
        RetentionFloor::Unprotected
    );
    assert_eq!(
        topic.log_config.retention_hard_bytes_max(),
        Some(4 * 4096),
        "the default cap"
    );
    topics.close_all();

    let topics = Topics::open(&protected, FaultInjector::default()).unwrap();
    let topic = topics.get("t").unwrap();
    assert_eq!(
        topic.retention_floor(0, &Offsets::default()),
        RetentionFloor::KeepFrom(0)
    );
    assert_eq!(topic.log_config.retention_hard_bytes_max(), Some(8192));
}

/// Counter increments by name and labels; gauges and histograms dropped.
#[derive(Default)]
struct CountingRecorder(Arc<Mutex<BTreeMap<String, u64>>>);

impl CountingRecorder {
    fn counts(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap().clone()
    }
}

struct CountingHandle(Arc<Mutex<BTreeMap<String, u64>>>, String);

impl metrics::CounterFn for CountingHandle {
    fn increment(&self, value: u64) {
        *self.0.lock().unwrap().entry(self.1.clone()).or_default() += value;
    }
    fn absolute(&self, value: u64) {
        self.0.lock().unwrap().insert(self.1.clone(), value);
    }
}

impl metrics::Recorder for CountingRecorder {
    fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        metrics::Counter::from_arc(Arc::new(CountingHandle(Arc::clone(&self.0), name)))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}
