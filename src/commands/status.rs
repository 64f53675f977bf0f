//! `relay status [--watch]`: the pipeline on one screen. The cluster id and
//! broker; every topic with its partitions, end offsets, size on disk and
//! produce rate; every group with its state, members and, per partition,
//! committed offset, lag and commit age; and, when asked, each sender file's
//! bytes behind (from `--sender-state` directories or `--scrape`d metrics)
//! and each loader's lag (from `--scrape`d metrics).
//!
//! It also shows what the logged-in user may do (ACCESS): the broker's
//! authorized operations on the cluster, every topic the user can see and
//! every group listed.
//!
//! Rates and commit ages need two looks: a single run looks twice, one
//! interval (at most 1 s) apart; `--watch` refreshes every interval. A commit
//! age is exact when a broker's metrics are scraped, else it is the time
//! since the committed offset was last seen to move (`>` when it has not
//! moved since status started).

use super::client::{connect, fail, runtime};
use crate::cli::StatusArgs;
use crate::exit;
use relay_client::admin::Admin;
use relay_client::consumer::TopicPartition;
use relay_client::permissions::{permissions, Permissions};
use relay_client::ClientError;
use relay_sender::status::file_statuses;
use relay_supervisor::scrape::{scrape_all, Sample};
use relay_supervisor::signal::wait_for_signal;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Longest wait of a single (non-watch) run between its two looks.
const ONE_SHOT_WINDOW_MAX: Duration = Duration::from_secs(1);

/// The broker's series this screen reads, by their names in `/metrics`
/// (docs/operations.md lists them): status reads a broker's exposition as
/// any scraper does, never the broker's own constants.
mod broker_series {
    pub const GROUP_COMMIT_AGE: &str = "relay_broker_group_commit_age_seconds";
    pub const LOG_SIZE_BYTES: &str = "relay_broker_log_size_bytes";
    pub const RETENTION_HARD_LIMIT_BYTES: &str = "relay_broker_retention_hard_limit_bytes";
    pub const RETENTION_PROTECTED_BYTES: &str = "relay_broker_retention_protected_bytes";
    pub const RETENTION_PROTECTED_DELETED_RECORDS: &str = "relay_broker_retention_protected_deleted_records_total";
}

struct TopicRow {
    name: String,
    partitions: usize,
    end_offsets: i64,
    size_bytes: i64,
}

struct GroupRow {
    group: String,
    state: String,
    members: usize,
    lags: Vec<relay_client::admin::PartitionLag>,
}

/// One look at the cluster.
struct Snapshot {
    at: Instant,
    cluster_id: String,
    topics: Vec<TopicRow>,
    groups: Vec<GroupRow>,
    /// What the user may do; the error when the broker would not say.
    access: Result<Permissions, String>,
}

/// What earlier looks tell: previous end offsets, when committed offsets moved.
#[derive(Default)]
struct History {
    started: Option<Instant>,
    previous: Option<(Instant, HashMap<String, i64>)>,
    commits: HashMap<(String, TopicPartition), (i64, Option<Instant>)>,
}

async fn look(admin: &Admin) -> Result<Snapshot, ClientError> {
    let at = Instant::now();
    let cluster_id = admin.cluster().cluster_id().unwrap_or_else(|| "?".into());
    let sizes: HashMap<TopicPartition, i64> = match admin.partition_sizes().await {
        Ok(sizes) => sizes.into_iter().collect(),
        Err(error) => {
            tracing::warn!(%error, "no partition sizes (DescribeLogDirs)");
            HashMap::new()
        }
    };
    let mut topics = Vec::new();
    for (name, partitions) in admin.list_topics().await? {
        let offsets = admin.describe_topic(&name).await?;
        let size_bytes = (0..partitions as i32)
            .filter_map(|partition| {
                sizes.get(&TopicPartition {
                    topic: name.clone(),
                    partition,
                })
            })
            .sum();
        topics.push(TopicRow {
            end_offsets: offsets.iter().map(|p| p.end_offset).sum(),
            name,
            partitions,
            size_bytes,
        });
    }
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let mut groups = Vec::new();
    for summary in admin.list_groups().await? {
        let description = admin.describe_group(&summary.group).await?;
        let lags = admin.lag(&summary.group).await?;
        groups.push(GroupRow {
            state: description.state,
            members: description.members.len(),
            lags,
            group: summary.group,
        });
    }
    let names: Vec<String> = groups.iter().map(|g| g.group.clone()).collect();
    let access = permissions(admin.cluster(), &names).await.map_err(|e| e.to_string());
    Ok(Snapshot {
        at,
        cluster_id,
        topics,
        groups,
        access,
    })
}

