//! What `relay status` puts around the cluster screen ([`super::render`]):
//! the verdict on top with its reasons, the senders' local backlog (shown
//! even when the broker is down), the loaders' rejected, unrouted and lost
//! counts; and the same as one JSON object for scripts ([`json`]).

use super::snapshot::Snapshot;
use super::units::human_bytes;
use super::verdict::{Backlog, LoaderCounts, Verdict};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The verdict line, then one indented line per reason.
pub(super) fn render_verdict(out: &mut String, verdict: &Verdict) {
    let _ = writeln!(out, "{}", verdict.level().word());
    for (_, reason) in &verdict.reasons {
        let _ = writeln!(out, "  - {reason}");
    }
}

/// The SENDER BACKLOG section, when `--sender-state` was given.
pub(super) fn render_backlogs(out: &mut String, backlogs: &[Backlog]) {
    if backlogs.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{:<48} {:>8} {:>14} {:>8}",
        "SENDER BACKLOG (not acknowledged)", "FILES", "BYTES", "MOVED"
    );
    for backlog in backlogs.iter().filter(|b| b.error.is_none()) {
        let _ = writeln!(
            out,
            "{:<48} {:>8} {:>14} {:>8}",
            backlog.dir.display(),
            backlog.files,
            human_bytes(backlog.bytes as i64),
            backlog.moved
        );
    }
}

/// The LOADER section, when any loader was scraped.
pub(super) fn render_loader_counts(out: &mut String, counts: &BTreeMap<String, LoaderCounts>) {
    if counts.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{:<24} {:>12} {:>12} {:>12} {:>12}",
        "LOADER", "LAG", "REJECTED", "UNROUTED", "LOST"
    );
    for (table, count) in counts {
        let _ = writeln!(
            out,
            "{table:<24} {:>12} {:>12} {:>12} {:>12}",
            count.lag, count.rejected, count.unrouted, count.lost
        );
    }
}

/// The whole look as one JSON object: verdict, reasons, groups (lag in
/// records and seconds, unacknowledged gaps), loaders (rejected, unrouted,
/// lost), sender backlog. `null` where a figure is unknown (no broker).
pub(super) fn json(
    verdict: &Verdict,
    snapshot: Option<&Snapshot>,
    loaders: &BTreeMap<String, LoaderCounts>,
    backlogs: &[Backlog],
) -> Value {
    let groups: Vec<Value> = snapshot.map_or_else(Vec::new, |snapshot| {
        snapshot
            .groups
            .iter()
            .map(|group| group_json(snapshot, group))
            .collect()
    });
    json!({
        "verdict": verdict.level().word(),
        "reasons": verdict.reasons.iter().map(|(_, reason)| reason).collect::<Vec<_>>(),
        "broker_reachable": snapshot.is_some(),
        "groups": groups,
        "loaders": loaders.iter().map(|(table, c)| json!({
            "table": table,
            "lag_records": c.lag,
            "rejected": c.rejected,
            "unrouted": c.unrouted,
            "lost": c.lost,
        })).collect::<Vec<_>>(),
        "sender_backlog": backlogs.iter().map(|b| json!({
            "state_dir": b.dir.display().to_string(),
            "files": b.files,
            "bytes": b.bytes,
            "moved_files": b.moved,
            "error": b.error,
        })).collect::<Vec<_>>(),
    })
}

fn group_json(snapshot: &Snapshot, group: &super::snapshot::GroupRow) -> Value {
    let partitions: Vec<Value> = group
        .lags
        .iter()
        .map(|lag| {
            json!({
                "topic": lag.topic,
                "partition": lag.partition,
                "committed": lag.committed,
                "end_offset": lag.end_offset,
                "lag_records": lag.lag,
                "lag_seconds": snapshot.lag_seconds(&group.group, lag),
                "gaps": relay_proto::offset_metadata::unacknowledged_gaps(&lag.metadata),
            })
        })
        .collect();
    json!({
        "group": group.group,
        "state": group.state,
        "members": group.members,
        "lag_records": group.lags.iter().map(|lag| lag.lag).sum::<i64>(),
        "lag_seconds": snapshot.group_lag_seconds(group),
        "gaps": group.lags.iter().map(|lag| relay_proto::offset_metadata::unacknowledged_gaps(&lag.metadata)).sum::<i64>(),
        "partitions": partitions,
    })
}
