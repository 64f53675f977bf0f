//! The broker's request-timing breakdown, end to end through the `relay`
//! binary: after a few produce requests, `/metrics` has every produce stage
//! (queue, decode, append, fsync_wait, response) counted once per answered
//! request, the stages add up to the request's total, other APIs have a
//! `handle` stage and no fsync wait, and a request slower than
//! `slow_request_ms` is logged with its stages.

mod support;

use std::time::Duration;
use support::{http_get, metric_sum, relay_client, succeeded, wait_until, BrokerProcess};

const WAIT: Duration = Duration::from_secs(60);
const STAGE: &str = "relay_broker_request_stage_seconds";
const TOTAL: &str = "relay_broker_request_latency_seconds";

fn scrape(address: &str) -> String {
    match http_get(address, "/metrics") {
        Some((200, body)) => body,
        other => panic!("GET http://{address}/metrics: {other:?}"),
    }
}

/// Produces `lines` records to `events`, one line each, with `relay produce`.
fn produce(broker: &BrokerProcess, dir: &std::path::Path, lines: usize) {
    let file = dir.join("lines.txt");
    let text: String = (0..lines).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    std::fs::write(&file, text).unwrap();
    let path = file.display().to_string();
    succeeded(relay_client(broker, &["produce", "--topic", "events", &path], WAIT));
}

#[test]
fn produce_stages_are_histograms_that_add_up_to_the_request_total() {
    let dir = tempfile::tempdir().unwrap();
    // 0 ms: every request is "slow", so the log line is shown too.
    let broker = BrokerProcess::start_with_args(dir.path(), "slow_request_ms = 0", &["--metrics", "127.0.0.1:0"]);
    let metrics = broker
        .metrics_address
        .clone()
        .expect("the broker announces its metrics address");
    produce(&broker, dir.path(), 100);

    let produce_api = ("api", "Produce");
    // Stages are recorded once the answer is flushed: just after the client has it.
    let counted = wait_until(WAIT, || {
        metric_sum(&scrape(&metrics), &format!("{TOTAL}_count"), &[produce_api]).is_some_and(|count| count >= 1.0)
    });
    assert!(counted, "no produce request timed\n{}", scrape(&metrics));
    let exposition = scrape(&metrics);
    let requests = metric_sum(&exposition, &format!("{TOTAL}_count"), &[produce_api]).unwrap();
    let mut stages_seconds = 0.0;
    for stage in ["queue", "decode", "append", "fsync_wait", "response"] {
        let labels = [produce_api, ("stage", stage)];
        let count = metric_sum(&exposition, &format!("{STAGE}_count"), &labels);
        assert_eq!(count, Some(requests), "produce stage {stage}\n{exposition}");
        stages_seconds += metric_sum(&exposition, &format!("{STAGE}_sum"), &labels).unwrap();
    }
    assert_eq!(
        metric_sum(
            &exposition,
            &format!("{STAGE}_count"),
            &[produce_api, ("stage", "handle")]
        ),
        None,
        "a produce's work is append and fsync_wait"
    );
    // The stages are contiguous: their sum is the total (float rounding aside).
    let total_seconds = metric_sum(&exposition, &format!("{TOTAL}_sum"), &[produce_api]).unwrap();
    assert!(
        stages_seconds <= total_seconds * (1.0 + 1e-9) + 1e-9,
        "stages {stages_seconds} s > total {total_seconds} s"
    );
    assert!(
        stages_seconds >= total_seconds * (1.0 - 1e-6),
        "stages {stages_seconds} s leave out part of the total {total_seconds} s"
    );
    // Buckets fine enough to tell a millisecond apart.
    let sub_millisecond = format!("{STAGE}_bucket");
    assert!(
        metric_sum(
            &exposition,
            &sub_millisecond,
            &[produce_api, ("stage", "append"), ("le", "0.0005")]
        )
        .is_some(),
        "no sub-millisecond bucket\n{exposition}"
    );

    // Another API: a handle stage, no fsync wait.
    let metadata = ("api", "Metadata");
    assert!(metric_sum(&exposition, &format!("{STAGE}_count"), &[metadata, ("stage", "handle")]).unwrap() >= 1.0);
    assert_eq!(
        metric_sum(
            &exposition,
            &format!("{STAGE}_count"),
            &[metadata, ("stage", "fsync_wait")]
        ),
        None
    );

    let log = broker.log();
    let slow = log
        .lines()
        .find(|line| line.contains("slow request") && line.contains("api=Produce "));
    let slow = slow.unwrap_or_else(|| panic!("no slow-request line for a produce\n{log}"));
    for field in [
        "total_us=",
        "queue_us=",
        "decode_us=",
        "work=\"append\"",
        "fsync_wait_us=",
        "response_us=",
    ] {
        assert!(slow.contains(field), "{field} missing from {slow}");
    }
}

#[test]
fn no_slow_request_line_without_slow_request_ms() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    produce(&broker, dir.path(), 10);
    let log = broker.log();
    assert!(!log.contains("slow request"), "{log}");
}