/// What the screen knows of one sender file, from its registry and/or a scrape.
#[derive(Default)]
struct FileRow {
    /// `Some(None)`: the registry knows the file but it left its path.
    size: Option<Option<u64>>,
    acked: Option<u64>,
    /// The sender's own figure, when scraped (fresher than the registry's).
    behind: Option<f64>,
}

impl FileRow {
    /// SIZE, ACKNOWLEDGED and BEHIND, all in the same units.
    fn render(&self) -> String {
        let size = match self.size {
            Some(Some(size)) => human_bytes(size as i64),
            Some(None) => "moved".into(),
            None => "-".into(),
        };
        let acked = self.acked.map_or("-".into(), |acked| human_bytes(acked as i64));
        let behind = match (self.behind, self.size, self.acked) {
            (Some(behind), _, _) => human_bytes(behind as i64),
            (None, Some(Some(size)), Some(acked)) => human_bytes(size.saturating_sub(acked) as i64),
            _ => "-".into(),
        };
        format!("{size:>14} {acked:>14} {behind:>14}")
    }
}

fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn label<'a>(sample: &'a Sample, name: &str) -> &'a str {
    sample.labels.get(name).map_or("", String::as_str)
}

/// The ACCESS section: what `user` may do, in the grants' words.
fn render_access(out: &mut String, user: Option<&str>, access: &Result<Permissions, String>) {
    let who = user.map_or_else(|| "no SASL user".to_owned(), |u| format!("user {u:?}"));
    let list = |ops: &Option<Vec<&str>>, group: bool| match ops {
        None => "not reported".to_owned(),
        Some(ops) if ops.is_empty() => "nothing".to_owned(),
        // Kafka's READ of a group is joining and committing: `group` in the grants.
        Some(ops) => ops
            .iter()
            .map(|op| if group && *op == "consume" { "group" } else { op })
            .collect::<Vec<_>>()
            .join(", "),
    };
    match access {
        Err(error) => {
            let _ = writeln!(out, "\nACCESS ({who}): unknown ({error})");
        }
        Ok(access) if access.cluster.is_none() && access.topics.iter().all(|(_, ops)| ops.is_none()) => {
            let _ = writeln!(
                out,
                "\nACCESS ({who}): not reported by the broker (without grants, every user may do everything)"
            );
        }
        Ok(access) => {
            let _ = writeln!(out, "\nACCESS ({who})");
            let _ = writeln!(out, "  cluster: {}", list(&access.cluster, false));
            for (topic, ops) in &access.topics {
                let _ = writeln!(out, "  topic {topic}: {}", list(ops, false));
            }
            for (group, ops) in &access.groups {
                let _ = writeln!(out, "  group {group}: {}", list(ops, true));
            }
            if access.topics.is_empty() {
                let _ = writeln!(out, "  (no topic this user may see)");
            }
        }
    }
}

