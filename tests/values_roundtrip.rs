//! Values arrive exactly as written, through the `relay` binary: `relay
//! broker`, `relay produce` of a file of lines holding edge values of every
//! column type (microsecond and nanosecond timestamps with offsets and leap
//! days, 64-bit integers past 2^53, -0.0, 1e-7, astral-plane text, a 1 MiB
//! string, nested json with numbers no double holds), then `relay load
//! --until-end` into SQLite and into PostgreSQL. Every value read back is
//! the value written (by the equality `proto-spec/LOADER.md` states per
//! type), or its line is in `relay_rejects` with the reason; nothing is
//! altered on the way.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::postgres::Postgres;
use support::warehouse::Warehouse;
use support::{relay_binary, run_with_timeout, BrokerProcess};

/// Every column type, each read from its own field of the event.
const COLUMNS: &str = r#"
[[load.columns]]
name = "id"
pointer = "/id"
type = "text"
nullable = false

[[load.columns]]
name = "ts"
pointer = "/ts"
type = "timestamptz"

[[load.columns]]
name = "n"
pointer = "/n"
type = "bigint"

[[load.columns]]
name = "x"
pointer = "/x"
type = "double"

[[load.columns]]
name = "s"
pointer = "/s"
type = "text"

[[load.columns]]
name = "j"
pointer = "/j"
type = "json"

[[load.columns]]
name = "u"
pointer = "/u"
type = "uuid"

[[load.columns]]
name = "b"
pointer = "/b"
type = "boolean"
"#;

