//! The mistakes operators make get a clear stop: an unknown group is not a
//! healthy "0 lag" or a "Dead" group that a monitoring check would pass.

mod support;

use std::process::Command;
use std::time::Duration;
use support::{relay_binary, run_with_timeout, BrokerProcess};

fn relay(broker: &BrokerProcess, args: &[&str]) -> (Option<i32>, String) {
    let output = run_with_timeout(
        Command::new(relay_binary())
            .args(args)
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(60),
    );
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout),
    )
}

/// `relay send` of `pattern` into topic `t`, serving `/metrics` and `/health` on a free port.
fn start_sender(
    broker: &BrokerProcess,
    pattern: &str,
    state_dir: &str,
    log: &std::path::Path,
) -> support::RelayProcess {
    let args = [
        "send",
        "--broker",
        &broker.address,
        "--topic",
        "t",
        "--path",
        pattern,
        "--state-dir",
        state_dir,
        "--metrics",
        "127.0.0.1:0",
    ];
    support::RelayProcess::start(args.iter().map(|s| s.to_string()).collect(), log)
}

#[test]
fn an_unknown_group_is_exit_1_with_no_such_group() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let (code, printed) = relay(&broker, &["lag", "--group", "typo", "--max", "10"]);
    assert_eq!(code, Some(1), "{printed}");
    assert!(printed.contains("no such group \"typo\""), "{printed}");
    let (code, printed) = relay(&broker, &["groups", "describe", "nosuch"]);
    assert_eq!(code, Some(1), "{printed}");
    assert!(printed.contains("no such group \"nosuch\""), "{printed}");
}

#[test]
fn a_sender_that_can_read_nothing_says_so_in_its_log_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let missing = dir.path().join("no-such-dir").join("*.log");
    let sender = start_sender(
        &broker,
        &missing.display().to_string(),
        &dir.path().join("state").display().to_string(),
        &dir.path().join("send.log"),
    );
    // A directory that does not exist yet is waited for (WARN), not an error.
    let said = support::wait_until(Duration::from_secs(20), || sender.log().contains("does not exist yet"));
    assert!(said, "{}", sender.log());
    let line = sender
        .log()
        .lines()
        .find(|l| l.contains("does not exist yet"))
        .unwrap()
        .to_owned();
    assert!(line.contains("WARN") && line.contains("matches no file yet"), "{line}");
    assert!(!sender.log().contains("ERROR"), "{}", sender.log());
    let (status, body) = support::http_get(&sender.metrics_address(1), "/health").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("matches no file yet"), "{body}");
    // The directory appears, still empty: a WARN that nothing matches.
    std::fs::create_dir_all(missing.parent().unwrap()).unwrap();
    let waiting = support::wait_until(Duration::from_secs(20), || sender.log().contains("matches no file yet"));
    assert!(waiting, "{}", sender.log());
    std::fs::write(missing.parent().unwrap().join("a.log"), "{\"n\":1}\n").unwrap();
    let healthy = support::wait_until(Duration::from_secs(20), || {
        support::http_get(&sender.metrics_address(1), "/health").is_some_and(|(status, _)| status == 200)
    });
    assert!(healthy, "{}", sender.log());
}

#[test]
fn a_glob_the_shell_expanded_gets_a_hint_to_quote_it() {
    let output = run_with_timeout(
        Command::new(relay_binary()).args(["send", "--topic", "t", "--path", "./logs/a.jsonl", "./logs/b.jsonl"]),
        Duration::from_secs(30),
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("quote it"), "{stderr}");
}

#[test]
fn a_second_broker_on_one_data_directory_is_refused_with_the_first_ones_pid() {
    let dir = tempfile::tempdir().unwrap();
    let first = BrokerProcess::start(dir.path(), "");
    let output = run_with_timeout(
        Command::new(relay_binary()).args([
            "broker",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &first.data_dir.display().to_string(),
        ]),
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("in use by another broker (pid {})", first.pid())),
        "{stderr}"
    );
}

#[test]
fn two_send_sections_sharing_a_state_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let config = dir.path().join("send.toml");
    std::fs::write(
        &config,
        format!(
            "[[send]]\ntopic = \"a\"\npaths = [\"{0}/a*.log\"]\nstate_dir = \"{0}/state\"\n\n[[send]]\ntopic = \"b\"\npaths = [\"{0}/b*.log\"]\nstate_dir = \"{0}/state\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let (code, printed) = relay(&broker, &["send", "--config", &config.display().to_string()]);
    assert_eq!(code, Some(2), "{printed}");
    assert!(printed.contains("share the state directory"), "{printed}");
}

#[test]
fn a_start_offset_past_the_end_is_refused_with_the_partition_range() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, (0..1000).map(|n| format!("{{\"n\":{n}}}\n")).collect::<String>()).unwrap();
    let (code, printed) = relay(&broker, &["produce", "--topic", "small", &file.display().to_string()]);
    assert_eq!(code, Some(0), "{printed}");
    let (code, printed) = relay(
        &broker,
        &[
            "consume",
            "--topic",
            "small",
            "--from",
            "offset:999999999",
            "--max",
            "1",
        ],
    );
    assert_eq!(code, Some(2), "{printed}");
    assert!(
        printed.contains("offset 999999999 is past the end: the partition's offsets run from 0 to 1000"),
        "{printed}"
    );
    let warehouse = format!("sqlite://{}", dir.path().join("w.db").display());
    let (code, printed) = relay(
        &broker,
        &[
            "load",
            "--topic",
            "small",
            "--group",
            "g",
            "--warehouse",
            &warehouse,
            "--table",
            "events",
            "--from",
            "offset:999999999",
        ],
    );
    assert_eq!(code, Some(2), "{printed}");
    assert!(
        printed.contains("small/0: offset 999999999 is past the end"),
        "{printed}"
    );
}