fn render(
    snapshot: &Snapshot,
    history: &mut History,
    args: &StatusArgs,
    scraped: &[(String, Result<Vec<Sample>, String>)],
) -> String {
    let mut out = String::new();
    let broker = args.client.brokers();
    let now = relay_client::time::format_rfc3339_micros(relay_proto::clock::now_ms() * 1000);
    let _ = writeln!(out, "cluster {}   broker {broker}   {now}", snapshot.cluster_id);
    render_access(&mut out, args.client.sasl_username.as_deref(), &snapshot.access);
    let started = *history.started.get_or_insert(snapshot.at);

    let _ = writeln!(
        out,
        "\n{:<32} {:>10} {:>16} {:>12} {:>12}",
        "TOPIC", "PARTITIONS", "END OFFSETS", "SIZE", "RECORDS/S"
    );
    let ends: HashMap<String, i64> = snapshot
        .topics
        .iter()
        .map(|t| (t.name.clone(), t.end_offsets))
        .collect();
    for topic in &snapshot.topics {
        let rate = match &history.previous {
            Some((at, previous)) if snapshot.at > *at => previous.get(&topic.name).map(|before| {
                format!(
                    "{:.1}",
                    (topic.end_offsets - before) as f64 / (snapshot.at - *at).as_secs_f64()
                )
            }),
            _ => None,
        };
        let _ = writeln!(
            out,
            "{:<32} {:>10} {:>16} {:>12} {:>12}",
            topic.name,
            topic.partitions,
            topic.end_offsets,
            human_bytes(topic.size_bytes),
            rate.unwrap_or_else(|| "-".into())
        );
    }
    history.previous = Some((snapshot.at, ends));

    // Exact commit ages from a scraped broker.
    let mut exact_ages: HashMap<(String, String, String), f64> = HashMap::new();
    for sample in scraped.iter().filter_map(|(_, s)| s.as_ref().ok()).flatten() {
        if sample.name == broker_series::GROUP_COMMIT_AGE {
            let key = (
                label(sample, "group").into(),
                label(sample, "topic").into(),
                label(sample, "partition").into(),
            );
            exact_ages.insert(key, sample.value);
        }
    }
    let _ = writeln!(
        out,
        "\n{:<24} {:<20} {:>7} {:<24} {:>9} {:>12} {:>12} {:>10} {:>10}",
        "GROUP", "STATE", "MEMBERS", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "COMMIT AGE"
    );
    for group in &snapshot.groups {
        if group.lags.is_empty() {
            let _ = writeln!(out, "{:<24} {:<20} {:>7}", group.group, group.state, group.members);
        }
        let mut total = 0;
        for lag in &group.lags {
            total += lag.lag;
            let tp = TopicPartition {
                topic: lag.topic.clone(),
                partition: lag.partition,
            };
            let seen = history
                .commits
                .entry((group.group.clone(), tp))
                .or_insert((lag.committed, None));
            if seen.0 != lag.committed {
                *seen = (lag.committed, Some(snapshot.at));
            }
            let exact = exact_ages.get(&(group.group.clone(), lag.topic.clone(), lag.partition.to_string()));
            let age = match (exact, seen.1) {
                (Some(seconds), _) => format!("{seconds:.0}s"),
                (None, Some(moved)) => format!("{}s", (snapshot.at - moved).as_secs()),
                (None, None) => format!(">{}s", (snapshot.at - started).as_secs()),
            };
            let _ = writeln!(
                out,
                "{:<24} {:<20} {:>7} {:<24} {:>9} {:>12} {:>12} {:>10} {:>10}",
                group.group,
                group.state,
                group.members,
                lag.topic,
                lag.partition,
                lag.committed,
                lag.end_offset,
                lag.lag,
                age
            );
        }
        if !group.lags.is_empty() {
            let _ = writeln!(out, "{:<24} total lag {total}", group.group);
        }
    }

    let mut problems = Vec::new();
    for group in &snapshot.groups {
        for lag in &group.lags {
            let gaps = relay_proto::offset_metadata::unacknowledged_gaps(&lag.metadata);
            if gaps > 0 {
                problems.push(format!(
                    "group {} on {}/{}: {gaps} unacknowledged gap(s), records deleted before they were loaded (relay_gaps in its warehouse; `relay lag` says how to acknowledge)",
                    group.group, lag.topic, lag.partition
                ));
            }
        }
    }
    // One row per file: the registry's size and position, the sender's
    // live "behind" when it is scraped too.
    let mut files: BTreeMap<String, FileRow> = BTreeMap::new();
    for dir in &args.sender_states {
        match file_statuses(dir) {
            Ok(Some(found)) => {
                for file in found {
                    let row = files.entry(file.path).or_default();
                    row.size = Some(file.size);
                    row.acked = Some(file.acked_position);
                }
            }
            Ok(None) => problems.push(format!("{}: {} holds no sender registry", dir.display(), dir.display())),
            Err(error) => problems.push(format!("{}: {error}", dir.display())),
        }
    }
    let mut loader_lags: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    for (address, samples) in scraped {
        match samples {
            Ok(samples) => {
                for sample in samples {
                    if sample.name == relay_sender::metrics::BYTES_BEHIND {
                        files.entry(label(sample, "file").to_owned()).or_default().behind = Some(sample.value);
                    } else if sample.name == relay_sender::metrics::UNREADABLE_PATHS && sample.value > 0.0 {
                        problems.push(format!(
                            "sender of topic {} at {address}: {} path(s) match nothing or cannot be read (its /health and log name them)",
                            label(sample, "topic"),
                            sample.value
                        ));
                    } else if sample.name == relay_sender::metrics::SEND_BLOCKED && sample.value > 0.0 {
                        problems.push(format!(
                            "sender of topic {} at {address}: lines cannot be sent and are being retried (see its log); no line is skipped",
                            label(sample, "topic")
                        ));
                    } else if sample.name == relay_loader::metrics::LAG {
                        let key = (
                            label(sample, "table").into(),
                            label(sample, "topic").into(),
                            label(sample, "partition").into(),
                        );
                        loader_lags.insert(key, sample.value);
                    }
                }
            }
            Err(error) => problems.push(format!("scrape {address}: {error}")),
        }
    }
    if !files.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<56} {:>14} {:>14} {:>14}",
            "SENDER FILE", "SIZE", "ACKNOWLEDGED", "BEHIND"
        );
        for (file, row) in files {
            let _ = writeln!(out, "{file:<56} {}", row.render());
        }
    }
    if !loader_lags.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<24} {:<24} {:>9} {:>12}",
            "LOADER TABLE", "TOPIC", "PARTITION", "LAG"
        );
        for ((table, topic, partition), lag) in loader_lags {
            let _ = writeln!(out, "{table:<24} {topic:<24} {partition:>9} {lag:>12}");
        }
    }
    // Protected retention, from a scraped broker: how close each protected
    // partition is to retention_bytes_hard, and records already lost.
    let mut hard_caps: HashMap<String, f64> = HashMap::new();
    let mut sizes: HashMap<(String, String), f64> = HashMap::new();
    let mut held: BTreeMap<(String, String), f64> = BTreeMap::new();
    for sample in scraped.iter().filter_map(|(_, s)| s.as_ref().ok()).flatten() {
        let partition = || (label(sample, "topic").to_owned(), label(sample, "partition").to_owned());
        if sample.name == broker_series::RETENTION_HARD_LIMIT_BYTES {
            hard_caps.insert(label(sample, "topic").into(), sample.value);
        } else if sample.name == broker_series::LOG_SIZE_BYTES {
            sizes.insert(partition(), sample.value);
        } else if sample.name == broker_series::RETENTION_PROTECTED_BYTES {
            held.insert(partition(), sample.value);
        } else if sample.name == broker_series::RETENTION_PROTECTED_DELETED_RECORDS && sample.value > 0.0 {
            problems.push(format!(
                "retention deleted {} record(s) of topic {} that protected group {} had not read (the partition passed retention_bytes_hard; see the broker's ERROR log)",
                sample.value,
                label(sample, "topic"),
                label(sample, "group")
            ));
        }
    }
    if !held.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<32} {:>9} {:>12} {:>12} {:>12} {:>8}",
            "PROTECTED TOPIC", "PARTITION", "SIZE", "HELD", "HARD CAP", "OF CAP"
        );
        for ((topic, partition), held_bytes) in &held {
            let size = sizes.get(&(topic.clone(), partition.clone())).copied().unwrap_or(0.0);
            let (cap, share) = match hard_caps.get(topic) {
                Some(cap) => (human_bytes(*cap as i64), format!("{:.0}%", 100.0 * size / cap)),
                None => ("none".into(), "-".into()),
            };
            let _ = writeln!(
                out,
                "{topic:<32} {partition:>9} {:>12} {:>12} {cap:>12} {share:>8}",
                human_bytes(size as i64),
                human_bytes(*held_bytes as i64)
            );
        }
    }
    for problem in problems {
        let _ = writeln!(out, "\n{problem}");
    }
    out
}

