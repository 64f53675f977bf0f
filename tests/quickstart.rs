//! The README's first command: `relay up --config config.toml.example
//! --gen-events 200` in a fresh directory puts rows in ./warehouse.db within
//! 30 seconds, routed by event type into logins, purchases, matches and the
//! catch-all events table, each event once, and stops cleanly on SIGTERM.
//! (The example's port is swapped for a free one so the test never collides
//! with a running Relay.) And the README's tour, run as written but for its
//! one address line, on a free port: every command finds the broker.

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
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM purchases", [], |r| r.get(0)))
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
    let count = |sql: &str| -> i64 { connection.query_row(sql, [], |r| r.get(0)).unwrap() };
    // Every table holds only its types, each event once across all of them.
    let all = "SELECT uuid, occurred_at FROM events UNION ALL SELECT uuid, occurred_at FROM logins \
               UNION ALL SELECT uuid, occurred_at FROM purchases UNION ALL SELECT uuid, occurred_at FROM matches";
    let total = count(&format!("SELECT COUNT(*) FROM ({all})"));
    let distinct = count(&format!("SELECT COUNT(DISTINCT uuid) FROM ({all})"));
    assert_eq!(total, distinct, "an event in two tables, or twice in one");
    let typed = count(&format!("SELECT COUNT(*) FROM ({all}) WHERE occurred_at LIKE '20%Z'"));
    assert_eq!(typed, total, "typed columns are filled");
    for (table, types) in [
        ("logins", "'login', 'logout'"),
        ("purchases", "'purchase'"),
        ("matches", "'match_start', 'match_end'"),
    ] {
        let column = if table == "purchases" {
            "'purchase'"
        } else {
            "event_type"
        };
        assert!(count(&format!("SELECT COUNT(*) FROM {table}")) > 0, "{table} is empty");
        assert_eq!(
            count(&format!("SELECT COUNT(*) FROM {table} WHERE {column} NOT IN ({types})")),
            0,
            "{table}"
        );
    }
    assert_eq!(
        count("SELECT COUNT(*) FROM events WHERE event_type <> 'level_up'"),
        0,
        "the default table takes the rest"
    );
    assert_eq!(count("SELECT COUNT(*) FROM relay_rejects"), 0);
    // The generator's file holds each event once: every line is in a table.
    let mut lines = 0;
    for entry in std::fs::read_dir(dir.path().join("logs")).unwrap() {
        lines += std::fs::read_to_string(entry.unwrap().path()).unwrap().lines().count() as i64;
    }
    assert_eq!(total, lines, "every generated line is loaded once");
    let checkpoint = std::fs::read_to_string(dir.path().join("data/recovery-checkpoint")).unwrap_or_default();
    assert!(
        checkpoint.lines().any(|line| line.starts_with("events-0 ")),
        "the broker shut down cleanly:\n{checkpoint}"
    );
}

/// The shell block under "## A 5-minute tour" in README.md, continuation
/// lines joined.
fn readme_tour() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = readme
        .split("## A 5-minute tour")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|rest| rest.split("\n```").next())
        .expect("README.md has the tour in a sh block");
    block.replace("\\\n", " ").lines().map(str::to_owned).collect()
}

#[test]
fn the_readme_tour_runs_on_another_port_with_one_setting() {
    let tour = readme_tour();
    let addressed: Vec<&String> = tour.iter().filter(|line| line.contains("9092")).collect();
    assert_eq!(
        addressed.len(),
        1,
        "the tour names the broker's address once: {addressed:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml.example"),
        dir.path().join("config.toml.example"),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The build line is the test's own build; the address line gets the free port.
    let mut script = String::from("set -ex\ntrap 'kill %1 2>/dev/null || true' EXIT\n");
    for line in &tour {
        if line.starts_with("cargo build") {
            continue;
        }
        script.push_str(&line.replace("9092", &port.to_string()));
        script.push('\n');
    }
    script.push_str("wait %1\n");
    let binaries = relay_binary().parent().unwrap().to_owned();
    let path = format!("{}:{}", binaries.display(), std::env::var("PATH").unwrap_or_default());
    let output = support::run_with_timeout(
        Command::new("bash")
            .args(["-c", &script])
            .current_dir(dir.path())
            .env("PATH", path)
            .env_remove("RELAY_BROKER"),
        Duration::from_secs(180),
    );
    let printed = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the tour failed:\n{printed}");
    // A first start before the application has logged is a wait, not an error.
    assert!(!printed.contains(" ERROR "), "{printed}");
    assert!(printed.contains(&format!("broker on 127.0.0.1:{port}")), "{printed}");
    assert!(
        !printed.contains("127.0.0.1:9092"),
        "a command went to the default port:\n{printed}"
    );
    assert!(
        printed.contains("total lag of group loader-events on events"),
        "relay lag shows the loader's group:\n{printed}"
    );
    let warehouse = rusqlite::Connection::open(dir.path().join("warehouse.db")).unwrap();
    let matches: i64 = warehouse
        .query_row("SELECT COUNT(*) FROM matches", [], |r| r.get(0))
        .unwrap();
    assert!(matches > 0, "{printed}");
}
