//! A record into a row: its value is parsed as JSON and each configured
//! column is read by JSON pointer and checked against its type. A record
//! that is not a JSON object, or a value that does not fit its column,
//! becomes a reject with the reason; it never stops the loader.

use crate::config::{ColumnSpec, ColumnType, LoaderConfig, MetadataColumn};
use relay_client::records::ConsumerRecord;
use relay_client::time::parse_rfc3339_ms;
use relay_proto::source_headers::{HEADER_FILE, HEADER_FILE_ID, HEADER_HOST, HEADER_POSITION};

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
    Json(serde_json::Value),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Configured columns, then metadata columns, in config order.
    pub values: Vec<Value>,
    pub dedup_key: String,
}

/// Why a record was not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub raw: Vec<u8>,
    pub error: String,
}

fn header<'a>(record: &'a ConsumerRecord, name: &str) -> Option<&'a [u8]> {
    record
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.as_deref())
}

/// Timestamps between years 1 and 9999, as both warehouses accept.
const TIMESTAMP_MICROS_MIN: i64 = -62_135_596_800_000_000;
const TIMESTAMP_MICROS_MAX: i64 = 253_402_300_799_999_999;

fn cell(spec: &ColumnSpec, value: Option<&serde_json::Value>) -> Result<Value, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return if spec.nullable {
            Ok(Value::Null)
        } else {
            Err(format!("{}: missing value at {}", spec.name, spec.pointer))
        };
    };
    let wrong = |expected: &str| format!("{}: {} is not {expected}", spec.name, value);
    match spec.column_type {
        ColumnType::Text => match value {
            serde_json::Value::String(text) if text.contains('\0') => {
                Err(format!("{}: text contains a NUL character", spec.name))
            }
            serde_json::Value::String(text) => Ok(Value::Text(text.clone())),
            other => Ok(Value::Text(other.to_string())),
        },
        ColumnType::Bigint => match value {
            serde_json::Value::Number(n) => n.as_i64().map(Value::BigInt).ok_or_else(|| wrong("a 64-bit integer")),
            serde_json::Value::String(s) => s
                .trim()
                .parse()
                .map(Value::BigInt)
                .map_err(|_| wrong("a 64-bit integer")),
            _ => Err(wrong("a 64-bit integer")),
        },
        ColumnType::Double => match value {
            serde_json::Value::Number(n) => n.as_f64().map(Value::Double).ok_or_else(|| wrong("a number")),
            serde_json::Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Value::Double)
                .ok_or_else(|| wrong("a number")),
            _ => Err(wrong("a number")),
        },
        ColumnType::Boolean => value.as_bool().map(Value::Bool).ok_or_else(|| wrong("true or false")),
        ColumnType::Timestamptz => {
            let micros = match value {
                serde_json::Value::String(s) => parse_rfc3339_ms(s)
                    .map(|ms| ms * 1000)
                    .map_err(|e| format!("{}: {e}", spec.name))?,
                // Numbers are milliseconds since the epoch.
                serde_json::Value::Number(n) => n
                    .as_i64()
                    .and_then(|ms| ms.checked_mul(1000))
                    .ok_or_else(|| wrong("a timestamp"))?,
                _ => return Err(wrong("a timestamp")),
            };
            if !(TIMESTAMP_MICROS_MIN..=TIMESTAMP_MICROS_MAX).contains(&micros) {
                return Err(wrong("a timestamp between years 1 and 9999"));
            }
            Ok(Value::Timestamp(micros))
        }
        ColumnType::Uuid => value
            .as_str()
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .map(Value::Uuid)
            .ok_or_else(|| wrong("a UUID")),
        ColumnType::Json => Ok(Value::Json(value.clone())),
    }
}

fn metadata(column: MetadataColumn, record: &ConsumerRecord) -> Value {
    match column {
        MetadataColumn::Topic => Value::Text(record.topic.clone()),
        MetadataColumn::Partition => Value::BigInt(i64::from(record.partition)),
        MetadataColumn::Offset => Value::BigInt(record.offset),
        MetadataColumn::RecordTimestamp => Value::Timestamp(record.timestamp_ms.saturating_mul(1000)),
        MetadataColumn::SourceFile => {
            header(record, HEADER_FILE).map_or(Value::Null, |f| Value::Text(String::from_utf8_lossy(f).into_owned()))
        }
        MetadataColumn::SourcePosition => header(record, HEADER_POSITION)
            .and_then(|p| std::str::from_utf8(p).ok()?.parse().ok())
            .map_or(Value::Null, Value::BigInt),
    }
}

/// The reject of `record`: its coordinates, its bytes, and why.
pub fn reject_of(record: &ConsumerRecord, error: String) -> Reject {
    Reject {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        raw: record.value.as_deref().unwrap_or_default().to_vec(),
        error,
    }
}

/// The row of `record`, or why it cannot be loaded.
pub fn transform(config: &LoaderConfig, record: &ConsumerRecord) -> Result<Row, Reject> {
    let reject = |error: String| reject_of(record, error);
    if let Some(why) = &record.undecodable {
        return Err(reject(why.clone()));
    }
    let bytes = record
        .value
        .as_deref()
        .ok_or_else(|| reject("the record has no value".into()))?;
    let event: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| reject(format!("not JSON: {e}")))?;
    if !event.is_object() {
        return Err(reject("not a JSON object".into()));
    }
    let mut values = Vec::with_capacity(config.columns.len() + config.metadata.len());
    for spec in &config.columns {
        values.push(cell(spec, event.pointer(&spec.pointer)).map_err(reject)?);
    }
    values.extend(config.metadata.iter().map(|m| metadata(*m, record)));
    let dedup_key = match event.pointer(&config.dedup_key) {
        Some(serde_json::Value::String(id)) if !id.is_empty() => id.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => source_key(record),
    };
    Ok(Row { values, dedup_key })
}