pub fn run(args: StatusArgs) -> i32 {
    if args.watch {
        // Warnings would scroll through the redrawn screen; what goes wrong
        // is shown on the screen itself.
        relay_supervisor::logging::init_logging_at("error");
    }
    runtime().block_on(async move {
        let admin = match connect(&args.client, "relay-status").await {
            Ok(cluster) => Admin::new(cluster),
            Err(error) => return fail("status", &error),
        };
        let interval = Duration::from_millis(args.interval_ms.max(100));
        let mut history = History::default();
        if !args.watch {
            // Two looks, for rates.
            if let Err(error) = look(&admin).await.map(|first| render(&first, &mut history, &args, &[])) {
                return fail("status", &error);
            }
            tokio::time::sleep(interval.min(ONE_SHOT_WINDOW_MAX)).await;
            let scraped = scrape_all(&args.scrapes).await;
            return match look(&admin).await {
                Ok(snapshot) => {
                    print!("{}", render(&snapshot, &mut history, &args, &scraped));
                    exit::SUCCESS
                }
                Err(error) => fail("status", &error),
            };
        }
        let stop = wait_for_signal();
        tokio::pin!(stop);
        loop {
            let scraped = scrape_all(&args.scrapes).await;
            let screen = match look(&admin).await {
                Ok(snapshot) => render(&snapshot, &mut history, &args, &scraped),
                Err(error) => format!("relay status: {error} (retrying)\n"),
            };
            // Home the cursor, draw, clear what the last screen left below.
            print!("\x1b[H\x1b[2J{screen}");
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
            tokio::select! {
                _ = &mut stop => return exit::SUCCESS,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_client::admin::PartitionLag;
    use relay_client::settings::ClientSettings;
    use relay_sender::identity::{key_of, FileId, Fingerprint};
    use relay_sender::registry::{Entry, Registry};
    use std::path::{Path, PathBuf};

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
            watch: false,
            interval_ms: 1000,
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

GROUP                    STATE                MEMBERS TOPIC                    PARTITION    COMMITTED          END        LAG COMMIT AGE
loader                   Stable                     1 events                           0           20          150        130         0s
loader                   Stable                     1 events                           1            3            9          6        42s
loader                   total lag 136
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
}
