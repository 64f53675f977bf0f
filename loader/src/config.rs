//! What a loader loads and where: the `[[load]]` section of the config file
//! (or `relay load` flags).

use serde::Deserialize;
use std::time::Duration;

/// A column's warehouse type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Text,
    Bigint,
    Double,
    Boolean,
    Timestamptz,
    Uuid,
    Json,
}

impl ColumnType {
    pub fn sqlite(self) -> &'static str {
        match self {
            Self::Text | Self::Uuid | Self::Json | Self::Timestamptz => "TEXT",
            Self::Bigint | Self::Boolean => "INTEGER",
            Self::Double => "REAL",
        }
    }

    pub fn postgres(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Bigint => "bigint",
            Self::Double => "double precision",
            Self::Boolean => "boolean",
            Self::Timestamptz => "timestamptz",
            Self::Uuid => "uuid",
            Self::Json => "jsonb",
        }
    }
}

/// A column filled from the record's JSON value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub name: String,
    /// RFC 6901 JSON pointer into the event, e.g. `/player/id`.
    pub pointer: String,
    #[serde(rename = "type")]
    pub column_type: ColumnType,
    /// Whether a missing or null value is allowed (else the record is rejected).
    #[serde(default = "yes")]
    pub nullable: bool,
}

fn yes() -> bool {
    true
}

/// Columns filled from where the record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataColumn {
    Topic,
    Partition,
    Offset,
    RecordTimestamp,
    SourceFile,
    SourcePosition,
}

impl MetadataColumn {
    pub fn column_name(self) -> &'static str {
        match self {
            Self::Topic => "relay_topic",
            Self::Partition => "relay_partition",
            Self::Offset => "relay_offset",
            Self::RecordTimestamp => "relay_timestamp",
            Self::SourceFile => "relay_source_file",
            Self::SourcePosition => "relay_source_position",
        }
    }

    pub fn column_type(self) -> ColumnType {
        match self {
            Self::Topic | Self::SourceFile => ColumnType::Text,
            Self::Partition | Self::Offset | Self::SourcePosition => ColumnType::Bigint,
            Self::RecordTimestamp => ColumnType::Timestamptz,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoaderConfig {
    pub topics: Vec<String>,
    pub group: String,
    pub warehouse: String,
    pub table: String,
    pub columns: Vec<ColumnSpec>,
    pub metadata: Vec<MetadataColumn>,
    /// JSON pointer of the event's unique id; when absent in an event the
    /// sender's source position (host, file, byte), else topic/partition/offset.
    pub dedup_pointer: String,
    pub create_table: bool,
    /// A micro-batch closes at this many records…
    pub batch_records_max: usize,
    /// …or this long after its first record.
    pub batch_wait: Duration,
    pub retry_backoff_max: Duration,
}

impl LoaderConfig {
    pub fn new(topics: Vec<String>, group: &str, warehouse: &str, table: &str) -> Self {
        Self {
            topics,
            group: group.to_owned(),
            warehouse: warehouse.to_owned(),
            table: table.to_owned(),
            columns: Vec::new(),
            metadata: Vec::new(),
            dedup_pointer: "/uuid".to_owned(),
            create_table: true,
            batch_records_max: 10_000,
            batch_wait: Duration::from_millis(500),
            retry_backoff_max: Duration::from_secs(5),
        }
    }

    /// Checks names so they can be used as SQL identifiers without quoting games.
    pub fn validate(&self) -> Result<(), String> {
        let identifier = |name: &str| {
            !name.is_empty()
                && name.len() <= 63
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        };
        if !identifier(&self.table) {
            return Err(format!(
                "table name {:?} must be 1-63 characters of a-z, 0-9 and _",
                self.table
            ));
        }
        let mut names = std::collections::HashSet::new();
        for column in &self.columns {
            if !identifier(&column.name) || column.name == "dedup_key" {
                return Err(format!("column name {:?} is not allowed", column.name));
            }
            if !column.pointer.is_empty() && !column.pointer.starts_with('/') {
                return Err(format!(
                    "column {}: pointer {:?} must start with '/'",
                    column.name, column.pointer
                ));
            }
            if !names.insert(column.name.clone()) {
                return Err(format!("column {} appears twice", column.name));
            }
        }
        if self.batch_records_max == 0 {
            return Err("batch_records_max must be at least 1".into());
        }
        Ok(())
    }
}