/// Produces `lines` and loads them to the end of the topic; returns what
/// `relay_rejects` holds: the id of each rejected line → its reason.
fn load(warehouse: &Warehouse, dir: &Path, lines: &[String]) -> BTreeMap<String, String> {
    let broker = BrokerProcess::start(dir, "");
    let file = dir.join("values.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    for line in lines {
        writeln!(out, "{line}").unwrap();
    }
    drop(out);
    let relay = |args: &[&str]| {
        let output = run_with_timeout(
            Command::new(relay_binary())
                .args(args)
                .env("RELAY_BROKER", &broker.address),
            Duration::from_secs(180),
        );
        assert!(
            output.status.success(),
            "relay {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    relay(&["produce", "--topic", "values", file.to_str().unwrap()]);
    let config = dir.join("load.toml");
    std::fs::write(
        &config,
        format!(
            "[[load]]\ntopic = \"values\"\ngroup = \"values\"\nwarehouse = \"{}\"\ntable = \"v\"\n\
             dedup_key = \"/id\"\nbatch_records_max = 100\nbatch_wait_ms = 100\n{COLUMNS}",
            warehouse.url()
        ),
    )
    .unwrap();
    relay(&["load", "--config", config.to_str().unwrap(), "--until-end"]);
    stored(warehouse, "relay_rejects", "raw", "error")
        .into_iter()
        .map(|(raw, error)| {
            let event: serde_json::Value = serde_json::from_str(&raw).unwrap_or_default();
            (event["id"].as_str().unwrap_or(&raw).to_owned(), error)
        })
        .collect()
}

/// `key → value` of every row of `table`, both read as exact text:
/// integers in decimal, doubles as the hex of their IEEE 754 bits,
/// timestamps as RFC 3339 UTC with microseconds, text as itself, json as
/// the warehouse prints it, NULL as "NULL".
fn stored(warehouse: &Warehouse, table: &str, key: &str, column: &str) -> BTreeMap<String, String> {
    match warehouse {
        Warehouse::Sqlite(path) => {
            let connection = rusqlite::Connection::open(path).unwrap();
            let mut statement = connection
                .prepare(&format!("SELECT {key}, {column} FROM {table}"))
                .unwrap();
            let rows = statement
                .query_map([], |row| {
                    use rusqlite::types::Value;
                    let text = |value| match value {
                        Value::Null => "NULL".to_owned(),
                        Value::Integer(n) => n.to_string(),
                        Value::Real(f) => format!("{:016x}", f.to_bits()),
                        Value::Text(text) => text,
                        Value::Blob(bytes) => String::from_utf8(bytes).unwrap(),
                    };
                    Ok((text(row.get(0)?), text(row.get(1)?)))
                })
                .unwrap();
            rows.map(Result::unwrap).collect()
        }
        Warehouse::Postgres(postgres) => {
            // Hex keeps every value on one line of psql's output, exactly.
            let hex = |expression: &str| format!("encode(convert_to(({expression})::text, 'UTF8'), 'hex')");
            let value = match column {
                "x" => "encode(float8send(x), 'hex')".to_owned(),
                "ts" => hex("to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"),
                "raw" => "encode(raw, 'hex')".to_owned(),
                other => hex(other),
            };
            let key = if key == "raw" {
                "encode(raw, 'hex')".to_owned()
            } else {
                hex(key)
            };
            let output = postgres.query(&format!("SELECT {key}, coalesce({value}, '4e554c4c') FROM {table}"));
            output
                .lines()
                .filter(|line| !line.is_empty())
                .map(|line| {
                    let (key, value) = line.split_once('|').unwrap();
                    let text = |hex: &str| {
                        let bytes: Vec<u8> = (0..hex.len())
                            .step_by(2)
                            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                            .collect();
                        String::from_utf8(bytes).unwrap()
                    };
                    let value = if column == "x" && value != "4e554c4c" {
                        value.to_owned()
                    } else {
                        text(value)
                    };
                    (text(key), value)
                })
                .collect()
        }
    }
}

/// Timestamp lines: id → (the `ts` written, what must be stored, or the
/// text the reject reason must hold).
fn timestamp_cases() -> Vec<(&'static str, &'static str, Result<&'static str, &'static str>)> {
    vec![
        (
            "issue",
            "2026-12-07T09:28:04.004729Z",
            Ok("2026-12-07T09:28:04.004729Z"),
        ),
        ("millis", "2026-12-07T09:28:04.004Z", Ok("2026-12-07T09:28:04.004000Z")),
        ("whole", "2026-12-07T09:28:04Z", Ok("2026-12-07T09:28:04.000000Z")),
        (
            "india",
            "2026-12-07T14:58:04.000001+05:30",
            Ok("2026-12-07T09:28:04.000001Z"),
        ),
        (
            "newfoundland",
            "2026-12-31T21:29:59.999999-03:30",
            Ok("2027-01-01T00:59:59.999999Z"),
        ),
        (
            "nanos",
            "2026-12-07T09:28:04.123456789Z",
            Ok("2026-12-07T09:28:04.123456Z"),
        ),
        (
            "leap-day",
            "2024-02-29T23:59:59.999999Z",
            Ok("2024-02-29T23:59:59.999999Z"),
        ),
        (
            "leap-day-2000",
            "2000-02-29T00:00:00.5+01:00",
            Ok("2000-02-28T23:00:00.500000Z"),
        ),
        (
            "before-epoch",
            "1969-12-31T23:59:59.999999Z",
            Ok("1969-12-31T23:59:59.999999Z"),
        ),
        (
            "space",
            "2026-12-07 09:28:04.004729z",
            Ok("2026-12-07T09:28:04.004729Z"),
        ),
        ("feb-30", "2026-02-30T00:00:00Z", Err("day 30")),
        ("feb-29-2026", "2026-02-29T00:00:00Z", Err("day 29")),
        ("feb-29-1900", "1900-02-29T00:00:00Z", Err("day 29")),
        ("hour-24", "2026-12-07T24:00:00Z", Err("hour")),
        ("no-offset", "2026-12-07T09:28:04.004729", Err("offset")),
        ("leap-second", "2016-12-31T23:59:60Z", Err("leap second")),
    ]
}

fn timestamp_microseconds_survive_load(warehouse: Warehouse, dir: &Path) {
    let cases = timestamp_cases();
    let lines: Vec<String> = cases
        .iter()
        .map(|(id, ts, _)| format!(r#"{{"id":"{id}","ts":"{ts}"}}"#))
        .collect();
    let rejects = load(&warehouse, dir, &lines);
    let rows = stored(&warehouse, "v", "id", "ts");
    for (id, written, expected) in cases {
        match expected {
            Ok(expected) => assert_eq!(
                rows.get(id).map(String::as_str),
                Some(expected),
                "{id}: {written} (rejected: {:?})",
                rejects.get(id)
            ),
            Err(reason) => {
                assert!(!rows.contains_key(id), "{id}: {written} loaded as {:?}", rows[id]);
                let error = rejects
                    .get(id)
                    .unwrap_or_else(|| panic!("{id}: {written} neither loaded nor rejected"));
                assert!(
                    error.contains(reason),
                    "{id}: reject reason {error:?} does not say {reason:?}"
                );
            }
        }
    }
}

#[test]
fn timestamp_microseconds_survive_load_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    timestamp_microseconds_survive_load(Warehouse::sqlite(dir.path()), dir.path());
}

#[test]
fn timestamp_microseconds_survive_load_postgres() {
    let Some(postgres) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    timestamp_microseconds_survive_load(Warehouse::Postgres(postgres), dir.path());
}
