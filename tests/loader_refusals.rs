//! A row the warehouse refuses never stalls loading: `relay load` against a
//! real SQLite file and a real PostgreSQL server, with events the warehouse
//! refuses (NUL in json and text, a dedup key too long for its index, NOT
//! NULL and CHECK constraints of a pre-created table, a number out of the
//! column's range) among good ones. Every good event loads once, every
//! refused one is in `relay_rejects` with its bytes and the warehouse's
//! reason, the offsets reach the end, and the loader never calls a data
//! error "warehouse unavailable".

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::postgres::Postgres;
use support::warehouse::Warehouse;
use support::{relay_binary, run_with_timeout, wait_until, BrokerProcess, RelayProcess};

const GOOD: usize = 1000;

fn produce(broker: &BrokerProcess, dir: &Path, topic: &str, lines: &[String]) {
    let file = dir.join(format!("{topic}.jsonl"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    for line in lines {
        writeln!(out, "{line}").unwrap();
    }
    drop(out);
    let output = run_with_timeout(
        Command::new(relay_binary())
            .args(["produce", "--topic", topic, file.to_str().unwrap()])
            .env("RELAY_BROKER", &broker.address),
        Duration::from_secs(120),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

fn good(n: usize) -> String {
    format!(r#"{{"uuid":"good-{n}","amount":{n},"note":"fine"}}"#)
}

/// Loads `lines` (bad ones among the good) with a `[[load]]` section of
/// `columns`, into a table made by `create` (or by the loader when empty),
/// and checks the outcome: good rows once, each bad one rejected with a
/// reason containing its expected text.
fn load_and_check(warehouse: Warehouse, create: &str, columns: &str, bad: &[(String, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    if !create.is_empty() {
        match &warehouse {
            Warehouse::Sqlite(path) => rusqlite::Connection::open(path).unwrap().execute_batch(create).unwrap(),
            Warehouse::Postgres(postgres) => {
                postgres.query(create);
            }
        }
    }
    let mut lines: Vec<String> = (0..GOOD).map(good).collect();
    // Bad events spread through the good ones.
    for (index, (line, _)) in bad.iter().enumerate() {
        lines.insert(1 + index * (GOOD / bad.len()), line.clone());
    }
    produce(&broker, dir.path(), "refusals", &lines);
    let config = dir.path().join("load.toml");
    std::fs::write(
        &config,
        format!(
            "[[load]]\ntopic = \"refusals\"\ngroup = \"refusals\"\nwarehouse = \"{}\"\ntable = \"events\"\n\
             create_table = {}\nbatch_records_max = 500\nbatch_wait_ms = 100\n{columns}\n",
            warehouse.url(),
            create.is_empty()
        ),
    )
    .unwrap();
    let loader = RelayProcess::start(
        vec![
            "load".into(),
            "--broker".into(),
            broker.address.clone(),
            "--config".into(),
            config.display().to_string(),
        ],
        &dir.path().join("load.log"),
    );
    let total = lines.len() as i64;
    let done = wait_until(Duration::from_secs(60), || {
        warehouse.count("select coalesce(sum(next_offset), 0) from relay_offsets") >= total
    });
    assert!(
        done,
        "offsets at {} of {total}; rows {}, rejects {}\nloader log:\n{}",
        warehouse.count("select coalesce(sum(next_offset), 0) from relay_offsets"),
        warehouse.count("select count(*) from events"),
        warehouse.count("select count(*) from relay_rejects"),
        loader.log()
    );
    let loaded_bad = warehouse.column("select substr(uuid, 1, 40) from events where uuid not like 'good-%'");
    assert!(
        loaded_bad.is_empty(),
        "refused events loaded: {loaded_bad:?}\nrejects: {:?}",
        warehouse.column("select error from relay_rejects")
    );
    assert_eq!(warehouse.count("select count(*) from events"), GOOD as i64);
    assert_eq!(
        warehouse.count("select count(distinct dedup_key) from events"),
        GOOD as i64
    );
    assert_eq!(warehouse.count("select count(*) from relay_rejects"), bad.len() as i64);
    let errors = warehouse.column("select error from relay_rejects order by \"offset\"");
    for ((_, expected), error) in bad.iter().zip(&errors) {
        assert!(
            error.contains(expected),
            "reject reason {error:?} does not say {expected:?}"
        );
    }
    let raws = warehouse.count("select count(*) from relay_rejects where length(raw) > 0");
    assert_eq!(raws, bad.len() as i64, "every reject keeps its bytes");
    assert!(
        !loader.log().contains("warehouse unavailable"),
        "a data error was called an outage:\n{}",
        loader.log()
    );
}

const CHECKED_TABLE_SQLITE: &str =
    "CREATE TABLE events (uuid TEXT, amount INTEGER NOT NULL CHECK (amount >= 0), dedup_key TEXT NOT NULL);
     CREATE UNIQUE INDEX events_dedup_key ON events (dedup_key);";

const COLUMNS: &str = r#"
[[load.columns]]
name = "uuid"
pointer = "/uuid"
type = "text"

[[load.columns]]
name = "amount"
pointer = "/amount"
type = "bigint"
"#;

#[test]
fn sqlite_rows_refused_by_not_null_and_check_go_to_rejects_and_the_rest_loads() {
    let dir = tempfile::tempdir().unwrap();
    let bad = [
        (
            r#"{"uuid":"negative","amount":-5}"#.to_owned(),
            "CHECK constraint failed",
        ),
        (r#"{"uuid":"missing"}"#.to_owned(), "NOT NULL constraint failed"),
    ];
    load_and_check(Warehouse::sqlite(dir.path()), CHECKED_TABLE_SQLITE, COLUMNS, &bad);
}

#[test]
fn postgres_nul_characters_long_keys_and_constraints_are_rejected_and_the_rest_loads() {
    let Some(postgres) = Postgres::start() else { return };
    let create = "CREATE TABLE events (uuid text, amount bigint NOT NULL CHECK (amount >= 0), event jsonb, dedup_key text NOT NULL);
                  CREATE UNIQUE INDEX events_dedup_key ON events (dedup_key);";
    let columns = format!("{COLUMNS}\n[[load.columns]]\nname = \"event\"\npointer = \"\"\ntype = \"json\"\n");
    // 10,000 characters that do not compress: over the 2,704-byte limit of
    // a btree index entry.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let long_id: String = (0..625)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            format!("{:016x}", state)
        })
        .collect();
    let bad = [
        (
            r#"{"uuid":"nul-json","amount":1,"note":"a\u0000b"}"#.to_owned(),
            "22P05",
        ),
        (r#"{"uuid":"negative","amount":-5}"#.to_owned(), "23514"),
        (r#"{"uuid":"missing"}"#.to_owned(), "23502"),
        (format!(r#"{{"uuid":"{long_id}","amount":1}}"#), "54000"),
    ];
    load_and_check(Warehouse::Postgres(postgres), create, &columns, &bad);
}

#[test]
fn postgres_nul_in_a_text_column_of_a_loader_made_table_is_rejected() {
    let Some(postgres) = Postgres::start() else { return };
    let columns = format!("{COLUMNS}\n[[load.columns]]\nname = \"note\"\npointer = \"/note\"\ntype = \"text\"\n");
    let bad = [(r#"{"uuid":"nul-text","amount":1,"note":"a\u0000b"}"#.to_owned(), "NUL")];
    load_and_check(Warehouse::Postgres(postgres), "", &columns, &bad);
}

#[test]
fn an_undecodable_batch_goes_to_rejects_with_its_bytes_and_loading_moves_on() {
    use support::raw_client::{self, RawConnection};
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let mut connection = RawConnection::connect(&broker.address);
    raw_client::create_topic(&mut connection, "refusals", 1);
    // A batch whose CRC is right but whose records are garbage: the broker
    // checks only the header and CRC, so it takes it.
    let mut garbage = raw_client::batch(None, 3);
    for byte in &mut garbage[61..] {
        *byte = 0xff;
    }
    relay_proto::crc::seal_batch_crc(&mut garbage);
    let garbage_bytes = garbage.len();
    let (code, _) = raw_client::produce(&mut connection, "refusals", 0, garbage, 3);
    assert_eq!(code, 0);
    let lines: Vec<String> = (0..GOOD).map(good).collect();
    produce(&broker, dir.path(), "refusals", &lines);
    let warehouse = Warehouse::sqlite(dir.path());
    let loader = RelayProcess::start(
        vec![
            "load".into(),
            "--broker".into(),
            broker.address.clone(),
            "--topic".into(),
            "refusals".into(),
            "--group".into(),
            "g".into(),
            "--warehouse".into(),
            warehouse.url(),
            "--table".into(),
            "events".into(),
        ],
        &dir.path().join("load.log"),
    );
    let total = GOOD as i64 + 3;
    let done = wait_until(Duration::from_secs(60), || {
        warehouse.count("select coalesce(sum(next_offset), 0) from relay_offsets") >= total
    });
    assert!(done, "{}", loader.log());
    assert_eq!(warehouse.count("select count(*) from events"), GOOD as i64);
    assert_eq!(warehouse.count("select count(*) from relay_rejects"), 1);
    assert_eq!(
        warehouse.count("select length(raw) from relay_rejects"),
        garbage_bytes as i64
    );
    assert_eq!(
        warehouse.count("select \"offset\" from relay_rejects"),
        2,
        "the batch's last offset"
    );
    let error = warehouse.query("select error from relay_rejects");
    assert!(error.contains("cannot be decoded"), "{error}");
}

/// `relay load` against a table that does not fit: exit 2 and the reason.
fn refused_at_start(warehouse: &Warehouse, create: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    if !create.is_empty() {
        match warehouse {
            Warehouse::Sqlite(path) => rusqlite::Connection::open(path).unwrap().execute_batch(create).unwrap(),
            Warehouse::Postgres(postgres) => {
                postgres.query(create);
            }
        }
    }
    let config = dir.path().join("load.toml");
    std::fs::write(
        &config,
        format!(
            "[[load]]\ntopic = \"t\"\ngroup = \"g\"\nwarehouse = \"{}\"\ntable = \"events\"\ncreate_table = false\n{COLUMNS}",
            warehouse.url()
        ),
    )
    .unwrap();
    let output = run_with_timeout(
        Command::new(relay_binary()).args([
            "load",
            "--broker",
            &broker.address,
            "--config",
            &config.display().to_string(),
        ]),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    stderr
}

#[test]
fn sqlite_a_missing_table_is_a_configuration_error_and_relay_tables_are_made_anyway() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = Warehouse::sqlite(dir.path());
    let stderr = refused_at_start(&warehouse, "");
    assert!(stderr.contains("table events does not exist"), "{stderr}");
    assert_eq!(
        warehouse
            .count("select count(*) from sqlite_master where name in ('relay_offsets', 'relay_rejects', 'relay_gaps')"),
        3,
        "Relay's own tables are made whatever create_table says"
    );
    let stderr = refused_at_start(
        &Warehouse::sqlite(&dir.path().join("x")).tap_dir(),
        "CREATE TABLE events (uuid TEXT, amount INTEGER, dedup_key TEXT NOT NULL)",
    );
    assert!(stderr.contains("no unique index"), "{stderr}");
}

#[test]
fn postgres_a_column_of_another_type_or_a_missing_unique_index_is_a_configuration_error() {
    let Some(postgres) = Postgres::start() else { return };
    let warehouse = Warehouse::Postgres(postgres);
    let stderr = refused_at_start(
        &warehouse,
        "CREATE TABLE events (uuid text, amount double precision, dedup_key text NOT NULL);
         CREATE UNIQUE INDEX events_dedup_key ON events (dedup_key);",
    );
    assert!(
        stderr.contains("column amount is double precision in the table but configured as Bigint"),
        "{stderr}"
    );
    let stderr = refused_at_start(
        &warehouse,
        "DROP TABLE events; CREATE TABLE events (uuid text, amount bigint, dedup_key text NOT NULL);",
    );
    assert!(stderr.contains("no unique index"), "{stderr}");
}

trait TapDir {
    fn tap_dir(self) -> Self;
}

impl TapDir for Warehouse {
    /// Creates the SQLite file's directory.
    fn tap_dir(self) -> Self {
        if let Warehouse::Sqlite(path) = &self {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        }
        self
    }
}

/// `relay load --warehouse URL` for a warehouse that cannot work: exit 2
/// with the server's reason, and no password anywhere in what it prints.
fn load_refused(broker: &BrokerProcess, warehouse: &str) -> String {
    let output = run_with_timeout(
        Command::new(relay_binary()).args([
            "load",
            "--broker",
            &broker.address,
            "--topic",
            "t",
            "--group",
            "g",
            "--warehouse",
            warehouse,
            "--table",
            "events",
        ]),
        Duration::from_secs(60),
    );
    let printed = String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{printed}");
    assert!(!printed.contains("s3cret"), "a password was printed:\n{printed}");
    printed
}

#[test]
fn postgres_a_missing_role_or_database_is_a_configuration_error_that_names_it() {
    let Some(postgres) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), "");
    let port = postgres.port;
    let printed = load_refused(&broker, &format!("postgres://nobody:s3cret@127.0.0.1:{port}/postgres"));
    assert!(
        printed.contains("nobody") && printed.contains("does not exist"),
        "{printed}"
    );
    let printed = load_refused(
        &broker,
        &format!("postgres://postgres:s3cret@127.0.0.1:{port}/nosuchdb"),
    );
    assert!(
        printed.contains("nosuchdb") && printed.contains("does not exist"),
        "{printed}"
    );
    let printed = load_refused(&broker, "sqlite://");
    assert!(printed.contains("names no database"), "{printed}");
}
