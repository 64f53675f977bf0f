//! One target table's shape, below both the configuration and the routes
//! (both import it, it imports neither): its columns (a JSON pointer and a
//! warehouse type each), its metadata columns, its dedup key and whether
//! the loader creates it.

use serde::Deserialize;

const DEDUP_KEY_DEFAULT: &str = "/uuid";

/// One target table: its columns and how its rows are keyed and created.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    pub table: String,
    pub columns: Vec<ColumnSpec>,
    pub metadata: Vec<MetadataColumn>,
    pub dedup_key: String,
    pub create_table: bool,
}

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
    /// How a `timestamptz` column's text is read (default RFC 3339; a number
    /// is milliseconds since the epoch).
    #[serde(default)]
    pub time_format: TimeFormat,
}

/// How a timestamp is written in the event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// `2026-01-01T00:00:00Z` (and a number: milliseconds since the epoch).
    #[default]
    Rfc3339,
    /// Common Log Format, as nginx and Apache write it: `10/Oct/2000:13:55:36 -0700`.
    Clf,
    /// Seconds since the epoch, as a number or text.
    EpochSeconds,
    /// Milliseconds since the epoch, as a number or text.
    EpochMillis,
}

pub(crate) fn yes() -> bool {
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

/// A table's columns as configured; a table configured without columns
/// keeps the whole event in a JSON column `event`, as `relay load` from
/// flags alone does (with its metadata columns when none are configured
/// either): a table of dedup keys alone would throw every event's body away.
pub(crate) fn whole_event_columns(
    columns: &[ColumnSpec],
    metadata: &[MetadataColumn],
) -> (Vec<ColumnSpec>, Vec<MetadataColumn>) {
    if !columns.is_empty() {
        return (columns.to_vec(), metadata.to_vec());
    }
    let event = ColumnSpec {
        name: WHOLE_EVENT_COLUMN.into(),
        pointer: String::new(),
        column_type: ColumnType::Json,
        nullable: false,
        time_format: TimeFormat::default(),
    };
    let metadata = if metadata.is_empty() {
        vec![
            MetadataColumn::Topic,
            MetadataColumn::Partition,
            MetadataColumn::Offset,
            MetadataColumn::RecordTimestamp,
        ]
    } else {
        metadata.to_vec()
    };
    (vec![event], metadata)
}

/// The JSON column holding the whole event of a table without columns.
pub const WHOLE_EVENT_COLUMN: &str = "event";

pub(crate) fn dedup_key_default() -> String {
    DEDUP_KEY_DEFAULT.to_owned()
}
