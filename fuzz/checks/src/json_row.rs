//! The loader's JSON-to-row mapping over arbitrary record values.

use bytes::Bytes;
use relay_client::records::ConsumerRecord;
use relay_loader::config::{ColumnSpec, ColumnType, LoaderConfig, MetadataColumn};
use relay_loader::transform::{transform, Loading, Transformed, Value};

const TYPES: [ColumnType; 7] = [
    ColumnType::Text,
    ColumnType::Bigint,
    ColumnType::Double,
    ColumnType::Boolean,
    ColumnType::Timestamptz,
    ColumnType::Uuid,
    ColumnType::Json,
];

fn config(nullable: bool) -> LoaderConfig {
    let mut config = LoaderConfig::new(vec!["t".into()], "g", "sqlite://x", "t");
    // Every type, at a top-level field and at a nested pointer.
    for (index, column_type) in TYPES.iter().enumerate() {
        for (suffix, pointer) in [("a", format!("/f{index}")), ("b", format!("/n/{index}"))] {
            config.columns.push(ColumnSpec {
                name: format!("c{index}{suffix}"),
                pointer,
                column_type: *column_type,
                nullable,
                time_format: Default::default(),
            });
        }
    }
    config.metadata = vec![
        MetadataColumn::Topic,
        MetadataColumn::Partition,
        MetadataColumn::Offset,
        MetadataColumn::RecordTimestamp,
        MetadataColumn::SourceFile,
        MetadataColumn::SourcePosition,
    ];
    config
}

fn fits(value: &Value, column_type: ColumnType, nullable: bool) -> bool {
    matches!(
        (value, column_type),
        (Value::Null, _) if nullable
    ) || matches!(
        (value, column_type),
        (Value::Text(_), ColumnType::Text)
            | (Value::BigInt(_), ColumnType::Bigint)
            | (Value::Double(_), ColumnType::Double)
            | (Value::Bool(_), ColumnType::Boolean)
            | (Value::Timestamp(_), ColumnType::Timestamptz)
            | (Value::Uuid(_), ColumnType::Uuid)
            | (Value::Json(_), ColumnType::Json)
    )
}

/// The first byte chooses nullable columns and headers; the rest is the value.
pub fn json_row(data: &[u8]) {
    let Some((&flags, value)) = data.split_first() else {
        return;
    };
    let nullable = flags & 1 == 1;
    let config = config(nullable);
    let headers = if flags & 2 == 2 {
        vec![
            ("source_host".to_owned(), Some(Bytes::from_static(b"h"))),
            ("source_file".to_owned(), Some(Bytes::copy_from_slice(value))),
            (
                "source_position".to_owned(),
                Some(Bytes::copy_from_slice(&value[..value.len().min(8)])),
            ),
        ]
    } else {
        Vec::new()
    };
    let record = ConsumerRecord {
        topic: "t".into(),
        partition: 3,
        offset: 42,
        timestamp_ms: i64::from(flags) * 1_000_000_000,
        key: None,
        value: Some(Bytes::copy_from_slice(value)),
        headers,
        undecodable: None,
    };
    let loading = Loading::new(&config).expect("the fuzz config is valid");
    match transform(&loading, &record.view()) {
        Transformed::Row(row) => {
            assert_eq!(row.values.len(), config.columns.len() + config.metadata.len());
            for (column, value) in config.columns.iter().zip(&row.values) {
                assert!(
                    fits(value, column.column_type, column.nullable),
                    "{:?} in a {:?} column",
                    value,
                    column.column_type
                );
            }
            assert!(!row.dedup_key.is_empty(), "every row has a dedup key");
        }
        Transformed::Skipped(why) => panic!("a default table skips nothing: {why:?}"),
        Transformed::Reject(reject) => {
            assert_eq!(reject.table, "t", "a reject names its table");
            assert_eq!(reject.raw, value, "a reject keeps the record's bytes");
            assert_eq!((reject.partition, reject.offset), (3, 42));
            assert!(!reject.error.is_empty(), "a reject says why");
        }
    }
}
