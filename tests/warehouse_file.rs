//! The SQLite warehouse's file through `relay load` against `relay broker`:
//! deleted while the loader runs, the loader stops at its next batch (exit 2,
//! naming the file) instead of committing into a deleted inode, and a loader
//! started again on a fresh file there says so (WARN: the broker's copy of
//! the offsets is ahead) and loads everything the broker holds, nothing lost; a warehouse path in a directory nobody made gets it made;
//! a file the loader's user cannot write is named with the likely fix.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use support::warehouse::Warehouse;
use support::{relay_binary, run_with_timeout, wait_until, BrokerProcess, RelayProcess};

const TOPIC: &str = "events";

fn produce(broker: &BrokerProcess, dir: &Path, range: std::ops::Range<u64>) {
    let file = dir.join(format!("events-{}.jsonl", range.start));
    let lines: String = range
        .map(|n| format!("{{\"uuid\":\"event-{n}\",\"n\":{n}}}\n"))
        .collect();
    std::fs::write(&file, lines).unwrap();
    let output = run_with_timeout(
        Command::new(relay_binary())
            .args(["produce", "--topic", TOPIC, file.to_str().unwrap()])
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(120),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// `relay load`'s arguments for the whole events of the topic into `url`.
fn load_args(broker: &BrokerProcess, url: &str) -> Vec<String> {
    ["load", "--broker", &broker.address, "--topic", TOPIC, "--group", "g"]
        .iter()
        .chain(&["--warehouse", url, "--table", "events"])
        .map(|s| s.to_string())
        .collect()
}

fn load_to_the_end(broker: &BrokerProcess, url: &str) -> Output {
    let mut args = load_args(broker, url);
    args.push("--until-end".into());
    run_with_timeout(Command::new(relay_binary()).args(&args), Duration::from_secs(120))
}

#[test]
fn a_deleted_warehouse_file_stops_the_loader_and_a_fresh_file_gets_everything() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let warehouse = Warehouse::sqlite(dir.path());
    let Warehouse::Sqlite(path) = &warehouse else {
        unreachable!()
    };
    produce(&broker, dir.path(), 0..100);
    let mut loader = RelayProcess::start(load_args(&broker, &warehouse.url()), &dir.path().join("load.log"));
    let loaded = wait_until(Duration::from_secs(60), || {
        warehouse.count("SELECT COUNT(*) FROM events") == 100
    });
    assert!(loaded, "{}", loader.log());

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    produce(&broker, dir.path(), 100..150);
    let child = loader.child.as_mut().expect("running");
    let mut status = None;
    let stopped = wait_until(Duration::from_secs(60), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let log = loader.log();
    assert!(stopped, "the loader went on with its file deleted\n{log}");
    assert_eq!(status.unwrap().code(), Some(2), "{log}");
    assert!(
        log.contains(&format!("SQLite {} was deleted while the loader ran", path.display())),
        "{log}"
    );
    assert!(!path.exists(), "nothing made a new file behind the operator's back");

    let output = load_to_the_end(&broker, &warehouse.url());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("WARN") && stderr.contains("a new, emptied or replaced warehouse"),
        "loading everything again is said, not passed as an ordinary start: {stderr}"
    );
    assert_eq!(
        warehouse.count("SELECT COUNT(*) FROM events"),
        150,
        "a fresh file gets everything"
    );
    assert_eq!(warehouse.count("SELECT COUNT(DISTINCT dedup_key) FROM events"), 150);
}

#[test]
fn a_warehouse_in_a_missing_directory_gets_it_made() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    produce(&broker, dir.path(), 0..20);
    let path = dir.path().join("not/made/yet/warehouse.db");
    let url = format!("sqlite://{}", path.display());
    let output = load_to_the_end(&broker, &url);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(Warehouse::Sqlite(path).count("SELECT COUNT(*) FROM events"), 20);
}

#[test]
fn a_warehouse_file_its_user_cannot_write_is_named_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    produce(&broker, dir.path(), 0..20);
    let warehouse = Warehouse::sqlite(dir.path());
    let Warehouse::Sqlite(path) = &warehouse else {
        unreachable!()
    };
    let output = load_to_the_end(&broker, &warehouse.url());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    produce(&broker, dir.path(), 20..30);
    // Root writes any file: the loader runs as nobody, who may read the file only.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let log_path = dir.path().join("unprivileged.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(relay_binary())
        .args(load_args(&broker, &warehouse.url()))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let named = wait_until(Duration::from_secs(60), || {
        read_log().contains(&format!(
            "SQLite {}: attempt to write a readonly database",
            path.display()
        ))
    });
    let _ = child.kill();
    let _ = child.wait();
    let log = read_log();
    assert!(named, "{log}");
    assert!(log.contains("read-only for this user"), "the likely fix: {log}");
    assert_eq!(warehouse.count("SELECT COUNT(*) FROM events"), 20);
}
