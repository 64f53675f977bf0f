//! One stream, many tables, and lines that are not JSON, through `relay
//! load` against `relay broker`, on SQLite and PostgreSQL:
//! - game events routed by type into their own typed tables exactly once,
//!   the unrouted counted and skipped, then a table added later filled from
//!   the topic by a backfill of that table alone (`--only-table`, its own
//!   group) while the other tables stay as they were, and the main loader
//!   going on with the new route;
//! - nginx access-log lines loaded by a named-capture pattern into typed
//!   columns (address, time, request, status, bytes), a line that does not
//!   match rejected with the pattern's name; the same lines as plain text
//!   with `relay load --format text` and no config at all.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use support::postgres::Postgres;
use support::warehouse::Warehouse;
use support::{relay_binary, run_with_timeout, BrokerProcess};

fn relay(broker: &BrokerProcess, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(relay_binary());
    command
        .args(args)
        .args(["--broker", &broker.address])
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    if let Some(text) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    let (done, output) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    let output = output
        .recv_timeout(Duration::from_secs(120))
        .expect("relay finished")
        .unwrap();
    assert!(
        output.status.success(),
        "relay {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Game events: `count` of them, starting at `first`, types in turn.
fn game_events(first: u64, count: u64) -> String {
    const TYPES: [&str; 5] = ["login", "purchase", "match_start", "level_up", "logout"];
    (first..first + count)
        .map(|n| {
            let kind = TYPES[(n % 5) as usize];
            format!(
                "{{\"uuid\":\"00000000-0000-4000-8000-{n:012}\",\"type\":\"{kind}\",\"player\":\"p{}\",\"amount\":{n}}}\n",
                n % 7
            )
        })
        .collect()
}

fn routes_config(path: &Path, warehouse: &Warehouse, with_matches: bool) {
    let route = |table: &str, when: &str, extra_column: &str| {
        format!(
            r#"
[[load.route]]
table = "{table}"
when = {when}

[[load.route.columns]]
name = "uuid"
pointer = "/uuid"
type = "uuid"
nullable = false

[[load.route.columns]]
name = "player"
pointer = "/player"
type = "text"
{extra_column}"#
        )
    };
    let amount =
        "\n[[load.route.columns]]\nname = \"amount\"\npointer = \"/amount\"\ntype = \"bigint\"\nnullable = false\n";
    let kind = "\n[[load.route.columns]]\nname = \"kind\"\npointer = \"/type\"\ntype = \"text\"\n";
    let mut text = format!(
        "[[load]]\ntopic = \"games\"\ngroup = \"loader\"\nwarehouse = \"{}\"\nbatch_wait_ms = 100\n",
        warehouse.url()
    );
    text += &route("sessions", r#"{ pointer = "/type", in = ["login", "logout"] }"#, kind);
    text += &route("purchases", r#"{ pointer = "/type", equals = "purchase" }"#, amount);
    if with_matches {
        text += &route("matches", r#"{ pointer = "/type", equals = "match_start" }"#, kind);
    }
    std::fs::write(path, text).unwrap();
}

fn routes_split_a_stream_and_a_table_added_later_is_backfilled_alone(warehouse: Warehouse, dir: &Path) {
    let broker = BrokerProcess::start(dir, "");
    relay(&broker, &["topics", "create", "games", "--partitions", "3"], None);
    relay(&broker, &["produce", "--topic", "games"], Some(&game_events(0, 500)));
    let config = dir.join("routes.toml");
    routes_config(&config, &warehouse, false);
    let config = config.to_str().unwrap();
    relay(&broker, &["load", "--config", config, "--until-end"], None);
    let count = |sql: &str| warehouse.count(sql);
    assert_eq!(count("SELECT COUNT(*) FROM sessions"), 200);
    assert_eq!(count("SELECT COUNT(*) FROM purchases"), 100);
    assert_eq!(
        count("SELECT SUM(amount) FROM purchases"),
        (0..500).filter(|n| n % 5 == 1).sum::<i64>()
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM sessions WHERE kind NOT IN ('login', 'logout')"),
        0
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM relay_rejects"),
        0,
        "the unrouted are skipped, not rejected"
    );
    assert_eq!(
        count("SELECT SUM(next_offset) FROM relay_offsets WHERE group_id = 'loader'"),
        500
    );

    // A table added later: the route goes into the config, and a backfill of
    // that table alone, with its own group, fills it from the topic.
    routes_config(Path::new(config), &warehouse, true);
    relay(
        &broker,
        &[
            "load",
            "--config",
            config,
            "--only-table",
            "matches",
            "--group",
            "backfill-matches",
            "--from",
            "earliest",
            "--until-end",
        ],
        None,
    );
    assert_eq!(count("SELECT COUNT(*) FROM matches"), 100);
    assert_eq!(
        count("SELECT COUNT(*) FROM sessions"),
        200,
        "the backfill wrote no other table"
    );
    assert_eq!(count("SELECT COUNT(*) FROM purchases"), 100);

    // The main loader goes on with the new route: new events land once, in every table.
    relay(&broker, &["produce", "--topic", "games"], Some(&game_events(500, 100)));
    relay(&broker, &["load", "--config", config, "--until-end"], None);
    assert_eq!(count("SELECT COUNT(*) FROM sessions"), 240);
    assert_eq!(count("SELECT COUNT(*) FROM purchases"), 120);
    assert_eq!(count("SELECT COUNT(*) FROM matches"), 120);
    for table in ["sessions", "purchases", "matches"] {
        assert_eq!(
            count(&format!("SELECT COUNT(*) - COUNT(DISTINCT uuid) FROM {table}")),
            0,
            "{table} holds an event twice"
        );
    }
}

#[test]
fn routes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    routes_split_a_stream_and_a_table_added_later_is_backfilled_alone(Warehouse::sqlite(dir.path()), dir.path());
}

#[test]
fn routes_on_postgres() {
    let Some(postgres) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    routes_split_a_stream_and_a_table_added_later_is_backfilled_alone(Warehouse::Postgres(postgres), dir.path());
}

const NGINX_PATTERN: &str = r#"^(?P<remote_addr>\S+) \S+ (?P<remote_user>\S+) \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) (?:(?P<bytes>\d+)|-) "(?P<referer>[^"]*)" "(?P<user_agent>[^"]*)"$"#;

fn nginx_lines() -> String {
    (0..100)
        .map(|n| {
            let bytes = if n % 10 == 0 { "-".to_owned() } else { (n * 100).to_string() };
            format!(
                "198.51.100.{} - - [10/Oct/2026:13:{:02}:36 +0200] \"GET /page/{n} HTTP/1.1\" {} {bytes} \"-\" \"curl/8.5\"\n",
                n % 250,
                n % 60,
                if n % 4 == 0 { 404 } else { 200 }
            )
        })
        .collect()
}

fn nginx_lines_load_into_typed_columns(warehouse: Warehouse, dir: &Path) {
    let broker = BrokerProcess::start(dir, "");
    let mut lines = nginx_lines();
    lines += "this is not an access log line\n";
    relay(&broker, &["produce", "--topic", "web"], Some(&lines));
    let config = dir.join("web.toml");
    let column = |name: &str, kind: &str, extra: &str| {
        format!("\n[[load.columns]]\nname = \"{name}\"\npointer = \"/{name}\"\ntype = \"{kind}\"\n{extra}")
    };
    let text = format!(
        "[[load]]\ntopic = \"web\"\ngroup = \"web\"\nwarehouse = \"{}\"\ntable = \"access_log\"\nformat = \"regex\"\n\
         pattern_name = \"nginx_combined\"\nregex = '{NGINX_PATTERN}'\nbatch_wait_ms = 100\n{}{}{}{}{}",
        warehouse.url(),
        column("remote_addr", "text", ""),
        column("time", "timestamptz", "time_format = \"clf\"\n"),
        column("request", "text", ""),
        column("status", "bigint", "nullable = false\n"),
        column("bytes", "bigint", ""),
    );
    std::fs::write(&config, text).unwrap();
    relay(
        &broker,
        &["load", "--config", config.to_str().unwrap(), "--until-end"],
        None,
    );
    let count = |sql: &str| warehouse.count(sql);
    assert_eq!(count("SELECT COUNT(*) FROM access_log"), 100);
    assert_eq!(count("SELECT COUNT(*) FROM access_log WHERE status = 404"), 25);
    assert_eq!(
        count("SELECT COUNT(*) FROM access_log WHERE bytes IS NULL"),
        10,
        "\"-\" is no body: NULL"
    );
    assert_eq!(
        count("SELECT SUM(bytes) FROM access_log"),
        (0..100).filter(|n| n % 10 != 0).map(|n| n * 100).sum::<i64>()
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM access_log WHERE remote_addr = '198.51.100.7'"),
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM access_log WHERE request = 'GET /page/7 HTTP/1.1'"),
        1
    );
    // 13:07:36 +0200 is 11:07:36 UTC, however each warehouse writes it.
    let time = warehouse.query("SELECT CAST(time AS TEXT) FROM access_log WHERE request = 'GET /page/7 HTTP/1.1'");
    assert!(time.starts_with("2026-10-10") && time.contains("11:07:36"), "{time}");
    assert_eq!(
        warehouse.query("SELECT target_table || ': ' || error FROM relay_rejects"),
        "access_log: does not match pattern nginx_combined"
    );

    // No config: each line as text, keyed by its position.
    relay(
        &broker,
        &[
            "load",
            "--topic",
            "web",
            "--group",
            "web-text",
            "--warehouse",
            &warehouse.url(),
            "--table",
            "web_lines",
            "--format",
            "text",
            "--until-end",
        ],
        None,
    );
    assert_eq!(count("SELECT COUNT(*) FROM web_lines"), 101);
    assert_eq!(
        count("SELECT COUNT(*) FROM web_lines WHERE line = 'this is not an access log line'"),
        1
    );
}

#[test]
fn nginx_lines_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    nginx_lines_load_into_typed_columns(Warehouse::sqlite(dir.path()), dir.path());
}

#[test]
fn nginx_lines_on_postgres() {
    let Some(postgres) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    nginx_lines_load_into_typed_columns(Warehouse::Postgres(postgres), dir.path());
}

#[test]
fn a_route_that_cannot_work_is_refused_before_loading() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[[load]]\ntopic = \"t\"\ngroup = \"g\"\nwarehouse = \"sqlite:///tmp/x.db\"\n\
         [[load.route]]\ntable = \"a\"\nwhen = { pointer = \"/type\" }\n",
    )
    .unwrap();
    let output = run_with_timeout(
        Command::new(relay_binary()).args(["load", "--config", config.to_str().unwrap(), "--broker", "127.0.0.1:1"]),
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("exactly one of equals, in, exists"), "{stderr}");
}
