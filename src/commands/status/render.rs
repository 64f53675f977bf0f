//! The `relay status` screen, drawn from one [`Snapshot`], what earlier looks
//! told ([`History`]) and the scraped metrics: one function per section, in
//! screen order (ACCESS, TOPIC, GROUP, SENDER FILE, LOADER TABLE, PROTECTED
//! TOPIC, then the problems found on the way). Drawing never does I/O except
//! reading the `--sender-state` registries through relay-sender.

use super::scraped::Scraped;
use super::snapshot::{History, Snapshot};
use super::units::{human_bytes, human_seconds};
use crate::cli::StatusArgs;
use relay_client::consumer::TopicPartition;
use relay_client::permissions::Permissions;
use relay_sender::status::file_statuses;
use relay_supervisor::scrape::Sample;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

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

/// The whole screen. Updates `history` with this look's end offsets and
/// committed offsets, for the next look's rates and commit ages.
pub(super) fn render(snapshot: &Snapshot, history: &mut History, args: &StatusArgs, scraped: &Scraped) -> String {
    let mut out = String::new();
    let broker = args.client.brokers();
    let now = relay_client::time::format_rfc3339_micros(relay_proto::clock::now_ms() * 1000);
    let _ = writeln!(out, "cluster {}   broker {broker}   {now}", snapshot.cluster_id);
    render_access(&mut out, args.client.sasl_username.as_deref(), &snapshot.access);
    let started = *history.started.get_or_insert(snapshot.at);
    render_topics(&mut out, snapshot, history);
    render_groups(&mut out, snapshot, history, started, &exact_commit_ages(scraped));

    let mut problems = gap_problems(snapshot);
    let mut files = registry_files(&args.sender_states, &mut problems);
    let loader_lags = read_sender_and_loader_samples(scraped, &mut files, &mut problems);
    render_sender_files(&mut out, files);
    render_loader_lags(&mut out, loader_lags);
    let retention = protected_retention(scraped, &mut problems);
    render_protected_retention(&mut out, &retention);
    for problem in problems {
        let _ = writeln!(out, "\n{problem}");
    }
    out
}

/// Every sample of every address that answered.
fn samples(scraped: &Scraped) -> impl Iterator<Item = &Sample> {
    scraped.iter().filter_map(|(_, s)| s.as_ref().ok()).flatten()
}

/// The TOPIC section; rates over the time since the previous look.
fn render_topics(out: &mut String, snapshot: &Snapshot, history: &mut History) {
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
}

/// Exact commit ages from a scraped broker, by (group, topic, partition).
fn exact_commit_ages(scraped: &Scraped) -> HashMap<(String, String, String), f64> {
    samples(scraped)
        .filter(|sample| sample.name == broker_series::GROUP_COMMIT_AGE)
        .map(|sample| {
            let key = (
                label(sample, "group").into(),
                label(sample, "topic").into(),
                label(sample, "partition").into(),
            );
            (key, sample.value)
        })
        .collect()
}

/// The GROUP section: a row per partition and a total per group; a group
/// with no committed offsets gets one row without them.
fn render_groups(
    out: &mut String,
    snapshot: &Snapshot,
    history: &mut History,
    started: Instant,
    exact_ages: &HashMap<(String, String, String), f64>,
) {
    let _ = writeln!(
        out,
        "\n{:<24} {:<20} {:>7} {:<24} {:>9} {:>12} {:>12} {:>10} {:>10} {:>10}",
        "GROUP", "STATE", "MEMBERS", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "LAG AGE", "COMMIT AGE"
    );
    for group in &snapshot.groups {
        if group.lags.is_empty() {
            let _ = writeln!(out, "{:<24} {:<20} {:>7}", group.group, group.state, group.members);
        }
        let mut total = 0;
        for lag in &group.lags {
            total += lag.lag;
            let exact = exact_ages.get(&(group.group.clone(), lag.topic.clone(), lag.partition.to_string()));
            let age = commit_age(history, snapshot.at, started, (&group.group, lag), exact);
            let lag_age = snapshot
                .lag_seconds(&group.group, lag)
                .map_or("-".into(), human_seconds);
            let _ = writeln!(
                out,
                "{:<24} {:<20} {:>7} {:<24} {:>9} {:>12} {:>12} {:>10} {:>10} {:>10}",
                group.group,
                group.state,
                group.members,
                lag.topic,
                lag.partition,
                lag.committed,
                lag.end_offset,
                lag.lag,
                lag_age,
                age
            );
        }
        if !group.lags.is_empty() {
            let oldest = snapshot
                .group_lag_seconds(group)
                .map_or("unknown".into(), human_seconds);
            let _ = writeln!(
                out,
                "{:<24} total lag {total} records, oldest unloaded {oldest}",
                group.group
            );
        }
    }
}

