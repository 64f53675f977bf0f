//! The comparison of what the warehouse and the sender's rejects hold with
//! the reference: every complete line once in its table with equal values,
//! every banner in `relay_rejects` with its bytes and nothing else there,
//! every stranded half line set aside (or still on disk), records missing
//! only after a corruption and then each one in `relay_gaps`, nothing
//! unknown. Reads the warehouse through `store.rs`; changes nothing.

use crate::reference::{banner, Reference, Table, Written};
use crate::schedule::Columns;
use crate::store::Store;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Problems of one kind listed in a failure, at most.
const SHOWN_MAX: usize = 8;

fn seq_expression(store: &Store, columns: Columns) -> &'static str {
    match (columns, store.is_postgres()) {
        (Columns::Typed, _) => "seq",
        (Columns::None, false) => "json_extract(event, '$.seq')",
        (Columns::None, true) => "(event->>'seq')::bigint",
    }
}

/// Records the main group recorded as lost (`relay_gaps`).
fn gap_records(store: &Store) -> i64 {
    store.count(&format!(
        "SELECT coalesce(sum(records), 0) FROM relay_gaps WHERE group_id = '{}'",
        crate::world::GROUP
    ))
}

/// (distinct lines loaded, distinct records rejected, records lost) so far;
/// zeros while the tables are not there yet.
pub fn progress(store: &Store, columns: Columns) -> (i64, i64, i64) {
    let seq = seq_expression(store, columns);
    (
        store.count(&format!(
            "SELECT count(DISTINCT s) FROM (SELECT {seq} AS s FROM events UNION ALL SELECT {seq} AS s FROM kinds) AS a"
        )),
        store.count("SELECT count(*) FROM (SELECT DISTINCT topic, partition, \"offset\" FROM relay_rejects) AS r"),
        gap_records(store),
    )
}

/// A row as read back: its table, seq and the values to compare.
struct Row {
    table: Table,
    seq: i64,
    values: Vec<Value>,
}

/// The typed columns of a row as SQL: (SQLite, PostgreSQL as one JSON array).
fn typed_select(table: &str) -> (String, String) {
    (
        format!("SELECT seq, id, kind, ts, n, s, x FROM {table}"),
        format!(
            "SELECT json_build_array(seq, id, kind, \
             to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), n, s, x) FROM {table}"
        ),
    )
}

fn read_rows(store: &Store, columns: Columns) -> Vec<Row> {
    let mut rows = Vec::new();
    for table in [Table::Events, Table::Kinds] {
        let name = table.name();
        let (sqlite, postgres) = match columns {
            Columns::Typed => typed_select(name),
            Columns::None => (
                format!("SELECT {}, event FROM {name}", seq_expression(store, columns)),
                format!(
                    "SELECT json_build_array({}, event) FROM {name}",
                    seq_expression(store, columns)
                ),
            ),
        };
        for mut values in store.rows(&sqlite, &postgres) {
            let seq = values.remove(0).as_i64().unwrap_or(-1);
            rows.push(Row { table, seq, values });
        }
    }
    rows
}

/// What a typed row must hold for `written`: id, kind, ts (UTC, µs), n, s, x.
fn typed_values(written: &Written) -> Vec<Value> {
    let event = &written.event;
    vec![
        event.get("id").cloned().unwrap_or(Value::Null),
        event["kind"].clone(),
        Value::String(written.ts_utc.clone()),
        event["n"].clone(),
        event["s"].clone(),
        event["x"].clone(),
    ]
}

/// Equal as stored: integers exactly, doubles bit for bit, text byte for byte.
fn value_equal(expected: &Value, stored: &Value) -> bool {
    match (expected, stored) {
        (Value::Number(a), Value::Number(b)) if a.is_f64() || b.is_f64() => {
            a.as_f64().map(f64::to_bits) == b.as_f64().map(f64::to_bits)
        }
        (a, b) => a == b,
    }
}

fn values_equal(written: &Written, row: &Row, columns: Columns) -> bool {
    match columns {
        Columns::Typed => {
            let expected = typed_values(written);
            expected.len() == row.values.len() && expected.iter().zip(&row.values).all(|(a, b)| value_equal(a, b))
        }
        Columns::None => {
            let stored = match row.values.first() {
                Some(Value::String(text)) => serde_json::from_str::<Value>(text).ok(),
                other => other.cloned(),
            };
            stored.as_ref() == Some(&written.event)
        }
    }
}

fn shown(problems: &mut Vec<String>, title: &str, items: Vec<String>) {
    if !items.is_empty() {
        let more = items.len().saturating_sub(SHOWN_MAX);
        let mut text = format!(
            "{title} ({}): {}",
            items.len(),
            items[..items.len().min(SHOWN_MAX)].join("; ")
        );
        if more > 0 {
            text.push_str(&format!("; and {more} more"));
        }
        problems.push(text);
    }
}

