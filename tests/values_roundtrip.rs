//! Values arrive exactly as written, through the `relay` binary: `relay
//! broker`, `relay produce` of a file of lines holding edge values of every
//! column type (microsecond and nanosecond timestamps with offsets and leap
//! days, 64-bit integers past 2^53, -0.0, 1e-7, astral-plane text, a 1 MiB
//! string, nested json with numbers no double holds), then `relay load
//! --until-end` into SQLite and into PostgreSQL; then 600 generated lines
//! of random values of every type (`support/generated_values.rs`, seed in
//! `RELAY_VALUES_SEED`) the same way. Every value read back is
//! the value written (by the equality `proto-spec/LOADER.md` states per
//! type), or its line is in `relay_rejects` with the reason; nothing is
//! altered on the way.

#[path = "support/generated_values.rs"]
mod generated_values;
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
            // The id by its text: some rejected lines are not JSON at all.
            let id = raw
                .split_once("\"id\":\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map_or(raw.as_str(), |(id, _)| id);
            (id.to_owned(), error)
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

/// Bytes of the long text: a record of 1 MiB less what the line and the
/// record around it take, under the broker's 1,048,588-byte message limit.
const LONG_TEXT_BYTES: usize = (1 << 20) - 1024;

/// What must be stored for a line: a value (as [`stored`] prints it), or
/// the text of its reject reason.
type Outcome = Result<String, &'static str>;

fn bits(double: f64) -> Outcome {
    Ok(format!("{:016x}", double.to_bits()))
}

/// Lines of edge values: (id, column, the value as written, outcome).
fn edge_cases(postgres: bool) -> Vec<(&'static str, &'static str, String, Outcome)> {
    let long: String = "é😀x".repeat(LONG_TEXT_BYTES / 7);
    let nested = r#"{"z": {"y": [1, 2.50, {"x": null}]}, "a": "é\u00e9😀", "big": 12345678901234567890123, "tiny": 1e-7, "neg0": -0.0, "z2": 9007199254740993}"#;
    let same = |text: &str| -> Outcome { Ok(text.to_owned()) };
    vec![
        ("n-min", "n", i64::MIN.to_string(), same("-9223372036854775808")),
        ("n-max", "n", i64::MAX.to_string(), same("9223372036854775807")),
        ("n-2p53+1", "n", "9007199254740993".into(), same("9007199254740993")),
        ("n-text", "n", "\"-42\"".into(), same("-42")),
        ("n-past-i64", "n", "9223372036854775808".into(), Err("64-bit integer")),
        (
            "n-huge",
            "n",
            "123456789012345678901234567890".into(),
            Err("64-bit integer"),
        ),
        ("n-fraction", "n", "1.5".into(), Err("64-bit integer")),
        (
            "x-negative-zero",
            "x",
            "-0.0".into(),
            if postgres { bits(-0.0) } else { Err("sign of zero") },
        ),
        ("x-1e-7", "x", "1e-7".into(), bits(1e-7)),
        ("x-tenth", "x", "0.1".into(), bits(0.1)),
        ("x-max", "x", "1.7976931348623157e308".into(), bits(f64::MAX)),
        ("x-subnormal", "x", "5e-324".into(), bits(5e-324)),
        ("x-2p53", "x", "9007199254740992".into(), bits(9_007_199_254_740_992.0)),
        ("x-2p53+1", "x", "9007199254740993".into(), Err("precision")),
        ("x-long-pi", "x", "3.14159265358979323846".into(), Err("precision")),
        ("x-nan-text", "x", "\"NaN\"".into(), Err("not a number")),
        ("x-past-double", "x", "1e400".into(), Err("not JSON")),
        ("x-text", "x", "\"2.5\"".into(), bits(2.5)),
        ("s-astral", "s", "\"😀𝄞 astral\"".into(), same("😀𝄞 astral")),
        (
            "s-escaped",
            "s",
            r#""\ud83d\ude00\u00e9\t\"\\""#.into(),
            same("😀é\t\"\\"),
        ),
        ("s-nul", "s", r#""a\u0000b""#.into(), Err("NUL")),
        ("s-long", "s", format!("\"{long}\""), Ok(long.clone())),
        ("s-number", "s", "1.50".into(), same("1.50")),
        (
            "s-big-number",
            "s",
            "12345678901234567890123".into(),
            same("12345678901234567890123"),
        ),
        (
            "s-object",
            "s",
            r#"{"b":1, "a":[1.0]}"#.into(),
            same(r#"{"b":1, "a":[1.0]}"#),
        ),
        ("j-nested", "j", nested.into(), same(nested)),
        ("j-2p53+1", "j", "9007199254740993".into(), same("9007199254740993")),
        ("j-nan-text", "j", "\"NaN\"".into(), same("\"NaN\"")),
        (
            "j-nul",
            "j",
            r#"{"a": "x\u0000y"}"#.into(),
            if postgres {
                Err("22P05")
            } else {
                same(r#"{"a": "x\u0000y"}"#)
            },
        ),
        (
            "ts-nanos-offset-leap-day",
            "ts",
            "\"2024-02-29T23:59:59.999999999+05:30\"".into(),
            same("2024-02-29T18:29:59.999999Z"),
        ),
        (
            "ts-millis",
            "ts",
            "1765099684004".into(),
            same("2025-12-07T09:28:04.004000Z"),
        ),
        (
            "u-upper",
            "u",
            "\"6F1C0A52-3C5F-4F0E-9A4E-0D5B6C7D8E9F\"".into(),
            same("6f1c0a52-3c5f-4f0e-9a4e-0d5b6c7d8e9f"),
        ),
        ("u-bad", "u", "\"not-a-uuid\"".into(), Err("not a UUID")),
        ("b-true", "b", "true".into(), same(if postgres { "true" } else { "1" })),
        ("b-text", "b", "\"true\"".into(), Err("true or false")),
    ]
}

/// Loads one line per case (`{"id": id, column: written}`) and checks
/// that every value is stored as expected or rejected with its reason,
/// listing every one that is not.
fn values_arrive_exactly<Id: AsRef<str>>(warehouse: &Warehouse, dir: &Path, cases: &[(Id, &str, String, Outcome)]) {
    let postgres = matches!(warehouse, Warehouse::Postgres(_));
    let lines: Vec<String> = cases
        .iter()
        .map(|(id, column, written, _)| format!(r#"{{"id":"{}","{column}":{written}}}"#, id.as_ref()))
        .collect();
    let rejects = load(warehouse, dir, &lines);
    let mut columns: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
    for (_, column, _, _) in cases {
        columns
            .entry(column)
            .or_insert_with(|| stored(warehouse, "v", "id", column));
    }
    let short = |text: &str| text.chars().take(120).collect::<String>();
    // Every altered value, not just the first.
    let mut altered = Vec::new();
    for (id, column, written, outcome) in cases {
        let id = id.as_ref();
        let row = columns[column].get(id);
        let rejected = rejects.get(id);
        match (outcome, row) {
            (Ok(expected), Some(row)) => {
                let equal = if postgres && *column == "j" {
                    // jsonb keeps values, not layout: equal as JSON, numbers exactly.
                    let canonical = relay_loader::values::json_text::canonical;
                    canonical(row) == canonical(expected)
                } else {
                    row == expected
                };
                if !equal {
                    altered.push(format!("{id}: {} came back as {}", short(written), short(row)));
                }
            }
            (Ok(_), None) => altered.push(format!("{id}: {} not loaded: {rejected:?}", short(written))),
            (Err(_), Some(row)) => altered.push(format!("{id}: {} loaded as {}", short(written), short(row))),
            (Err(reason), None) => match rejected {
                Some(error) if error.contains(reason) => {}
                Some(error) => altered.push(format!("{id}: reject reason {error:?} does not say {reason:?}")),
                None => altered.push(format!("{id}: {} neither loaded nor rejected", short(written))),
            },
        }
    }
    assert!(
        altered.is_empty(),
        "{} of {} values altered or lost:\n{}",
        altered.len(),
        cases.len(),
        altered.join("\n")
    );
}

#[test]
fn edge_values_arrive_exactly_or_are_rejected_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = Warehouse::sqlite(dir.path());
    values_arrive_exactly(&warehouse, dir.path(), &edge_cases(false));
}

#[test]
fn edge_values_arrive_exactly_or_are_rejected_postgres() {
    let Some(postgres) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    values_arrive_exactly(&Warehouse::Postgres(postgres), dir.path(), &edge_cases(true));
}

/// Generated lines per warehouse.
const GENERATED_LINES: usize = 600;

fn generated_values_arrive_exactly(warehouse: Warehouse, dir: &Path) {
    let postgres = matches!(warehouse, Warehouse::Postgres(_));
    let seed = generated_values::seed();
    eprintln!("generated values: RELAY_VALUES_SEED={seed}");
    let mut rng = generated_values::Rng::new(seed);
    let cases: Vec<_> = (0..GENERATED_LINES)
        .map(|index| {
            let (column, written, outcome) = generated_values::value(&mut rng, postgres);
            (format!("g{index}"), column, written, outcome)
        })
        .collect();
    values_arrive_exactly(&warehouse, dir, &cases);
}

#[test]
fn generated_values_arrive_exactly_or_are_rejected_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    generated_values_arrive_exactly(Warehouse::sqlite(dir.path()), dir.path());
}

#[test]
fn generated_values_arrive_exactly_or_are_rejected_postgres() {
    let Some(postgres) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    generated_values_arrive_exactly(Warehouse::Postgres(postgres), dir.path());
}
