//! A record into a row of its table: its value is read as an event
//! ([`crate::format`], [`crate::event`]: never built into a tree), the
//! routes pick the table ([`crate::route`]), and each of that table's
//! columns is read by JSON pointer (placed once per loader in the event's
//! [`PointerSet`]) and checked against its type. A cell is the value exactly as written or nothing
//! ([`crate::values`]): numbers, json and non-string text are taken from the
//! event's own text, never through a double or a re-serialisation. A record
//! that does not parse, or a value that does not fit its column as it is,
//! becomes a reject naming the table it was meant for; an event no route
//! takes is skipped by rule (counted). Nothing here stops the loader.

use crate::config::LoaderConfig;
use crate::event::{Event, Found, Leaf, Source};
use crate::format::{parse_clf_time, Parser};
use crate::route::{Routed, Router};
use crate::scan::{Place, PointerSet};
use crate::source;
use crate::table::{ColumnSpec, ColumnType, MetadataColumn, TableSpec, TimeFormat};
use crate::values::decimal::exact_double;
use crate::values::json_text::JsonText;
use crate::values::timestamp::parse_rfc3339_micros;
use relay_client::records::RecordView;

/// A typed cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    BigInt(i64),
    Double(f64),
    Bool(bool),
    /// Microseconds since the Unix epoch.
    Timestamp(i64),
    Uuid(uuid::Uuid),
    /// The value's JSON text exactly as the event wrote it.
    Json(JsonText),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The row's table: an index of [`Router::tables`].
    pub table: usize,
    /// Configured columns, then metadata columns, in config order.
    pub values: Vec<Value>,
    pub dedup_key: String,
}

/// Why a record was not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The table the record was meant for.
    pub table: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub raw: Vec<u8>,
    pub error: String,
    /// The line's source identity when a Relay sender produced it: a line
    /// sent twice (after a sender's kill -9) is one reject, as it is one row.
    pub source: Option<String>,
}

/// Timestamps between years 1 and 9999, as both warehouses accept.
const TIMESTAMP_MICROS_MIN: i64 = -62_135_596_800_000_000;
const TIMESTAMP_MICROS_MAX: i64 = 253_402_300_799_999_999;

fn wrong(name: &str, source: &Source<'_>, expected: &str) -> String {
    format!("{name}: {} is not {expected}", source.json())
}

/// `spec`'s cell of `event`.
fn cell(spec: &ColumnSpec, place: Place, event: &Event<'_>, zero_sign: ZeroSign) -> Result<Value, String> {
    let Some(Found { leaf, source }) = event.find_at_place(&spec.pointer, place) else {
        return if spec.nullable {
            Ok(Value::Null)
        } else {
            Err(format!("{}: missing value at {}", spec.name, spec.pointer))
        };
    };
    let name = &spec.name;
    match spec.column_type {
        ColumnType::Text => match leaf {
            Leaf::Str(text) if text.contains('\0') => Err(format!(
                "{name}: text contains a NUL character, which a text column cannot hold"
            )),
            Leaf::Str(text) => Ok(Value::Text(text.into_owned())),
            _ => Ok(Value::Text(source.json())),
        },
        ColumnType::Bigint => integer(&leaf)
            .map(Value::BigInt)
            .ok_or_else(|| wrong(name, &source, "a 64-bit integer")),
        ColumnType::Double => double(name, &leaf, &source, zero_sign).map(Value::Double),
        ColumnType::Boolean => match leaf {
            Leaf::Bool(b) => Ok(Value::Bool(b)),
            _ => Err(wrong(name, &source, "true or false")),
        },
        ColumnType::Timestamptz => timestamp(spec, &leaf, &source).map(Value::Timestamp),
        ColumnType::Uuid => match &leaf {
            Leaf::Str(s) => uuid::Uuid::parse_str(s).ok(),
            _ => None,
        }
        .map(Value::Uuid)
        .ok_or_else(|| wrong(name, &source, "a UUID")),
        ColumnType::Json => Ok(Value::Json(JsonText(source.json()))),
    }
}