#[test]
fn help_lists_exit_codes_and_every_argument_is_described() {
    let help = |args: &[&str]| {
        let output = Command::new(relay_binary()).args(args).arg("-h").output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(help(&[]).contains("Exit codes: 0 success"));
    let long = |args: &[&str]| {
        let output = Command::new(relay_binary()).args(args).arg("--help").output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    for command in [
        &["topics", "create"][..],
        &["topics", "describe"],
        &["groups", "reset-offsets"],
        &["groups", "describe"],
    ] {
        assert!(long(command).contains("Example: relay"), "{command:?} has no example");
        let text = help(command);
        // An argument line is its name, then its description on the same line.
        for line in text
            .lines()
            .filter(|l| l.starts_with("  <") || l.starts_with("      --"))
        {
            assert!(line.split_whitespace().count() > 2, "{command:?}: undescribed {line:?}");
        }
    }
}

#[test]
fn relative_paths_in_a_config_file_are_relative_to_the_file_and_a_new_cluster_is_announced() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(
        conf.join("relay.toml"),
        "[broker]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"./data\"\n",
    )
    .unwrap();
    let start_line = || {
        let mut child = Command::new(relay_binary())
            .args(["broker", "--config", "../conf/relay.toml"])
            .current_dir(&elsewhere)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap();
        line
    };
    let first = start_line();
    assert!(first.contains("created as a new cluster"), "{first}");
    let data_dir = std::fs::canonicalize(&conf).unwrap().join("data");
    assert!(first.contains(&format!("data_dir {})", data_dir.display())), "{first}");
    assert!(
        conf.join("data").join("meta.toml").exists(),
        "the data directory is next to the config file"
    );
    assert!(!elsewhere.join("data").exists());
    let second = start_line();
    assert!(!second.contains("created as a new cluster"), "{second}");
}

#[test]
fn ctrl_c_during_relay_produce_reports_how_far_it_got_and_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let file = dir.path().join("big.jsonl");
    let line = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(200));
    std::fs::write(&file, line.repeat(3_000_000)).unwrap();
    let child = Command::new(relay_binary())
        .args(["produce", "--topic", "big", &file.display().to_string()])
        .env("RELAY_BROKER", &broker.address)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    let acknowledged: u64 = stderr
        .split("; ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no acknowledged count in {stderr:?}"));
    assert!(stderr.contains("interrupted after"), "{stderr}");
    assert!(acknowledged > 0 && acknowledged < 3_000_000, "{stderr}");
    let (_, described) = relay(&broker, &["topics", "describe", "big"]);
    let end: u64 = described
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
        .sum();
    assert_eq!(end, acknowledged, "what the summary calls acknowledged is in the topic");
}

#[test]
fn relay_status_shows_one_row_per_file_in_one_unit_style_with_registry_and_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("app.log"), "{\"n\":1}\n".repeat(2000)).unwrap();
    let state = dir.path().join("state");
    let sender = start_sender(
        &broker,
        &logs.join("*.log").display().to_string(),
        &state.display().to_string(),
        &dir.path().join("send.log"),
    );
    let address = sender.metrics_address(1);
    let registered = support::wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(state.join("registry")).is_ok_and(|r| r.contains("16000"))
    });
    assert!(registered, "{}", sender.log());
    let (code, printed) = relay(
        &broker,
        &[
            "status",
            "--sender-state",
            &state.display().to_string(),
            "--scrape",
            &address,
        ],
    );
    assert_eq!(code, Some(0), "{printed}");
    let rows: Vec<&str> = printed.lines().filter(|l| l.contains("app.log")).collect();
    assert_eq!(rows.len(), 1, "one row per file:\n{printed}");
    assert!(
        rows[0].contains("15.6 KiB") && rows[0].ends_with("0 B"),
        "{:?}",
        rows[0]
    );
}

#[test]
fn resetting_a_loaders_group_on_the_broker_is_refused_with_how_to_move_a_loader() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let file = dir.path().join("events.jsonl");
    std::fs::write(
        &file,
        (0..100).map(|n| format!("{{\"uuid\":\"e{n}\"}}\n")).collect::<String>(),
    )
    .unwrap();
    let (code, printed) = relay(&broker, &["produce", "--topic", "t", &file.display().to_string()]);
    assert_eq!(code, Some(0), "{printed}");
    let warehouse = format!("sqlite://{}", dir.path().join("w.db").display());
    let (code, printed) = relay(
        &broker,
        &[
            "load",
            "--topic",
            "t",
            "--group",
            "loader",
            "--warehouse",
            &warehouse,
            "--table",
            "events",
            "--until-end",
        ],
    );
    assert_eq!(code, Some(0), "{printed}");
    let (code, printed) = relay(
        &broker,
        &["groups", "reset-offsets", "loader", "--topic", "t", "--to", "earliest"],
    );
    assert_eq!(code, Some(2), "{printed}");
    assert!(
        printed.contains("belongs to a relay loader") && printed.contains("UPDATE relay_offsets"),
        "{printed}"
    );
}
