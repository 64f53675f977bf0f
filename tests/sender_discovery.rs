//! Discovery at rest: once every file is sent and settled, a sender's passes
//! open no file (they opened and fingerprinted every matching file each
//! 500 ms: the idle CPU with 10,000 files), and while one file is written
//! to they open only that one; yet a line appended to any file, tailed or
//! closed to make room, and a new file still arrive.

mod support;

use std::io::Write;
use std::path::Path;
use std::time::Duration;
use support::{http_get, metric_sum, wait_until, BrokerProcess, RelayProcess};

const FILES: usize = 6;

fn append(logs: &Path, name: &str, lines: std::ops::Range<u64>) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.join(name))
        .unwrap();
    for n in lines {
        writeln!(file, "{{\"n\":{n}}}").unwrap();
    }
}

fn metric(address: &str, name: &str) -> f64 {
    http_get(address, "/metrics")
        .and_then(|(_, body)| metric_sum(&body, name, &[("topic", "quiet")]))
        .unwrap_or(0.0)
}

fn wait_for_acked(sender: &RelayProcess, address: &str, lines: f64) {
    let acked = wait_until(Duration::from_secs(60), || {
        metric(address, "relay_sender_lines_acked_total") >= lines
    });
    assert!(
        acked,
        "{} of {lines} lines acknowledged\n{}",
        metric(address, "relay_sender_lines_acked_total"),
        sender.log()
    );
}

#[test]
fn an_idle_sender_opens_no_file_and_still_sees_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    for file in 0..FILES {
        append(&logs, &format!("f{file}.log"), 0..10);
    }
    let config = dir.path().join("send.toml");
    std::fs::write(
        &config,
        format!(
            "[[send]]\ntopic = \"quiet\"\npaths = [\"{}\"]\nstate_dir = \"{}\"\nopen_files_max = 2\n",
            logs.join("*.log").display(),
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let args = [
        "send",
        "--broker",
        &broker.address,
        "--config",
        &config.display().to_string(),
        "--metrics",
        "127.0.0.1:0",
    ];
    let sender = RelayProcess::start_args(&args, &dir.path().join("send.log"));
    let address = sender.metrics_address(1);
    wait_for_acked(&sender, &address, (FILES * 10) as f64);

    // Settled once the files' stamps are old enough to trust (2 s).
    std::thread::sleep(Duration::from_secs(4));
    let opens = metric(&address, "relay_sender_discovery_opens_total");
    assert!(opens >= FILES as f64, "every file was opened once at least: {opens}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        metric(&address, "relay_sender_discovery_opens_total"),
        opens,
        "passes over settled files open none of them"
    );

    // One file written to all the time keeps the passes going (500 ms
    // apart): they open that file each time, but none of the quiet ones
    // (which would be 6 more opens per pass).
    let opens = metric(&address, "relay_sender_discovery_opens_total");
    for round in 0..30 {
        append(&logs, "f0.log", 100 + round..101 + round);
        std::thread::sleep(Duration::from_millis(100));
    }
    let busy_opens = metric(&address, "relay_sender_discovery_opens_total") - opens;
    assert!(
        busy_opens <= 10.0,
        "{busy_opens} opens in 3 s: quiet files were opened again"
    );
    wait_for_acked(&sender, &address, (FILES * 10 + 30) as f64);

    // Two files are tailed, four closed to make room: every one is seen.
    for file in 0..FILES {
        append(&logs, &format!("f{file}.log"), 10..15);
    }
    wait_for_acked(&sender, &address, (FILES * 15 + 30) as f64);
    append(&logs, "new.log", 0..5);
    wait_for_acked(&sender, &address, (FILES * 15 + 35) as f64);
}
