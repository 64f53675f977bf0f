//! A loader writes what it has fetched as soon as no write is in flight
//! (`write_when_idle`, on by default), not when its batch fills or its
//! timer runs out: a backlog far smaller than `batch_records_max`, then a
//! lone line and each line after it, are in the warehouse while
//! `batch_wait_ms` (an hour here) is far from over.

mod support;

use std::path::Path;
use std::time::Duration;
use support::warehouse::Warehouse;
use support::{relay_client, succeeded, wait_until, BrokerProcess, RelayProcess};

const WAIT: Duration = Duration::from_secs(60);
/// Lines waiting before the loader starts: far fewer than its batch holds.
const BACKLOG: u64 = 3_000;

/// Lines `from..to`, one event each.
fn produce(broker: &BrokerProcess, dir: &Path, from: u64, to: u64) {
    let file = dir.join(format!("lines-{from}.jsonl"));
    let lines: String = (from..to)
        .map(|n| format!("{{\"id\":\"event-{n}\",\"n\":{n}}}\n"))
        .collect();
    std::fs::write(&file, lines).unwrap();
    succeeded(relay_client(
        broker,
        &["produce", "--topic", "events", file.to_str().unwrap()],
        WAIT,
    ));
}

#[test]
fn a_backlog_and_a_lone_line_are_written_without_waiting_the_batch_timer() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    succeeded(relay_client(
        &broker,
        &["topics", "create", "events", "--partitions", "2"],
        WAIT,
    ));
    produce(&broker, dir.path(), 0, BACKLOG);
    let warehouse = Warehouse::sqlite(dir.path());
    let config = dir.path().join("load.toml");
    std::fs::write(
        &config,
        format!(
            "[[load]]\ntopic = \"events\"\ngroup = \"loaders\"\nwarehouse = \"{}\"\ntable = \"events\"\n\
             dedup_key = \"/id\"\nbatch_records_max = 100000\nbatch_wait_ms = 3600000\n",
            warehouse.url()
        ),
    )
    .unwrap();
    let args = [
        "load",
        "--broker",
        &broker.address,
        "--config",
        config.to_str().unwrap(),
    ];
    let mut loader = RelayProcess::start(
        args.iter().map(|s| s.to_string()).collect(),
        &dir.path().join("load.log"),
    );
    for end in [BACKLOG, BACKLOG + 1, BACKLOG + 2, BACKLOG + 3] {
        if end > BACKLOG {
            produce(&broker, dir.path(), end - 1, end);
        }
        let loaded = wait_until(WAIT, || {
            warehouse.count("SELECT count(*) FROM events") == end as i64
                && warehouse.count("SELECT sum(next_offset) FROM relay_offsets") == end as i64
        });
        assert!(
            loaded,
            "lines up to {end} not loaded while the loader waits its batch timer\n{}",
            loader.log()
        );
    }
    assert_eq!(loader.terminate(), Some(0), "{}", loader.log());
    assert_eq!(
        warehouse.count("SELECT count(DISTINCT dedup_key) FROM events"),
        (BACKLOG + 3) as i64
    );
}
