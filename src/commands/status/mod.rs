//! `relay status [--watch [SECONDS]] [--format json]`: the pipeline on one
//! screen, the verdict first. Its first line is OK, DEGRADED or DOWN, then
//! one reason per problem, from the same checks as each role's `/health`
//! on every role it can see ([`verdict`]): the broker, each `--scrape`d
//! address (its /health and /metrics) and each `--sender-state` directory.
//! Then the senders' local backlog (read from disk, so shown when the
//! broker is down too), each loader's lag, rejected, unrouted and lost
//! records, and the cluster: topics with their partitions, end offsets,
//! size on disk and produce rate; every group with its state, members and,
//! per partition, committed offset, lag in records and in time (the age of
//! the oldest record it has not loaded, [`age`]) and commit age; each
//! sender file's bytes behind and each loader's lag per partition.
//!
//! The exit code is the verdict's: 0 OK, 1 DEGRADED, 3 DOWN (2: usage or
//! configuration, as every command). `--watch` redraws until interrupted
//! and exits 0.
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
//! [`health`] asks the roles' /health, [`verdict`] judges, [`render`] and
//! [`summary`] draw the screen (and the JSON). What a sender's state
//! directory holds is read by relay-sender ([`relay_sender::status`]),
//! metrics are read by relay-supervisor ([`relay_supervisor::scrape`]).

mod age;
mod health;
mod render;
mod scraped;
mod snapshot;
mod summary;
#[cfg(test)]
mod tests;
mod units;
mod verdict;

use super::client::{connect, fail, runtime, with_config};
use crate::cli::StatusArgs;
use crate::exit;
use health::health_all;
use relay_client::admin::Admin;
use relay_client::{ClientError, ClientSettings};
use relay_supervisor::scrape::scrape_all;
use relay_supervisor::signal::wait_for_signal;
use render::render;
use snapshot::{look, History, Snapshot};
use std::time::Duration;
use verdict::{backlogs, judge, loader_counts, Level, Seen};

/// Longest wait of a single (non-watch) run between its two looks.
const ONE_SHOT_WINDOW_MS_MAX: u64 = 1_000;
/// Shortest `--interval-ms` honoured: each look asks the broker about every
/// topic and group, so a smaller one would only load the broker.
const INTERVAL_MS_MIN: u64 = 100;

pub fn run(mut args: StatusArgs) -> i32 {
    if let Err(code) = with_config("status", &mut args.client, args.config.as_deref()) {
        return code;
    }
    let watch = args
        .watch
        .map(|seconds| seconds.map_or(args.interval_ms, |s| s.saturating_mul(1000)));
    if watch.is_some() {
        // Warnings would scroll through the redrawn screen; what goes wrong
        // is shown on the screen itself.
        relay_supervisor::logging::init_logging_at("error");
    }
    runtime().block_on(async move {
        let mut broker = Broker {
            settings: &args.client,
            admin: None,
        };
        let mut history = History::default();
        let Some(watch_ms) = watch else {
            // Two looks, for rates; the first only when the broker answers.
            match broker.look().await {
                Ok(Ok(first)) => drop(render(&first, &mut history, &args, &[])),
                Ok(Err(_)) => {}
                Err(error) => return fail("status", &error),
            }
            let interval = Duration::from_millis(args.interval_ms.max(INTERVAL_MS_MIN));
            tokio::time::sleep(interval.min(Duration::from_millis(ONE_SHOT_WINDOW_MS_MAX))).await;
            return match round(&mut broker, &args, &mut history).await {
                Ok((screen, level)) => {
                    print!("{screen}");
                    level.exit_code()
                }
                Err(error) => fail("status", &error),
            };
        };
        let interval = Duration::from_millis(watch_ms.max(INTERVAL_MS_MIN));
        let stop = wait_for_signal();
        tokio::pin!(stop);
        loop {
            let screen = match round(&mut broker, &args, &mut history).await {
                Ok((screen, _)) => screen,
                Err(error) => format!("DOWN\n  - relay status: {error} (retrying)\n"),
            };
            if args.format == "json" {
                print!("{screen}");
            } else {
                // Home the cursor, draw, clear what the last screen left below.
                print!("\x1b[H\x1b[2J{screen}");
            }
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
            tokio::select! {
                _ = &mut stop => return exit::SUCCESS,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    })
}

/// The broker, connected to when it first answers.
struct Broker<'a> {
    settings: &'a ClientSettings,
    admin: Option<Admin>,
}

impl Broker<'_> {
    /// One look at the cluster; `Ok(Err(why))` when the broker cannot be
    /// reached (the verdict is then DOWN), `Err` for any other failure
    /// (not authorized, wrong cluster...), which ends a single run.
    async fn look(&mut self) -> Result<Result<Snapshot, String>, ClientError> {
        let admin = match &self.admin {
            Some(admin) => admin,
            None => match connect(self.settings, "relay-status").await {
                Ok(cluster) => self.admin.insert(Admin::new(cluster)),
                Err(error) if error.is_unreachable() => return Ok(Err(error.to_string())),
                Err(error) => return Err(error),
            },
        };
        match look(admin).await {
            Ok(snapshot) => Ok(Ok(snapshot)),
            Err(error) if error.is_unreachable() => Ok(Err(error.to_string())),
            Err(error) => Err(error),
        }
    }
}

/// One look at everything, judged and drawn (or as JSON): the text and the
/// verdict.
async fn round(
    broker: &mut Broker<'_>,
    args: &StatusArgs,
    history: &mut History,
) -> Result<(String, Level), ClientError> {
    let snapshot = broker.look().await?;
    let scraped = scrape_all(&args.scrapes).await;
    let healths = health_all(&args.scrapes).await;
    let backlogs = backlogs(&args.sender_states);
    let broker_address = args.client.brokers();
    let verdict = judge(&Seen {
        broker_address,
        snapshot: snapshot.as_ref().map_err(String::as_str),
        healths: &healths,
        scraped: &scraped,
        backlogs: &backlogs,
    });
    let loaders = loader_counts(&scraped);
    if args.format == "json" {
        let value = summary::json(&verdict, snapshot.as_ref().ok(), &loaders, &backlogs);
        return Ok((format!("{value}\n"), verdict.level()));
    }
    let mut screen = String::new();
    summary::render_verdict(&mut screen, &verdict);
    summary::render_backlogs(&mut screen, &backlogs);
    summary::render_loader_counts(&mut screen, &loaders);
    if let Ok(snapshot) = &snapshot {
        screen.push('\n');
        screen.push_str(&render(snapshot, history, args, &scraped));
    }
    Ok((screen, verdict.level()))
}
