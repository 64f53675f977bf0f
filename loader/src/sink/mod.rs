//! The warehouse side: one transaction per micro-batch holding the rows
//! (duplicates by `dedup_key` ignored), the rejects, and the next offset of
//! every partition in the batch, advanced with a compare-and-set on the
//! previous value. A loader that lost its partitions finds the offset moved,
//! gets [`SinkError::Fenced`], and its transaction rolls back.
//!
//! A warehouse error is either an outage ([`SinkError::Unavailable`]: try
//! the same batch again) or about the data ([`SinkError::Refused`]: the
//! loader isolates the rows at fault with [`Sink::probe`] and rejects them);
//! a table that does not fit the configuration is [`SinkError::Setup`].
//!
//! Tables (`proto-spec/LOADER.md`): each target table (the default and one
//! per route; a batch's rows of every table, its rejects and its offsets go
//! in one transaction) with a unique index on `dedup_key`; `relay_offsets(group_id, topic, partition, next_offset,
//! updated_at)`; `relay_rejects(target_table, group_id, topic, partition,
//! offset, raw, error, rejected_at)`, unique per (table, topic, partition,
//! offset) so a replay never doubles a reject; `relay_gaps(group_id, topic,
//! partition, first_offset, last_offset, records, detected_at,
//! acknowledged_at)`, records lost (to retention, a corrupt batch the broker
//! set aside, a position reset past them), unique per (group, topic,
//! partition, first offset).

pub mod postgres;
pub mod schema;
pub mod sqlite;
mod sqlite_file;

use crate::config::LoaderConfig;
use crate::table::TableSpec;
use crate::transform::{Reject, Row};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAdvance {
    pub topic: String,
    pub partition: i32,
    /// The offset this loader believes is stored (`None`: no row yet).
    pub previous: Option<i64>,
    pub next: i64,
}

impl OffsetAdvance {
    /// The compare-and-set's answer: `rows` moved is one, else another
    /// loader moved this partition's offset first and this one is fenced.
    pub fn applied(&self, rows: u64) -> Result<()> {
        if rows == 1 {
            return Ok(());
        }
        Err(SinkError::Fenced {
            topic: self.topic.clone(),
            partition: self.partition,
            expected: self.previous,
        })
    }
}

/// Records a loader needed and will never load: `first..=last`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub topic: String,
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub cause: GapCause,
}

/// Why a gap's records are not loaded (for the log; relay_gaps counts them all alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapCause {
    /// Retention deleted them before they were loaded.
    Retention,
    /// The broker serves no batch for them though its log starts before
    /// them: it set a corrupt batch aside (a quarantine file).
    NotServed,
    /// The broker still holds them, but the consumer's position jumped past
    /// them (an out-of-range reset to the end, `from = "latest"`).
    Skipped,
}

impl GapCause {
    /// What the loader's ERROR line says about the gap.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Retention => "records deleted by the broker (retention) before they were loaded; recorded in relay_gaps (protect the group in the topic's retention, see docs/operations.md)",
            Self::NotServed => "records the broker no longer serves (a corrupt batch it set aside, see its quarantine files); recorded in relay_gaps",
            Self::Skipped => "records the loader's position jumped past (an out-of-range reset to the end); recorded in relay_gaps",
        }
    }
}

impl Gap {
    pub fn records(&self) -> i64 {
        self.last_offset - self.first_offset + 1
    }
}

#[derive(Debug, Default)]
pub struct Batch {
    pub rows: Vec<Row>,
    pub rejects: Vec<Reject>,
    /// Recorded in relay_gaps in the same transaction as the offset jump.
    pub gaps: Vec<Gap>,
    pub offsets: Vec<OffsetAdvance>,
    /// How many of `rows` the last committed write inserted: the others
    /// were in their tables already (same dedup key). Set by the sink.
    pub inserted: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("offset of {topic}/{partition} moved (expected {expected:?}): another loader owns the partition now")]
    Fenced {
        topic: String,
        partition: i32,
        expected: Option<i64>,
    },
    /// The warehouse is down or busy (connection lost, `08`/`53`/`57P`
    /// classes, serialization failures, SQLite BUSY/IOERR/FULL): the same
    /// batch is tried again.
    #[error("warehouse unavailable: {0}")]
    Unavailable(String),
    /// The warehouse refused the data of a row (`22`/`23` classes, a value
    /// too large for an index, SQLite CONSTRAINT/MISMATCH/TOOBIG): the rows
    /// at fault go to relay_rejects and the rest load.
    #[error("warehouse refused a row: {0}")]
    Refused(String),
    #[error("warehouse setup: {0}")]
    Setup(String),
    /// The warehouse file the loader opened was deleted or replaced: the
    /// loader stops before committing into it (a file no reader sees).
    #[error("warehouse file gone: {0}")]
    Vanished(String),
}

pub type Result<T, E = SinkError> = std::result::Result<T, E>;

/// (topic, partition) → next offset stored in the warehouse.
pub type StoredOffsets = HashMap<(String, i32), i64>;

pub enum Sink {
    Sqlite(sqlite::SqliteSink),
    Postgres(Box<postgres::PostgresSink>),
}

impl Sink {
    /// Opens the warehouse named by `sqlite://PATH` or `postgres://...`.
    pub async fn open(config: &LoaderConfig) -> Result<Self> {
        let url = config.warehouse.as_str();
        if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(Self::Sqlite(sqlite::SqliteSink::open(path, config).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(Box::new(
                postgres::PostgresSink::open(url, config).await?,
            )))
        } else {
            Err(SinkError::Setup(format!(
                "warehouse URL {url:?} must start with sqlite:// or postgres://"
            )))
        }
    }

    pub async fn offsets(&mut self, group: &str) -> Result<StoredOffsets> {
        match self {
            Self::Sqlite(sink) => sink.offsets(group).await,
            Self::Postgres(sink) => sink.offsets(group).await,
        }
    }

    pub async fn write(&mut self, group: &str, batch: &std::sync::Arc<Batch>) -> Result<()> {
        match self {
            Self::Sqlite(sink) => sink.write(group, batch).await,
            Self::Postgres(sink) => sink.write(group, batch).await,
        }
    }

    /// Unacknowledged relay_gaps rows of `group`, per (topic, partition).
    pub async fn open_gaps(&mut self, group: &str) -> Result<StoredOffsets> {
        match self {
            Self::Sqlite(sink) => sink.open_gaps(group).await,
            Self::Postgres(sink) => sink.open_gaps(group).await,
        }
    }

    /// Writes `rows` into their tables in a transaction that is always
    /// rolled back: whether the warehouse would take them, and why not.
    pub async fn probe(&mut self, rows: Vec<Row>) -> Result<()> {
        match self {
            Self::Sqlite(sink) => sink.probe(rows).await,
            Self::Postgres(sink) => sink.probe(rows).await,
        }
    }
}

/// The column list of a table, in row order, with `dedup_key` last.
pub fn column_names(config: &TableSpec) -> Vec<String> {
    config
        .columns
        .iter()
        .map(|c| c.name.clone())
        .chain(config.metadata.iter().map(|m| m.column_name().to_owned()))
        .chain(std::iter::once("dedup_key".to_owned()))
        .collect()
}

/// (name, type) of every row column of a table, `dedup_key` excluded.
pub fn column_types(config: &TableSpec) -> Vec<(String, crate::table::ColumnType)> {
    config
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.column_type))
        .chain(
            config
                .metadata
                .iter()
                .map(|m| (m.column_name().to_owned(), m.column_type())),
        )
        .collect()
}
