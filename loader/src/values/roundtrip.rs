//! Property: generated written values of every column type, loaded through
//! the sink API into a real warehouse (a SQLite file; a throwaway
//! PostgreSQL cluster under `RELAY_PG_BIN`) and read back with rusqlite or
//! tokio-postgres, are equal to what was written, or were rejected (by the
//! transform, or by the warehouse with its reason); never altered. Each
//! round writes [`CASES_PER_TYPE`] values of every type in one transaction.

use super::cases::{of_type, Case, Expect, TYPES};
use super::json_text::{canonical, JsonText};
use super::properties::{check, config, record};
use super::timestamp::parse_rfc3339_micros;
use crate::config::LoaderConfig;
use crate::sink::{Batch, Sink, SinkError};
use crate::table::ColumnType;
use crate::transform::{transform, Loading, Row, Transformed, Value, ZeroSign};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use relay_client::time::format_rfc3339_micros;
use std::collections::HashMap;
use std::sync::Arc;

/// Values of each type per round (one warehouse transaction).
const CASES_PER_TYPE: usize = 64;
/// Rounds per warehouse.
const ROUNDS: u32 = 4;

fn column_name(column_type: ColumnType) -> String {
    format!("c_{}", column_type.postgres().replace(' ', "_"))
}

fn loader_config(warehouse: &str) -> LoaderConfig {
    let columns: Vec<_> = TYPES
        .iter()
        .map(|t| (column_name(*t), *t, format!("/{}", column_name(*t))))
        .collect();
    config(warehouse, &columns)
}

fn rounds() -> impl Strategy<Value = Vec<Case>> {
    let per_type: Vec<_> = TYPES
        .iter()
        .map(|t| prop::collection::vec(of_type(*t, true), CASES_PER_TYPE))
        .collect();
    per_type.prop_map(|cases| cases.into_iter().flatten().collect())
}

/// The rows of `cases` (id `r<index>`) that the transform takes; the
/// others checked as rejects.
fn rows(loading: &Loading, cases: &[Case]) -> Result<Vec<(usize, Row)>, TestCaseError> {
    let mut rows = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let line = format!(
            "{{\"id\":\"r{index}\",\"{}\":{}}}",
            column_name(case.column_type),
            case.written
        );
        match transform(loading, &record(index as i64, line).view()) {
            Transformed::Row(row) => rows.push((index, row)),
            Transformed::Reject(reject) => check(case, loading.zero_sign, Err(&reject.error))?,
            Transformed::Skipped(why) => return Err(TestCaseError::fail(format!("skipped: {why:?}"))),
        }
    }
    Ok(rows)
}

/// Writes `rows` in one batch; rows the warehouse refuses are found one by
/// one with probes, as the loader isolates them, and checked against the
/// reasons `refusable` accepts. Returns the indexes written.
async fn write(
    sink: &mut Sink,
    cases: &[Case],
    rows: Vec<(usize, Row)>,
    refusable: impl Fn(&Case, &str) -> bool,
) -> Result<Vec<usize>, TestCaseError> {
    let batch = |rows: &[(usize, Row)]| {
        Arc::new(Batch {
            rows: rows.iter().map(|(_, row)| row.clone()).collect(),
            ..Batch::default()
        })
    };
    let mut kept = rows;
    match sink.write("values", &batch(&kept)).await {
        Ok(()) => return Ok(kept.iter().map(|(index, _)| *index).collect()),
        Err(SinkError::Refused(_)) => {}
        Err(other) => return Err(TestCaseError::fail(format!("write: {other}"))),
    }
    let mut accepted = Vec::new();
    for (index, row) in kept.drain(..) {
        match sink.probe(vec![row.clone()]).await {
            Ok(()) => accepted.push((index, row)),
            Err(SinkError::Refused(reason)) => {
                let case = &cases[index];
                prop_assert!(refusable(case, &reason), "{}: refused: {reason}", case.written);
            }
            Err(other) => return Err(TestCaseError::fail(format!("probe: {other}"))),
        }
    }
    sink.write("values", &batch(&accepted))
        .await
        .map_err(|e| TestCaseError::fail(format!("write after isolation: {e}")))?;
    Ok(accepted.iter().map(|(index, _)| *index).collect())
}

