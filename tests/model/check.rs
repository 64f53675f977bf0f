//! The comparison of what the warehouse and the sender's rejects hold with
//! the reference: every complete line once in its table with equal values,
//! every banner in `relay_rejects` with its bytes and nothing else there,
//! every stranded half line set aside (or still on disk), nothing unknown.
//! Reads the SQLite warehouse directly; changes nothing.

use crate::reference::{banner, Reference, Table, Written};
use crate::schedule::Columns;
use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Problems of one kind listed in a failure, at most.
const SHOWN_MAX: usize = 8;

fn open(warehouse: &Path) -> Option<Connection> {
    if !warehouse.exists() {
        return None;
    }
    let connection = Connection::open(warehouse).ok()?;
    connection.busy_timeout(Duration::from_secs(30)).ok()?;
    Some(connection)
}

fn seq_expression(columns: Columns) -> &'static str {
    match columns {
        Columns::Typed => "seq",
        Columns::None => "json_extract(event, '$.seq')",
    }
}

/// (distinct lines loaded, distinct records rejected) so far; zeros while
/// the tables are not there yet.
pub fn progress(warehouse: &Path, columns: Columns) -> (i64, i64) {
    let Some(connection) = open(warehouse) else {
        return (0, 0);
    };
    let seq = seq_expression(columns);
    let count = |sql: &str| connection.query_row(sql, [], |row| row.get::<_, i64>(0)).unwrap_or(0);
    (
        count(&format!(
            "SELECT count(DISTINCT s) FROM (SELECT {seq} AS s FROM events UNION ALL SELECT {seq} AS s FROM kinds)"
        )),
        count("SELECT count(*) FROM (SELECT DISTINCT topic, partition, \"offset\" FROM relay_rejects)"),
    )
}

/// A row as read back: its table, seq and the values to compare.
struct Row {
    table: Table,
    seq: i64,
    values: Vec<SqlValue>,
}

fn read_rows(connection: &Connection, columns: Columns) -> Vec<Row> {
    let mut rows = Vec::new();
    for table in [Table::Events, Table::Kinds] {
        let select = match columns {
            Columns::Typed => format!("SELECT seq, id, kind, ts, n, s, x FROM {}", table.name()),
            Columns::None => format!("SELECT {}, event FROM {}", seq_expression(columns), table.name()),
        };
        let mut statement = connection.prepare(&select).unwrap();
        let found = statement
            .query_map([], |row| {
                let width = row.as_ref().column_count();
                let values: Vec<SqlValue> = (1..width).map(|i| row.get(i).unwrap()).collect();
                Ok(Row {
                    table,
                    seq: row.get::<_, Option<i64>>(0)?.unwrap_or(-1),
                    values,
                })
            })
            .unwrap();
        rows.extend(found.map(Result::unwrap));
    }
    rows
}

/// What a typed row must hold for `written`: id, kind, ts (UTC, µs), n, s, x.
fn typed_values(written: &Written) -> Vec<SqlValue> {
    let event = &written.event;
    let text = |key: &str| match event.get(key).and_then(|v| v.as_str()) {
        Some(text) => SqlValue::Text(text.to_owned()),
        None => SqlValue::Null,
    };
    vec![
        text("id"),
        text("kind"),
        SqlValue::Text(written.ts_utc.clone()),
        SqlValue::Integer(event["n"].as_i64().unwrap()),
        text("s"),
        SqlValue::Real(event["x"].as_f64().unwrap()),
    ]
}

fn values_equal(written: &Written, row: &Row, columns: Columns) -> bool {
    match columns {
        Columns::Typed => {
            let expected = typed_values(written);
            expected.len() == row.values.len()
                && expected.iter().zip(&row.values).all(|(a, b)| match (a, b) {
                    (SqlValue::Real(a), SqlValue::Real(b)) => a.to_bits() == b.to_bits(),
                    (a, b) => a == b,
                })
        }
        Columns::None => match row.values.first() {
            Some(SqlValue::Text(text)) => serde_json::from_str::<serde_json::Value>(text).ok().as_ref() == Some(&written.event),
            _ => false,
        },
    }
}