/// Compares rows; returns the lines never loaded (judged with the gaps by [`check`]).
fn check_rows(store: &Store, reference: &Reference, columns: Columns, problems: &mut Vec<String>) -> Vec<String> {
    let mut by_seq: BTreeMap<i64, Vec<Row>> = BTreeMap::new();
    for row in read_rows(store, columns) {
        by_seq.entry(row.seq).or_default().push(row);
    }
    let (mut missing, mut twice, mut altered, mut misrouted) = (vec![], vec![], vec![], vec![]);
    for (seq, written) in &reference.complete {
        let rows = by_seq.remove(&(*seq as i64)).unwrap_or_default();
        match rows.len() {
            0 => missing.push(format!(
                "seq {seq} of {}",
                crate::schedule::FILES[written.file as usize]
            )),
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
    shown(problems, "lines loaded more than once", twice);
    shown(problems, "values altered", altered);
    shown(problems, "lines in the wrong table", misrouted);
    shown(problems, "rows nobody wrote", unknown);
    missing
}

/// Compares `relay_rejects`; returns how many banners are not there.
fn check_rejects(store: &Store, reference: &Reference, problems: &mut Vec<String>) -> u64 {
    let distinct = "FROM (SELECT DISTINCT partition, \"offset\", raw, error FROM relay_rejects) AS r";
    let rejects: Vec<(Vec<u8>, String)> = store
        .rows(
            &format!("SELECT hex(raw), error {distinct}"),
            &format!("SELECT json_build_array(encode(raw, 'hex'), error) {distinct}"),
        )
        .into_iter()
        .map(|row| {
            (
                unhex(row[0].as_str().unwrap_or_default()),
                row[1].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let banner = banner().into_bytes();
    let banners = rejects.iter().filter(|(raw, _)| *raw == banner).count() as u64;
    if banners > reference.banners {
        problems.push(format!(
            "{} banners written, {banners} in relay_rejects",
            reference.banners
        ));
    }
    let unexpected: Vec<String> = rejects
        .iter()
        .filter(|(raw, _)| *raw != banner)
        .map(|(raw, error)| format!("{:?}… ({error})", String::from_utf8_lossy(&raw[..raw.len().min(80)])))
        .collect();
    shown(problems, "records rejected that were valid lines", unexpected);
    reference.banners.saturating_sub(banners)
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

/// Whether every line the sender must set aside (over-long, or half of a
/// deleted file) is in its rejects yet.
pub fn set_aside_done(state: &Path, reference: &Reference) -> bool {
    let set_aside = sender_rejects(state);
    reference.overlong.iter().all(|line| set_aside.contains(line))
        && reference
            .stranded
            .iter()
            .filter(|s| s.path.is_none())
            .all(|s| set_aside.contains(&s.bytes))
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
                if stranded.path.is_some() {
                    "rotated"
                } else {
                    "its file deleted"
                }
            ));
        }
    }
    shown(problems, "half lines neither set aside nor on disk", lost);
    let overlong: Vec<String> = reference
        .overlong
        .iter()
        .filter(|line| !set_aside.contains(line))
        .map(|line| format!("{:?}…", String::from_utf8_lossy(&line[..60])))
        .collect();
    shown(problems, "over-long lines not set aside whole", overlong);
}

/// Every problem found, none when the promise held.
/// `tail_quarantined`: records set aside at a partition's very end, which
/// no loader can see as a gap yet (see `World::tail_quarantined`).
pub fn check(
    store: &Store,
    state: &Path,
    reference: &Reference,
    columns: Columns,
    tail_quarantined: i64,
) -> Vec<String> {
    let mut problems = Vec::new();
    let missing = check_rows(store, reference, columns, &mut problems);
    let banners_missing = check_rejects(store, reference, &mut problems);
    // Only a flipped byte may lose records, and each lost one is in a gap.
    // A gap may count more records than lines went missing: a line the
    // sender sent twice (after a kill) may have had one copy set aside.
    let lost = missing.len() as i64 + banners_missing as i64;
    let gaps = gap_records(store);
    if lost > gaps + tail_quarantined || (reference.corruptions == 0 && (lost > 0 || gaps > 0)) {
        let mut text = format!(
            "{} lines and {banners_missing} banners never loaded nor rejected, {gaps} records in relay_gaps, \
             {tail_quarantined} set aside at a partition's end ({} corruptions)",
            missing.len(),
            reference.corruptions
        );
        if !missing.is_empty() {
            text.push_str(&format!(": {}", missing[..missing.len().min(SHOWN_MAX)].join("; ")));
        }
        problems.push(text);
    }
    check_stranded(state, reference, &mut problems);
    problems
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect()
}
