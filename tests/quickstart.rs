//! The README's first command: `relay up --config config.toml.example
//! --gen-events 200` in a fresh directory puts rows in ./warehouse.db within
//! 30 seconds and stops cleanly on SIGTERM. (The example's port is swapped
//! for a free one so the test never collides with a running Relay.)

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::relay_binary;

#[test]
fn relay_up_with_the_example_config_fills_the_warehouse_within_30_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml.example")).unwrap();
    let config = example.replace(
        "# listen = \"127.0.0.1:9092\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    assert_ne!(config, example, "the example documents the listen address");
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let log = std::fs::File::create(dir.path().join("up.log")).unwrap();
    let mut up = Command::new(relay_binary())
        .args(["up", "--config", "config.toml", "--gen-events", "200"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let warehouse = dir.path().join("warehouse.db");
    let started = Instant::now();
    let rows = loop {
        let rows: i64 = rusqlite::Connection::open(&warehouse)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)))
            .unwrap_or(0);
        if rows > 0 {
            break rows;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no rows after 30 s:\n{}",
            std::fs::read_to_string(dir.path().join("up.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!("{rows} rows after {:.1} s", started.elapsed().as_secs_f64());
    Command::new("kill")
        .args(["-TERM", &up.id().to_string()])
        .status()
        .unwrap();
    let status = up.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        std::fs::read_to_string(dir.path().join("up.log")).unwrap_or_default()
    );
    let connection = rusqlite::Connection::open(&warehouse).unwrap();
    let (total, distinct): (i64, i64) = connection
        .query_row("SELECT COUNT(*), COUNT(DISTINCT uuid) FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(total, distinct);
    let typed: i64 = connection
        .query_row(
            "SELECT COUNT(*) FROM events WHERE event_type IS NOT NULL AND occurred_at LIKE '20%Z'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(typed, total, "typed columns are filled");
    assert!(
        dir.path().join("data/events-0/clean-shutdown").exists(),
        "the broker shut down cleanly"
    );
}