/// COMMIT AGE of a group's partition: exact when scraped, else the time since
/// its committed offset was seen to move (`>` when not since status started).
/// Records this look's committed offset in `history`.
fn commit_age(
    history: &mut History,
    at: Instant,
    started: Instant,
    (group, lag): (&str, &relay_client::admin::PartitionLag),
    exact: Option<&f64>,
) -> String {
    let tp = TopicPartition {
        topic: lag.topic.clone(),
        partition: lag.partition,
    };
    let seen = history
        .commits
        .entry((group.to_owned(), tp))
        .or_insert((lag.committed, None));
    if seen.0 != lag.committed {
        *seen = (lag.committed, Some(at));
    }
    match (exact, seen.1) {
        (Some(seconds), _) => format!("{seconds:.0}s"),
        (None, Some(moved)) => format!("{}s", (at - moved).as_secs()),
        (None, None) => format!(">{}s", (at - started).as_secs()),
    }
}

/// A problem per partition whose loader reports gaps nobody acknowledged.
fn gap_problems(snapshot: &Snapshot) -> Vec<String> {
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
    problems
}

/// One row per file of the `--sender-state` registries: size and position.
fn registry_files(states: &[PathBuf], problems: &mut Vec<String>) -> BTreeMap<String, FileRow> {
    let mut files: BTreeMap<String, FileRow> = BTreeMap::new();
    for dir in states {
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
    files
}

/// The senders' live "behind" into `files`, their trouble into `problems`;
/// returns the loaders' lags by (table, topic, partition).
fn read_sender_and_loader_samples(
    scraped: &Scraped,
    files: &mut BTreeMap<String, FileRow>,
    problems: &mut Vec<String>,
) -> BTreeMap<(String, String, String), f64> {
    let mut loader_lags = BTreeMap::new();
    for (address, samples) in scraped {
        let samples = match samples {
            Ok(samples) => samples,
            Err(error) => {
                problems.push(format!("scrape {address}: {error}"));
                continue;
            }
        };
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
    loader_lags
}

/// The SENDER FILE section, when any file is known.
fn render_sender_files(out: &mut String, files: BTreeMap<String, FileRow>) {
    if files.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{:<56} {:>14} {:>14} {:>14}",
        "SENDER FILE", "SIZE", "ACKNOWLEDGED", "BEHIND"
    );
    for (file, row) in files {
        let _ = writeln!(out, "{file:<56} {}", row.render());
    }
}

/// The LOADER TABLE section, when any loader was scraped.
fn render_loader_lags(out: &mut String, loader_lags: BTreeMap<(String, String, String), f64>) {
    if loader_lags.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{:<24} {:<24} {:>9} {:>12}",
        "LOADER TABLE", "TOPIC", "PARTITION", "LAG"
    );
    for ((table, topic, partition), lag) in loader_lags {
        let _ = writeln!(out, "{table:<24} {topic:<24} {partition:>9} {lag:>12}");
    }
}

/// Protected retention, from a scraped broker: how close each protected
/// partition is to retention_bytes_hard.
#[derive(Default)]
struct ProtectedRetention {
    /// `retention_bytes_hard` by topic.
    hard_caps: HashMap<String, f64>,
    /// Bytes on disk by (topic, partition).
    sizes: HashMap<(String, String), f64>,
    /// Bytes kept only for a protected group, by (topic, partition).
    held: BTreeMap<(String, String), f64>,
}

/// What the broker says of protected retention; records already lost to a
/// hard cap go to `problems`.
fn protected_retention(scraped: &Scraped, problems: &mut Vec<String>) -> ProtectedRetention {
    let mut retention = ProtectedRetention::default();
    for sample in samples(scraped) {
        let partition = || (label(sample, "topic").to_owned(), label(sample, "partition").to_owned());
        if sample.name == broker_series::RETENTION_HARD_LIMIT_BYTES {
            retention.hard_caps.insert(label(sample, "topic").into(), sample.value);
        } else if sample.name == broker_series::LOG_SIZE_BYTES {
            retention.sizes.insert(partition(), sample.value);
        } else if sample.name == broker_series::RETENTION_PROTECTED_BYTES {
            retention.held.insert(partition(), sample.value);
        } else if sample.name == broker_series::RETENTION_PROTECTED_DELETED_RECORDS && sample.value > 0.0 {
            problems.push(format!(
                "retention deleted {} record(s) of topic {} that protected group {} had not read (the partition passed retention_bytes_hard; see the broker's ERROR log)",
                sample.value,
                label(sample, "topic"),
                label(sample, "group")
            ));
        }
    }
    retention
}

/// The PROTECTED TOPIC section, when any partition holds bytes for a group.
fn render_protected_retention(out: &mut String, retention: &ProtectedRetention) {
    if retention.held.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{:<32} {:>9} {:>12} {:>12} {:>12} {:>8}",
        "PROTECTED TOPIC", "PARTITION", "SIZE", "HELD", "HARD CAP", "OF CAP"
    );
    for ((topic, partition), held_bytes) in &retention.held {
        let size = retention
            .sizes
            .get(&(topic.clone(), partition.clone()))
            .copied()
            .unwrap_or(0.0);
        let (cap, share) = match retention.hard_caps.get(topic) {
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
