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
//!
//! This file runs the looks and refreshes; [`snapshot`] asks the broker,
//! [`render`] draws the screen. What a sender's state directory holds is
//! read by relay-sender ([`relay_sender::status`]), metrics are read by
//! relay-supervisor ([`relay_supervisor::scrape`]).

mod render;
mod snapshot;
#[cfg(test)]
mod tests;

use super::client::{connect, fail, runtime, with_config};
use crate::cli::StatusArgs;
use crate::exit;
use relay_client::admin::Admin;
use relay_supervisor::scrape::scrape_all;
use relay_supervisor::signal::wait_for_signal;
use render::render;
use snapshot::{look, History};
use std::time::Duration;

/// Longest wait of a single (non-watch) run between its two looks.
const ONE_SHOT_WINDOW_MS_MAX: u64 = 1_000;
/// Shortest `--interval-ms` honoured: each look asks the broker about every
/// topic and group, so a smaller one would only load the broker.
const INTERVAL_MS_MIN: u64 = 100;

pub fn run(mut args: StatusArgs) -> i32 {
    if let Err(code) = with_config("status", &mut args.client, args.config.as_deref()) {
        return code;
    }
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
        let interval = Duration::from_millis(args.interval_ms.max(INTERVAL_MS_MIN));
        let mut history = History::default();
        if !args.watch {
            // Two looks, for rates.
            if let Err(error) = look(&admin).await.map(|first| render(&first, &mut history, &args, &[])) {
                return fail("status", &error);
            }
            tokio::time::sleep(interval.min(Duration::from_millis(ONE_SHOT_WINDOW_MS_MAX))).await;
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