fn shown(problems: &mut Vec<String>, title: &str, items: Vec<String>) {
    if !items.is_empty() {
        let more = items.len().saturating_sub(SHOWN_MAX);
        let mut text = format!("{title} ({}): {}", items.len(), items[..items.len().min(SHOWN_MAX)].join("; "));
        if more > 0 {
            text.push_str(&format!("; and {more} more"));
        }
        problems.push(text);
    }
}

fn check_rows(connection: &Connection, reference: &Reference, columns: Columns, problems: &mut Vec<String>) {
    let mut by_seq: BTreeMap<i64, Vec<Row>> = BTreeMap::new();
    for row in read_rows(connection, columns) {
        by_seq.entry(row.seq).or_default().push(row);
    }
    let (mut missing, mut twice, mut altered, mut misrouted) = (vec![], vec![], vec![], vec![]);
    for (seq, written) in &reference.complete {
        let rows = by_seq.remove(&(*seq as i64)).unwrap_or_default();
        match rows.len() {
            0 => missing.push(format!("seq {seq} of {}", crate::schedule::FILES[written.file as usize])),
            1 => {}
            n => twice.push(format!("seq {seq} {n} times")),
        }
        for row in &rows {
            if row.table != written.table {
                misrouted.push(format!("seq {seq} in {}", row.table.name()));
            } else if !values_equal(written, row, columns) {
                altered.push(format!("seq {seq}: wrote {} stored {:?}", written.event, row.values));
            }
        }
    }
    let unknown: Vec<String> = by_seq.keys().map(|seq| format!("seq {seq}")).collect();
    shown(problems, "lines never loaded", missing);
    shown(problems, "lines loaded more than once", twice);
    shown(problems, "values altered", altered);
    shown(problems, "lines in the wrong table", misrouted);
    shown(problems, "rows nobody wrote", unknown);
}

fn check_rejects(connection: &Connection, reference: &Reference, problems: &mut Vec<String>) {
    let mut statement = connection
        .prepare("SELECT DISTINCT partition, \"offset\", raw, error FROM relay_rejects")
        .unwrap();
    let rejects: Vec<(Vec<u8>, String)> = statement
        .query_map([], |row| Ok((row.get::<_, Vec<u8>>(2)?, row.get::<_, String>(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let banner = banner().into_bytes();
    let banners = rejects.iter().filter(|(raw, _)| *raw == banner).count() as u64;
    if banners != reference.banners {
        problems.push(format!("{} banners written, {banners} in relay_rejects", reference.banners));
    }
    let unexpected: Vec<String> = rejects
        .iter()
        .filter(|(raw, _)| *raw != banner)
        .map(|(raw, error)| format!("{:?}… ({error})", String::from_utf8_lossy(&raw[..raw.len().min(80)])))
        .collect();
    shown(problems, "records rejected that were valid lines", unexpected);
}

/// The entries of the sender's `<state_dir>/rejects` (each a header line,
/// then the line's bytes): their bytes.
fn sender_rejects(state: &Path) -> Vec<Vec<u8>> {
    let content = std::fs::read(state.join("rejects")).unwrap_or_default();
    let mut entries = Vec::new();
    let mut lines = content.split(|b| *b == b'\n');
    while let Some(line) = lines.next() {
        if line.starts_with(b"# relay-reject ") {
            entries.push(lines.next().unwrap_or_default().to_vec());
        }
    }
    entries
}

fn check_stranded(state: &Path, reference: &Reference, problems: &mut Vec<String>) {
    let set_aside = sender_rejects(state);
    let mut lost = Vec::new();
    for stranded in &reference.stranded {
        if set_aside.contains(&stranded.bytes) {
            continue;
        }
        let still_there = stranded
            .path
            .as_ref()
            .and_then(|path| std::fs::read(path).ok())
            .is_some_and(|bytes| bytes.ends_with(&stranded.bytes));
        if !still_there {
            lost.push(format!(
                "half line seq {} ({})",
                stranded.seq,
                if stranded.path.is_some() { "rotated" } else { "its file deleted" }
            ));
        }
    }
    shown(problems, "half lines neither set aside nor on disk", lost);
}

/// Every problem found, none when the promise held.
pub fn check(warehouse: &Path, state: &Path, reference: &Reference, columns: Columns) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(connection) = open(warehouse) else {
        return vec!["no warehouse file".into()];
    };
    check_rows(&connection, reference, columns, &mut problems);
    check_rejects(&connection, reference, &mut problems);
    check_stranded(state, reference, &mut problems);
    problems
}
