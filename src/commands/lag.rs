//! `relay lag`: per group, topic and partition: committed offset, end offset
//! and lag, then each group's total per topic. With `--max N` it exits 1 when
//! any group's total lag on a topic exceeds N (so also when any partition's
//! does), for alerting from cron or a health check. It also exits 1 while
//! any loader reports gaps nobody acknowledged (records deleted by retention
//! before they were loaded, rows of `relay_gaps` in its warehouse).

use super::client::{connect, fail, runtime, with_config};
use crate::cli::LagArgs;
use crate::exit;
use relay_client::admin::Admin;
use relay_proto::offset_metadata;
use std::collections::BTreeMap;

pub fn run(mut args: LagArgs) -> i32 {
    if let Err(code) = with_config("lag", &mut args.client, args.config.as_deref()) {
        return code;
    }
    runtime().block_on(async move {
        let admin = match connect(&args.client, "relay-lag").await {
            Ok(cluster) => Admin::new(cluster),
            Err(error) => return fail("lag", &error),
        };
        let groups = match groups_to_show(&admin, args.group.as_deref()).await {
            Ok(groups) => groups,
            Err(code) => return code,
        };
        println!(
            "{:<30} {:<30} {:>10} {:>14} {:>14} {:>10}",
            "GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG"
        );
        let mut totals: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut open_gaps: BTreeMap<String, i64> = BTreeMap::new();
        for group in groups {
            let lags = match admin.lag(&group).await {
                Ok(lags) => lags,
                Err(error) => return fail("lag", &error),
            };
            for lag in lags {
                *totals.entry((group.clone(), lag.topic.clone())).or_default() += lag.lag;
                let gaps = offset_metadata::unacknowledged_gaps(&lag.metadata);
                if gaps > 0 {
                    *open_gaps.entry(group.clone()).or_default() += gaps;
                    eprintln!(
                        "relay lag: group {group} on {}/{}: {gaps} unacknowledged gap(s)",
                        lag.topic, lag.partition
                    );
                }
                println!(
                    "{:<30} {:<30} {:>10} {:>14} {:>14} {:>10}",
                    group, lag.topic, lag.partition, lag.committed, lag.end_offset, lag.lag
                );
            }
        }
        verdict(&totals, &open_gaps, args.max)
    })
}

/// `--group`'s group when it exists, else every group; `Err` holds the exit
/// code after saying what went wrong.
async fn groups_to_show(admin: &Admin, group: Option<&str>) -> Result<Vec<String>, i32> {
    match group {
        Some(group) => match admin.group_exists(group).await {
            Ok(true) => Ok(vec![group.to_owned()]),
            Ok(false) => {
                eprintln!("relay lag: no such group {group:?} (no members, no committed offsets); `relay groups list` shows the groups");
                Err(exit::FAILURE)
            }
            Err(error) => Err(fail("lag", &error)),
        },
        None => match admin.list_groups().await {
            Ok(groups) => Ok(groups.into_iter().map(|g| g.group).collect()),
            Err(error) => Err(fail("lag", &error)),
        },
    }
}

/// The totals, how to acknowledge open gaps, and the exit code: failure on
/// any open gap or a total over `max`.
fn verdict(totals: &BTreeMap<(String, String), i64>, open_gaps: &BTreeMap<String, i64>, max: Option<i64>) -> i32 {
    for ((group, topic), total) in totals {
        println!("total lag of group {group} on {topic}: {total}");
    }
    for (group, gaps) in open_gaps {
        eprintln!(
            "relay lag: group {group} has {gaps} unacknowledged gap(s): records were deleted by retention before it loaded them. \
             See them with `SELECT * FROM relay_gaps WHERE group_id = '{group}'` in its warehouse; once accounted for, \
             acknowledge with `UPDATE relay_gaps SET acknowledged_at = CURRENT_TIMESTAMP WHERE group_id = '{group}' AND acknowledged_at IS NULL` \
             (the loader reports it within 10 s)"
        );
    }
    if !open_gaps.is_empty() {
        return exit::FAILURE;
    }
    let worst = totals.values().copied().max().unwrap_or(0);
    match max {
        Some(max) if worst > max => {
            eprintln!("relay lag: lag {worst} exceeds --max {max}");
            exit::FAILURE
        }
        _ => exit::SUCCESS,
    }
}