/// The dedup key of an event without an id: its line's source identity, the
/// same for every copy of the line whatever the file was called. Records of
/// senders before file ids carry the path instead (stable only while the file
/// keeps its name); records from other producers fall back to their offset.
fn source_key(record: &ConsumerRecord) -> String {
    let text = |name| header(record, name).map(String::from_utf8_lossy);
    match (
        text(HEADER_HOST),
        text(HEADER_FILE_ID).filter(|id| !id.is_empty()),
        text(HEADER_FILE),
        text(HEADER_POSITION),
    ) {
        (Some(host), Some(file_id), _, Some(position)) => format!("{host}:{file_id}:{position}"),
        (Some(host), None, Some(file), Some(position)) => format!("{host}:{file}:{position}"),
        _ => format!("{}/{}/{}", record.topic, record.partition, record.offset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn config() -> LoaderConfig {
        let mut config = LoaderConfig::new(vec!["events".into()], "g", "sqlite://x", "events");
        let column = |name: &str, pointer: &str, column_type| ColumnSpec {
            name: name.into(),
            pointer: pointer.into(),
            column_type,
            nullable: true,
        };
        config.columns = vec![
            column("uuid", "/uuid", ColumnType::Uuid),
            column("player", "/player/id", ColumnType::Text),
            column("amount", "/amount", ColumnType::Bigint),
            column("score", "/score", ColumnType::Double),
            column("won", "/won", ColumnType::Boolean),
            column("at", "/at", ColumnType::Timestamptz),
            column("extra", "/extra", ColumnType::Json),
        ];
        config.metadata = vec![MetadataColumn::Offset, MetadataColumn::SourcePosition];
        config
    }

    fn record(value: &str) -> ConsumerRecord {
        ConsumerRecord {
            topic: "events".into(),
            partition: 2,
            offset: 77,
            timestamp_ms: 1_000,
            key: None,
            value: Some(Bytes::from(value.to_owned())),
            headers: vec![(HEADER_POSITION.into(), Some(Bytes::from_static(b"4096")))],
            undecodable: None,
        }
    }

    #[test]
    fn typed_columns_are_filled_and_checked() {
        let row = transform(
            &config(),
            &record(r#"{"uuid":"6f1c0a52-3c5f-4f0e-9a4e-0d5b6c7d8e9f","player":{"id":"p1"},"amount":12,"score":"2.5","won":true,"at":"2026-01-01T00:00:00Z","extra":{"a":[1]}}"#),
        )
        .unwrap();
        assert_eq!(row.dedup_key, "6f1c0a52-3c5f-4f0e-9a4e-0d5b6c7d8e9f");
        assert_eq!(row.values[1], Value::Text("p1".into()));
        assert_eq!(row.values[2], Value::BigInt(12));
        assert_eq!(row.values[3], Value::Double(2.5));
        assert_eq!(row.values[4], Value::Bool(true));
        assert_eq!(row.values[5], Value::Timestamp(1_767_225_600_000_000));
        assert_eq!(row.values[7], Value::BigInt(77));
        assert_eq!(row.values[8], Value::BigInt(4096));
    }

    #[test]
    fn events_without_an_id_are_keyed_by_file_identity_not_by_name() {
        let with_headers = |headers: &[(&str, &str)]| {
            let mut record = record(r#"{"n":1}"#);
            record.headers = headers
                .iter()
                .map(|(k, v)| (k.to_string(), Some(Bytes::from(v.to_string()))))
                .collect();
            transform(&config(), &record).unwrap().dedup_key
        };
        let id = "0123456789abcdef0123456789abcdef";
        let old_name = [
            (HEADER_HOST, "h"),
            (HEADER_FILE, "app.log"),
            (HEADER_FILE_ID, id),
            (HEADER_POSITION, "10"),
        ];
        let new_name = [
            (HEADER_HOST, "h"),
            (HEADER_FILE, "app.log.1"),
            (HEADER_FILE_ID, id),
            (HEADER_POSITION, "10"),
        ];
        assert_eq!(with_headers(&old_name), format!("h:{id}:10"));
        assert_eq!(with_headers(&old_name), with_headers(&new_name));
        let before_ids = [(HEADER_HOST, "h"), (HEADER_FILE, "app.log"), (HEADER_POSITION, "10")];
        assert_eq!(with_headers(&before_ids), "h:app.log:10");
        assert_eq!(with_headers(&[]), "events/2/77");
    }

    #[test]
    fn bad_records_become_rejects_with_reasons() {
        for (line, reason) in [
            ("not json", "not JSON"),
            ("[1,2]", "not a JSON object"),
            (r#"{"uuid":"nope"}"#, "not a UUID"),
            (r#"{"amount":"twelve"}"#, "64-bit integer"),
            (r#"{"amount":1.5}"#, "64-bit integer"),
            (r#"{"won":"yes"}"#, "true or false"),
            (r#"{"at":"yesterday"}"#, "RFC 3339"),
            (r#"{"player":{"id":"a\u0000b"}}"#, "NUL"),
        ] {
            let reject = transform(&config(), &record(line)).unwrap_err();
            assert!(reject.error.contains(reason), "{line}: {}", reject.error);
            assert_eq!((reject.partition, reject.offset), (2, 77));
            assert_eq!(reject.raw, line.as_bytes());
        }
    }

    #[test]
    fn dedup_key_falls_back_to_the_record_position() {
        let row = transform(&config(), &record(r#"{"amount":1}"#)).unwrap();
        assert_eq!(row.dedup_key, "events/2/77");
    }
}