/// A 64-bit integer written as one, or as text holding one.
fn integer(leaf: &Leaf<'_>) -> Option<i64> {
    match leaf {
        Leaf::Number(n) => n.as_i64(),
        Leaf::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A double column's cell: the number as written, if a double holds it.
fn double(name: &str, leaf: &Leaf<'_>, source: &Source<'_>, zero_sign: ZeroSign) -> Result<f64, String> {
    let number = match leaf {
        Leaf::Number(_) => source.json(),
        Leaf::Str(s) => s.trim().to_owned(),
        _ => return Err(wrong(name, source, "a number")),
    };
    match exact_double(&number) {
        Ok(double) if double == 0.0 && double.is_sign_negative() && zero_sign == ZeroSign::Lost => Err(format!(
            "{name}: {number} is -0.0, which SQLite's REAL stores as 0 (no sign of zero); \
             load it into a text or json column to keep the sign"
        )),
        Ok(double) => Ok(double),
        Err(why) => Err(format!("{name}: {why}")),
    }
}

/// Microseconds since the epoch of a `timestamptz` cell, by its time format.
fn timestamp(spec: &ColumnSpec, leaf: &Leaf<'_>, source: &Source<'_>) -> Result<i64, String> {
    let name = &spec.name;
    let wrong = |expected: &str| wrong(name, source, expected);
    let epoch = |scale: i64| {
        integer(leaf)
            .and_then(|n| n.checked_mul(scale))
            .ok_or_else(|| wrong("a timestamp"))
    };
    let micros = match (spec.time_format, leaf) {
        (TimeFormat::EpochSeconds, _) => epoch(1_000_000)?,
        (TimeFormat::EpochMillis, _) => epoch(1_000)?,
        (TimeFormat::Clf, Leaf::Str(s)) => parse_clf_time(s).map_err(|e| format!("{name}: {e}"))?,
        (TimeFormat::Clf, _) => return Err(wrong("a Common Log Format time")),
        (TimeFormat::Rfc3339, Leaf::Str(s)) => parse_rfc3339_micros(s).map_err(|e| format!("{name}: {e}"))?,
        // Numbers are milliseconds since the epoch.
        (TimeFormat::Rfc3339, Leaf::Number(_)) => epoch(1_000)?,
        (TimeFormat::Rfc3339, _) => return Err(wrong("a timestamp")),
    };
    if !(TIMESTAMP_MICROS_MIN..=TIMESTAMP_MICROS_MAX).contains(&micros) {
        return Err(wrong("a timestamp between years 1 and 9999"));
    }
    Ok(micros)
}

/// Kafka's record timestamp for "none" (`RecordBatch.NO_TIMESTAMP`).
const RECORD_TIMESTAMP_NONE: i64 = -1;

/// A metadata cell of `record`, or why its column cannot hold it as it is.
fn metadata(column: MetadataColumn, record: &RecordView<'_>) -> Result<Value, String> {
    let name = column.column_name();
    Ok(match column {
        MetadataColumn::Topic => Value::Text(record.topic.to_owned()),
        MetadataColumn::Partition => Value::BigInt(i64::from(record.partition)),
        MetadataColumn::Offset => Value::BigInt(record.offset),
        MetadataColumn::RecordTimestamp if record.timestamp_ms == RECORD_TIMESTAMP_NONE => Value::Null,
        MetadataColumn::RecordTimestamp => record
            .timestamp_ms
            .checked_mul(1000)
            .filter(|micros| (TIMESTAMP_MICROS_MIN..=TIMESTAMP_MICROS_MAX).contains(micros))
            .map(Value::Timestamp)
            .ok_or_else(|| {
                format!(
                    "{name}: record timestamp {} ms is not between years 1 and 9999",
                    record.timestamp_ms
                )
            })?,
        // A file name is bytes; a text column holds only UTF-8.
        MetadataColumn::SourceFile => {
            let file = source::file(record).map_err(|error| format!("{name}: {error}"))?;
            match file.as_deref().map(std::str::from_utf8) {
                None => Value::Null,
                Some(Ok(text)) if !text.contains('\0') => Value::Text(text.to_owned()),
                Some(_) => {
                    return Err(format!(
                        "{name}: the file name {:?} is not UTF-8 text without NUL, which a text column cannot hold",
                        String::from_utf8_lossy(file.as_deref().unwrap_or_default())
                    ))
                }
            }
        }
        MetadataColumn::SourcePosition => source::position(record)
            .map_err(|error| format!("{name}: {error}"))?
            .map_or(Value::Null, Value::BigInt),
    })
}

/// The reject of `record` meant for `table`: its coordinates, its bytes, and why.
pub fn reject_of(record: &RecordView<'_>, table: &str, error: String) -> Reject {
    Reject {
        table: table.to_owned(),
        topic: record.topic.to_owned(),
        partition: record.partition,
        offset: record.offset,
        raw: record.value.unwrap_or_default().to_vec(),
        error,
        source: source::identity(record),
    }
}

/// How one loader turns records into rows: its parser and its routes.
#[derive(Debug, Clone)]
pub struct Loading {
    pub parser: Parser,
    pub router: Router,
    /// Which warehouse the cells are for: SQLite's REAL keeps no sign of zero.
    pub zero_sign: ZeroSign,
    /// Every pointer the routes and tables read, found in one scan of an event.
    pub pointers: PointerSet,
    /// Per table: where its columns' and dedup key's pointers are in `pointers`.
    places: Vec<TablePlaces>,
}

/// Where one table's pointers are in a [`PointerSet`].
#[derive(Debug, Clone)]
struct TablePlaces {
    columns: Vec<Place>,
    dedup_key: Place,
}

impl TablePlaces {
    fn of(tables: &[TableSpec], pointers: &PointerSet) -> Vec<TablePlaces> {
        let places = |table: &TableSpec| TablePlaces {
            columns: table.columns.iter().map(|c| pointers.node_of(&c.pointer)).collect(),
            dedup_key: pointers.node_of(&table.dedup_key),
        };
        tables.iter().map(places).collect()
    }
}

/// Whether the warehouse keeps `-0.0` apart from `0.0` in a double column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroSign {
    /// PostgreSQL's `double precision` (IEEE 754 as is).
    Kept,
    /// SQLite stores a whole REAL as an integer, and `-0.0` comes back `0.0`.
    Lost,
}

impl Loading {
    pub fn new(config: &LoaderConfig) -> Result<Loading, String> {
        let router = config.router();
        let pointers = PointerSet::new(router.pointers());
        Ok(Loading {
            parser: config.parser()?,
            places: TablePlaces::of(router.tables(), &pointers),
            pointers,
            router,
            zero_sign: if config.warehouse.starts_with("sqlite:") {
                ZeroSign::Lost
            } else {
                ZeroSign::Kept
            },
        })
    }

    pub fn tables(&self) -> &[TableSpec] {
        self.router.tables()
    }
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Transformed {
    Row(Row),
    Reject(Reject),
    /// No route took the event (and there is no default table), or its
    /// table is not the one being loaded (`only_table`): skipped by rule.
    Skipped(Routed),
}

/// The row of `record` in its table, its reject, or why it is skipped.
pub fn transform(loading: &Loading, record: &RecordView<'_>) -> Transformed {
    let unparsed = |error: String| Transformed::Reject(reject_of(record, loading.router.table_for_unparsed(), error));
    if let Some(why) = record.undecodable {
        return unparsed(why.to_owned());
    }
    let Some(bytes) = record.value else {
        return unparsed("the record has no value".into());
    };
    let event = match loading.parser.read(bytes, &loading.pointers) {
        Ok(event) => event,
        Err(error) => return unparsed(error),
    };
    let routed = loading
        .router
        .route_by(|condition| condition.matches_found(event.value(&condition.pointer).as_ref()));
    let index = match routed {
        Routed::Table(index) => index,
        skipped => return Transformed::Skipped(skipped),
    };
    let spec = &loading.router.tables()[index];
    match row(spec, &loading.places[index], index, &event, loading.zero_sign, record) {
        Ok(row) => Transformed::Row(row),
        Err(error) => Transformed::Reject(reject_of(record, &spec.table, error)),
    }
}

/// `event` as a row of `spec` (table `index`).
fn row(
    spec: &TableSpec,
    places: &TablePlaces,
    index: usize,
    event: &Event<'_>,
    zero_sign: ZeroSign,
    record: &RecordView<'_>,
) -> Result<Row, String> {
    let mut values = Vec::with_capacity(spec.columns.len() + spec.metadata.len());
    for (column, place) in spec.columns.iter().zip(&places.columns) {
        values.push(cell(column, *place, event, zero_sign)?);
    }
    for column in &spec.metadata {
        values.push(metadata(*column, record)?);
    }
    let dedup_key = match event.find_at_place(&spec.dedup_key, places.dedup_key) {
        Some(Found {
            leaf: Leaf::Str(id), ..
        }) if !id.is_empty() => id.into_owned(),
        // As written: serde_json reads numbers past 64 bits as doubles,
        // and two ids must not become one key.
        Some(Found {
            leaf: Leaf::Number(_),
            source,
        }) => source.json(),
        _ => source_key(record),
    };
    Ok(Row {
        table: index,
        values,
        dedup_key,
    })
}

/// The dedup key of an event without an id: its line's source identity, the
/// same for every copy of the line whatever the file was called. Records of
/// senders before file ids carry the path instead (stable only while the file
/// keeps its name); records from other producers fall back to their offset.
fn source_key(record: &RecordView<'_>) -> String {
    source::identity(record).unwrap_or_else(|| format!("{}/{}/{}", record.topic, record.partition, record.offset))
}

#[cfg(test)]
#[path = "transform_tests.rs"]
mod tests;
