//! `relay status`'s verdict: OK, DEGRADED or DOWN, and one short reason per
//! problem, naming the role and what. Drawn from every role status can see:
//! the broker (reachable or not), each `--scrape`d address's `/health` (the
//! same checks the role answers with, so status and /health agree) and
//! `/metrics` (unrouted and lost records, blocked senders, protected data
//! deleted), the groups' unacknowledged gaps, and each `--sender-state`
//! directory (its backlog, [`Backlog`]). Judging only: nothing here asks
//! or draws.

use super::health::{role_of, Healths};
use super::scraped::Scraped;
use super::snapshot::Snapshot;
use crate::exit;
use relay_sender::status::file_statuses;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How bad it is, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Level {
    Ok,
    /// Running, but a role says it is not doing its job (or data was lost).
    Degraded,
    /// The broker or a role does not answer.
    Down,
}

impl Level {
    pub(super) fn word(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Degraded => "DEGRADED",
            Level::Down => "DOWN",
        }
    }

    /// The command's exit code: 0 OK, 1 DEGRADED, 3 DOWN (as the other
    /// commands exit 3 when the broker cannot be reached).
    pub(super) fn exit_code(self) -> i32 {
        match self {
            Level::Ok => exit::SUCCESS,
            Level::Degraded => exit::FAILURE,
            Level::Down => exit::UNREACHABLE,
        }
    }
}

/// The verdict and its reasons, in the order found.
#[derive(Debug, Default)]
pub(super) struct Verdict {
    pub(super) reasons: Vec<(Level, String)>,
}

impl Verdict {
    pub(super) fn level(&self) -> Level {
        self.reasons.iter().map(|(level, _)| *level).max().unwrap_or(Level::Ok)
    }

    fn add(&mut self, level: Level, reason: String) {
        self.reasons.push((level, reason));
    }
}

/// What one `--sender-state` directory holds that the broker has not
/// acknowledged: files still at their path with bytes past their
/// acknowledged position, and those bytes; files that left their path
/// (rotated away, deleted) cannot be measured and are counted apart.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Backlog {
    pub(super) dir: PathBuf,
    pub(super) files: u64,
    pub(super) bytes: u64,
    pub(super) moved: u64,
    /// Why the directory could not be read, if it could not.
    pub(super) error: Option<String>,
}

/// The backlog of each state directory: read from disk, so it is there
/// when the broker is not.
pub(super) fn backlogs(dirs: &[PathBuf]) -> Vec<Backlog> {
    dirs.iter().map(|dir| backlog(dir)).collect()
}

fn backlog(dir: &Path) -> Backlog {
    let mut backlog = Backlog {
        dir: dir.to_path_buf(),
        ..Backlog::default()
    };
    match file_statuses(dir) {
        Ok(Some(files)) => {
            for file in files {
                match file.size {
                    Some(size) if size > file.acked_position => {
                        backlog.files += 1;
                        backlog.bytes += size - file.acked_position;
                    }
                    Some(_) => {}
                    None => backlog.moved += 1,
                }
            }
        }
        Ok(None) => backlog.error = Some("holds no sender registry (not a sender's state_dir?)".into()),
        Err(error) => backlog.error = Some(error.to_string()),
    }
    backlog
}

/// Everything one look saw, to judge.
pub(super) struct Seen<'a> {
    pub(super) broker_address: &'a str,
    /// The cluster, or why it could not be asked.
    pub(super) snapshot: Result<&'a Snapshot, &'a str>,
    pub(super) healths: &'a Healths,
    pub(super) scraped: &'a Scraped,
    pub(super) backlogs: &'a [Backlog],
}

