//! A loader that has fetched everything the topic holds writes what it has
//! at once (`write_when_caught_up`, on by default), not when its batch
//! timer runs out: a lone line is in the warehouse while `batch_wait_ms`
//! (an hour here) is far from over, and so is each line after it.

mod support;

use std::path::Path;
use std::time::Duration;
use support::warehouse::Warehouse;
use support::{relay_client, succeeded, wait_until, BrokerProcess, RelayProcess};

const WAIT: Duration = Duration::from_secs(60);

fn produce(broker: &BrokerProcess, dir: &Path, n: u64) {
    let file = dir.join(format!("line-{n}.jsonl"));
    std::fs::write(&file, format!("{{\"id\":\"event-{n}\",\"n\":{n}}}\n")).unwrap();
    succeeded(relay_client(
        broker,
        &["produce", "--topic", "events", file.to_str().unwrap()],
        WAIT,
    ));
}

#[test]
fn a_lone_line_is_written_without_waiting_the_batch_timer() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    succeeded(relay_client(
        &broker,
        &["topics", "create", "events", "--partitions", "2"],
        WAIT,
    ));
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
    for n in 1..=3 {
        produce(&broker, dir.path(), n);
        let loaded = wait_until(WAIT, || {
            warehouse.count("SELECT count(*) FROM events") == n as i64
                && warehouse.count("SELECT sum(next_offset) FROM relay_offsets") == n as i64
        });
        assert!(
            loaded,
            "line {n} not loaded while the loader waits its batch timer\n{}",
            loader.log()
        );
    }
    assert_eq!(loader.terminate(), Some(0), "{}", loader.log());
    assert_eq!(warehouse.count("SELECT count(DISTINCT dedup_key) FROM events"), 3);
}