/// Checks each written case's read-back value (by id).
fn compare(
    cases: &[Case],
    zero_sign: ZeroSign,
    written: &[usize],
    read: &HashMap<String, Value>,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(read.len(), written.len(), "rows read back");
    for index in written {
        let case = &cases[*index];
        let value = read
            .get(&format!("r{index}"))
            .ok_or_else(|| TestCaseError::fail(format!("r{index} not read back")))?;
        check(case, zero_sign, Ok(value))?;
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A column of `column_type` read back from SQLite, as the cell it stores.
fn from_sqlite(column_type: ColumnType, value: rusqlite::types::Value) -> Value {
    use rusqlite::types::Value as Sql;
    match (column_type, value) {
        (_, Sql::Null) => Value::Null,
        (ColumnType::Bigint, Sql::Integer(n)) => Value::BigInt(n),
        (ColumnType::Boolean, Sql::Integer(n)) if n == 0 || n == 1 => Value::Bool(n == 1),
        (ColumnType::Double, Sql::Real(f)) => Value::Double(f),
        (ColumnType::Text, Sql::Text(s)) => Value::Text(s),
        (ColumnType::Json, Sql::Text(s)) => Value::Json(JsonText(s)),
        (ColumnType::Uuid, Sql::Text(s)) if s == s.to_lowercase() => {
            uuid::Uuid::parse_str(&s).map_or(Value::Text(s), Value::Uuid)
        }
        // Stored in the one form the sink writes.
        (ColumnType::Timestamptz, Sql::Text(s)) => match parse_rfc3339_micros(&s) {
            Ok(micros) if format_rfc3339_micros(micros) == s => Value::Timestamp(micros),
            _ => Value::Text(s),
        },
        (_, other) => Value::Text(format!("stored as {other:?}")),
    }
}

#[test]
fn values_round_trip_through_sqlite_equal_or_rejected() {
    let runtime = runtime();
    let mut runner = TestRunner::new(Config::with_cases(ROUNDS));
    runner
        .run(&rounds(), |cases| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("w.db");
            let config = loader_config(&format!("sqlite://{}", path.display()));
            let loading = Loading::new(&config).unwrap();
            let rows = rows(&loading, &cases)?;
            let written = runtime.block_on(async {
                let mut sink = Sink::open(&config).await.unwrap();
                // SQLite takes every value the transform does.
                write(&mut sink, &cases, rows, |_, _| false).await
            })?;
            let connection = rusqlite::Connection::open(&path).unwrap();
            let mut read = HashMap::new();
            let names: Vec<String> = TYPES.iter().map(|t| column_name(*t)).collect();
            let mut statement = connection
                .prepare(&format!("SELECT dedup_key, {} FROM v", names.join(", ")))
                .unwrap();
            let mut result = statement.query([]).unwrap();
            while let Some(row) = result.next().unwrap() {
                let id: String = row.get(0).unwrap();
                let index: usize = id[1..].parse().unwrap();
                let column = 1 + TYPES.iter().position(|t| *t == cases[index].column_type).unwrap();
                read.insert(id, from_sqlite(cases[index].column_type, row.get(column).unwrap()));
            }
            compare(&cases, loading.zero_sign, &written, &read)
        })
        .unwrap();
}

#[test]
fn values_round_trip_through_postgres_equal_or_rejected() {
    let Some(cluster) = relay_testkit::Postgres::start_with(&[("fsync", "off")]) else {
        return;
    };
    let runtime = runtime();
    let mut runner = TestRunner::new(Config::with_cases(ROUNDS));
    runner
        .run(&rounds(), |cases| {
            let config = loader_config(&cluster.url());
            let loading = Loading::new(&config).unwrap();
            let rows = rows(&loading, &cases)?;
            runtime.block_on(async {
                let client = cluster.client().await;
                client.batch_execute("DROP TABLE IF EXISTS v").await.unwrap();
                let mut sink = Sink::open(&config).await.unwrap();
                // jsonb cannot hold \u0000 (22P05); nothing else is refused.
                let refusable = |case: &Case, reason: &str| {
                    case.column_type == ColumnType::Json && case.written.contains("\\u0000") && reason.contains("22P05")
                };
                let written = write(&mut sink, &cases, rows, refusable).await?;
                let read = read_postgres(&client, &cases).await;
                compare(&cases, loading.zero_sign, &written, &read)
            })
        })
        .unwrap();
}

/// Every row of `v` read back with tokio-postgres, as the cells it stores;
/// json compared by [`canonical`] (jsonb keeps values, not layout).
async fn read_postgres(client: &tokio_postgres::Client, cases: &[Case]) -> HashMap<String, Value> {
    let rows = client
        .query(
            "SELECT dedup_key, c_text, c_bigint, c_double_precision, c_boolean,
                    (extract(epoch FROM c_timestamptz) * 1000000)::int8, c_uuid, c_jsonb::text FROM v",
            &[],
        )
        .await
        .unwrap();
    let mut read = HashMap::new();
    for row in rows {
        let id: String = row.get(0);
        let case = &cases[id[1..].parse::<usize>().unwrap()];
        let column = 1 + TYPES.iter().position(|t| *t == case.column_type).unwrap();
        let value = match case.column_type {
            ColumnType::Text => row.get::<_, Option<String>>(column).map(Value::Text),
            ColumnType::Bigint => row.get::<_, Option<i64>>(column).map(Value::BigInt),
            ColumnType::Double => row.get::<_, Option<f64>>(column).map(Value::Double),
            ColumnType::Boolean => row.get::<_, Option<bool>>(column).map(Value::Bool),
            ColumnType::Timestamptz => row.get::<_, Option<i64>>(column).map(Value::Timestamp),
            ColumnType::Uuid => row.get::<_, Option<uuid::Uuid>>(column).map(Value::Uuid),
            ColumnType::Json => row.get::<_, Option<String>>(column).map(|text| {
                // Equal by value: report the written text when it is.
                match &case.expect {
                    Expect::Json(written) if canonical(written) == canonical(&text) => {
                        Value::Json(JsonText(written.clone()))
                    }
                    _ => Value::Json(JsonText(text)),
                }
            }),
        };
        read.insert(id, value.unwrap_or(Value::Null));
    }
    read
}