/// The verdict on what was seen, in the order: broker, roles' /health,
/// roles' metrics, groups, sender state.
pub(super) fn judge(seen: &Seen) -> Verdict {
    let mut verdict = Verdict::default();
    if let Err(error) = seen.snapshot {
        verdict.add(
            Level::Down,
            format!("broker {} unreachable ({error})", seen.broker_address),
        );
    }
    judge_healths(&mut verdict, seen.healths);
    judge_metrics(&mut verdict, seen.scraped);
    if let Ok(snapshot) = seen.snapshot {
        judge_gaps(&mut verdict, snapshot);
    }
    for backlog in seen.backlogs {
        if let Some(error) = &backlog.error {
            verdict.add(
                Level::Degraded,
                format!("sender state {}: {error}", backlog.dir.display()),
            );
        }
    }
    verdict
}

/// A role that does not answer is down; a failing check degrades.
fn judge_healths(verdict: &mut Verdict, healths: &Healths) {
    for (address, answer) in healths {
        match answer {
            Err(error) => verdict.add(Level::Down, format!("role at {address} does not answer ({error})")),
            Ok(checks) => {
                for (name, outcome) in checks {
                    if let Err(reason) = outcome {
                        verdict.add(Level::Degraded, format!("{}: {reason}", role_of(name)));
                    }
                }
            }
        }
    }
}

/// The loaders' and senders' counters and gauges that /health does not
/// judge but an operator must hear of (each has an alert in
/// deploy/prometheus/relay-rules.yml). Counters count since the role
/// started.
fn judge_metrics(verdict: &mut Verdict, scraped: &Scraped) {
    let counts = loader_counts(scraped);
    for (table, count) in &counts {
        if count.unrouted > 0.0 {
            verdict.add(
                Level::Degraded,
                format!(
                    "loader {table}: {} record(s) unrouted since it started (no route took them and it has no default table)",
                    count.unrouted
                ),
            );
        }
        if count.lost > 0.0 {
            verdict.add(
                Level::Degraded,
                format!(
                    "loader {table}: {} record(s) deleted by retention before they were loaded (see relay_gaps)",
                    count.lost
                ),
            );
        }
    }
    for sample in scraped.iter().filter_map(|(_, s)| s.as_ref().ok()).flatten() {
        let label = |name: &str| sample.labels.get(name).cloned().unwrap_or_default();
        if sample.name == relay_sender::metrics::SEND_BLOCKED && sample.value > 0.0 {
            verdict.add(
                Level::Degraded,
                format!("sender {}: lines cannot be sent; retrying", label("topic")),
            );
        }
    }
}

/// A loader's counters, by table, summed over the scraped addresses.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct LoaderCounts {
    pub(super) rejected: f64,
    pub(super) unrouted: f64,
    pub(super) lost: f64,
    pub(super) lag: f64,
}

/// Each scraped loader's rejected, unrouted and lost records and its lag.
pub(super) fn loader_counts(scraped: &Scraped) -> BTreeMap<String, LoaderCounts> {
    use relay_loader::metrics as loader;
    let mut counts: BTreeMap<String, LoaderCounts> = BTreeMap::new();
    for sample in scraped.iter().filter_map(|(_, s)| s.as_ref().ok()).flatten() {
        let field: fn(&mut LoaderCounts) -> &mut f64 = match sample.name.as_str() {
            loader::ROWS_REJECTED => |c| &mut c.rejected,
            loader::RECORDS_UNROUTED => |c| &mut c.unrouted,
            loader::RECORDS_LOST => |c| &mut c.lost,
            loader::LAG => |c| &mut c.lag,
            _ => continue,
        };
        let table = sample.labels.get("table").cloned().unwrap_or_default();
        *field(counts.entry(table).or_default()) += sample.value;
    }
    counts
}

/// Gaps a loader recorded and nobody acknowledged, per group and partition.
fn judge_gaps(verdict: &mut Verdict, snapshot: &Snapshot) {
    for group in &snapshot.groups {
        for lag in &group.lags {
            let gaps = relay_proto::offset_metadata::unacknowledged_gaps(&lag.metadata);
            if gaps > 0 {
                verdict.add(
                    Level::Degraded,
                    format!(
                        "group {} on {}/{}: {gaps} unacknowledged gap(s)",
                        group.group, lag.topic, lag.partition
                    ),
                );
            }
        }
    }
}
