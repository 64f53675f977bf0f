//! `relay lag`: per group, topic and partition: committed offset, end offset
//! and lag, then each group's total per topic. With `--max N` it exits 1 when
//! any group's total lag on a topic exceeds N (so also when any partition's
//! does), for alerting from cron or a health check.

use super::client::{connect, fail, runtime};
use crate::cli::LagArgs;
use crate::exit;
use relay_client::admin::Admin;
use std::collections::BTreeMap;

pub fn run(args: LagArgs) -> i32 {
    runtime().block_on(async move {
        let admin = match connect(&args.client, "relay-lag").await {
            Ok(cluster) => Admin::new(cluster),
            Err(error) => return fail("lag", &error),
        };
        let groups = match &args.group {
            Some(group) => vec![group.clone()],
            None => match admin.list_groups().await {
                Ok(groups) => groups.into_iter().map(|g| g.group).collect(),
                Err(error) => return fail("lag", &error),
            },
        };
        println!(
            "{:<30} {:<30} {:>10} {:>14} {:>14} {:>10}",
            "GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG"
        );
        let mut totals: BTreeMap<(String, String), i64> = BTreeMap::new();
        for group in groups {
            let lags = match admin.lag(&group).await {
                Ok(lags) => lags,
                Err(error) => return fail("lag", &error),
            };
            for lag in lags {
                *totals.entry((group.clone(), lag.topic.clone())).or_default() += lag.lag;
                println!(
                    "{:<30} {:<30} {:>10} {:>14} {:>14} {:>10}",
                    group, lag.topic, lag.partition, lag.committed, lag.end_offset, lag.lag
                );
            }
        }
        for ((group, topic), total) in &totals {
            println!("total lag of group {group} on {topic}: {total}");
        }
        let worst = totals.values().copied().max().unwrap_or(0);
        match args.max {
            Some(max) if worst > max => {
                eprintln!("relay lag: lag {worst} exceeds --max {max}");
                exit::FAILURE
            }
            _ => exit::SUCCESS,
        }
    })
}
