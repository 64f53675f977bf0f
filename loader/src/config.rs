//! What a loader loads and where: [`LoaderConfig`], the `[[load]]` section
//! of the config file (or what `relay load` flags build). Its tables' shape
//! (column types, metadata columns) lives in [`crate::table`], re-exported here.

mod backfill;

use crate::route::{RouteConfig, Router};
use crate::table::{dedup_key_default, whole_event_columns, TableSpec};
pub use crate::table::{ColumnSpec, ColumnType, MetadataColumn, TimeFormat, WHOLE_EVENT_COLUMN};
pub use backfill::check_backfill_groups;
use relay_client::consumer::StartPosition;
use relay_client::settings::parse_start_position;
use serde::Deserialize;
use std::time::Duration;

/// Default records per micro-batch: one warehouse transaction of about
/// 10,000 rows amortises its commit (one fsync) to well under 1 % of the work.
pub const BATCH_RECORDS_MAX_DEFAULT: usize = 10_000;
const BATCH_WAIT_MS_DEFAULT: u64 = 500;
/// Default bytes per micro-batch: 64 MiB of records held in memory at most
/// (a batch of large events closes before 10,000 of them pile up).
pub const BATCH_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;
const RETRY_BACKOFF_MAX_MS_DEFAULT: u64 = 5_000;

/// One loader: the `[[load]]` section of the config file as it stands
/// (serde, unknown keys refused), or what `relay load` flags build. Every
/// default is written here once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoaderConfig {
    /// The topics to load (`topic = "t"` in the file is the same as `topics = ["t"]`).
    #[serde(alias = "topic", deserialize_with = "one_or_many")]
    pub topics: Vec<String>,
    pub group: String,
    /// `sqlite:///path/file.db` or `postgres://user@host:port/db`.
    pub warehouse: String,
    /// The default table: what no route takes (empty: no default table).
    #[serde(default)]
    pub table: String,
    /// `[[load.route]]`: events matching a condition go to a table of their own.
    #[serde(default)]
    pub route: Vec<RouteConfig>,
    /// What a record's value is: json (default), text, regex.
    #[serde(default)]
    pub format: crate::format::Format,
    /// With `format = "regex"`: the pattern, whose named captures are the
    /// event's fields.
    #[serde(default)]
    pub regex: Option<String>,
    /// The pattern's name in rejects (`does not match pattern NAME`).
    #[serde(default)]
    pub pattern_name: Option<String>,
    /// Write only this table's rows (every route is still evaluated in
    /// order): a backfill of a table added later, with its own group.
    #[serde(default)]
    pub only_table: Option<String>,
    #[serde(default)]
    pub columns: Vec<ColumnSpec>,
    #[serde(default)]
    pub metadata: Vec<MetadataColumn>,
    /// JSON pointer of the event's unique id; when absent in an event the
    /// sender's source position (host, file, byte), else topic/partition/offset.
    #[serde(default = "dedup_key_default")]
    pub dedup_key: String,
    #[serde(default = "crate::table::yes")]
    pub create_table: bool,
    /// A micro-batch closes at this many records…
    #[serde(default = "batch_records_max_default")]
    pub batch_records_max: usize,
    /// …or at this many bytes of records…
    #[serde(default = "batch_bytes_max_default")]
    pub batch_bytes_max: usize,
    /// …or this long after its first record.
    #[serde(default = "batch_wait_ms_default")]
    pub batch_wait_ms: u64,
    /// …or as soon as no write is in flight: what was fetched meanwhile (up
    /// to `batch_records_max`) goes at once, so the warehouse never waits
    /// for a batch to fill; `false`: every batch waits to fill or for
    /// `batch_wait_ms`.
    #[serde(default = "crate::table::yes")]
    pub write_when_idle: bool,
    /// Longest pause between two attempts at a batch the warehouse refused.
    #[serde(default = "retry_backoff_max_ms_default")]
    pub retry_backoff_max_ms: u64,
    /// earliest (default), latest, offset:N or time:RFC3339, for partitions
    /// the warehouse holds no offset for.
    #[serde(default)]
    pub from: Option<String>,
    /// What to do when records the loader still needed were deleted by the
    /// broker (retention): record the gap in relay_gaps and go on, or stop.
    #[serde(default)]
    pub on_gap: OnGap,
    /// Stop once every partition is loaded up to its end (a one-shot
    /// backfill), instead of following the topic (`relay load --until-end`).
    #[serde(default)]
    pub until_end: bool,
    /// Log in as this user instead of `[client]`'s (`[load.login]`).
    #[serde(default)]
    pub login: Option<relay_client::settings::Login>,
}

/// What the loader does when the next offset it needs is gone from the broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnGap {
    /// Write a relay_gaps row in the batch's transaction, log ERROR, count
    /// it, and load on from the partition's start.
    #[default]
    Record,
    /// Refuse: the loader stops (exit 1) without moving the offset.
    Stop,
}

fn batch_records_max_default() -> usize {
    BATCH_RECORDS_MAX_DEFAULT
}
fn batch_bytes_max_default() -> usize {
    BATCH_BYTES_MAX_DEFAULT
}
fn batch_wait_ms_default() -> u64 {
    BATCH_WAIT_MS_DEFAULT
}
fn retry_backoff_max_ms_default() -> u64 {
    RETRY_BACKOFF_MAX_MS_DEFAULT
}

/// `"t"` or `["t", "u"]`.
fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(topic) => vec![topic],
        OneOrMany::Many(topics) => topics,
    })
}

impl LoaderConfig {
    /// A loader with every optional setting at its default (no columns).
    pub fn new(topics: Vec<String>, group: &str, warehouse: &str, table: &str) -> Self {
        Self {
            topics,
            group: group.to_owned(),
            warehouse: warehouse.to_owned(),
            table: table.to_owned(),
            route: Vec::new(),
            format: crate::format::Format::Json,
            regex: None,
            pattern_name: None,
            only_table: None,
            columns: Vec::new(),
            metadata: Vec::new(),
            dedup_key: dedup_key_default(),
            create_table: true,
            batch_records_max: BATCH_RECORDS_MAX_DEFAULT,
            batch_bytes_max: BATCH_BYTES_MAX_DEFAULT,
            batch_wait_ms: BATCH_WAIT_MS_DEFAULT,
            write_when_idle: true,
            retry_backoff_max_ms: RETRY_BACKOFF_MAX_MS_DEFAULT,
            from: None,
            on_gap: OnGap::Record,
            until_end: false,
            login: None,
        }
    }

    /// What `relay load` builds from flags alone: the whole event in one JSON
    /// column `event`, plus where each record came from.
    pub fn whole_event(topics: Vec<String>, group: &str, warehouse: &str, table: &str) -> Self {
        let mut config = Self::new(topics, group, warehouse, table);
        (config.columns, config.metadata) = whole_event_columns(&[], &[]);
        config
    }

    /// The default table (the section's own `table` and columns), if set.
    pub fn default_table(&self) -> Option<TableSpec> {
        (!self.table.is_empty()).then(|| {
            let (columns, metadata) = whole_event_columns(&self.columns, &self.metadata);
            TableSpec {
                table: self.table.clone(),
                columns,
                metadata,
                dedup_key: self.dedup_key.clone(),
                create_table: self.create_table,
            }
        })
    }

    /// Every table this loader writes: the routes' in order, then the default.
    pub fn tables(&self) -> Vec<TableSpec> {
        self.router().tables().to_vec()
    }

    /// The routes, compiled (validated by [`LoaderConfig::validate`]).
    pub fn router(&self) -> Router {
        Router::new(&self.route, self.default_table(), self.only_table.as_deref())
    }

    /// The loader's name in logs, metrics and errors: its default table, or
    /// its tables joined with `+`, with `only_table` when set.
    pub fn label(&self) -> String {
        if let Some(only) = &self.only_table {
            return only.clone();
        }
        if !self.table.is_empty() {
            return self.table.clone();
        }
        self.route
            .iter()
            .filter(|r| !r.discard)
            .map(|r| r.table.as_str())
            .collect::<Vec<_>>()
            .join("+")
    }

    /// The parser of this loader's records.
    pub fn parser(&self) -> Result<crate::format::Parser, String> {
        crate::format::Parser::new(self.format, self.regex.as_deref(), self.pattern_name.as_deref())
    }

    /// What `relay load --format text` builds from flags alone: each line
    /// in a text column `line`, plus where it came from (keyed by its source
    /// position, so a line sent twice loads once).
    pub fn text_lines(topics: Vec<String>, group: &str, warehouse: &str, table: &str) -> Self {
        let mut config = Self::new(topics, group, warehouse, table);
        config.format = crate::format::Format::Text;
        config.columns = vec![ColumnSpec {
            name: crate::format::TEXT_LINE_KEY.into(),
            pointer: format!("/{}", crate::format::TEXT_LINE_KEY),
            column_type: ColumnType::Text,
            nullable: false,
            time_format: TimeFormat::default(),
        }];
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

    /// The warehouse URL as it may be shown: without its password.
    pub fn warehouse_redacted(&self) -> String {
        redact_url(&self.warehouse)
    }

    pub fn batch_wait(&self) -> Duration {
        Duration::from_millis(self.batch_wait_ms)
    }

    pub fn retry_backoff_max(&self) -> Duration {
        Duration::from_millis(self.retry_backoff_max_ms)
    }

    /// Where partitions without a warehouse offset start.
    pub fn start_position(&self) -> Result<StartPosition, String> {
        match &self.from {
            Some(from) => {
                parse_start_position(from).map_err(|e| format!("[[load]] for table {}: from: {e}", self.label()))
            }
            None => Ok(StartPosition::Earliest),
        }
    }

    /// Checks names so they can be used as SQL identifiers without quoting
    /// games, and the rest of the section for what can never load.
    pub fn validate(&self) -> Result<(), String> {
        if self.table.is_empty() && self.route.is_empty() {
            return Err("[[load]]: no table (set table, or [[load.route]] sections with their tables)".into());
        }
        if self.table.is_empty() && (!self.columns.is_empty() || !self.metadata.is_empty()) {
            return Err(
                "[[load]]: columns without a table (the section's own columns belong to its default table)".into(),
            );
        }
        for route in &self.route {
            route.validate()?;
        }
        let tables = self.validate_tables()?;
        if tables.is_empty() {
            return Err(
                "[[load]]: no table (discard routes load nothing: add a route with a table, or a default table)".into(),
            );
        }
        if let Some(only) = &self.only_table {
            if !tables.contains(only) {
                return Err(format!(
                    "only_table = {only:?} is not one of this loader's tables ({})",
                    tables.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        self.validate_source_and_batch()
    }

    /// Each table's name and columns; the set of table names.
    fn validate_tables(&self) -> Result<std::collections::HashSet<String>, String> {
        let mut tables = std::collections::HashSet::new();
        for spec in self.tables() {
            if !is_identifier(&spec.table) || spec.table.starts_with("relay_") {
                return Err(format!(
                    "table name {:?} must be 1-63 characters of a-z, 0-9 and _, not starting with relay_",
                    spec.table
                ));
            }
            if !tables.insert(spec.table.clone()) {
                return Err(format!(
                    "table {} is the target of two routes; give one route the conditions of both (in = [...])",
                    spec.table
                ));
            }
            let mut names = std::collections::HashSet::new();
            for column in &spec.columns {
                if !is_identifier(&column.name) || column.name == "dedup_key" {
                    return Err(format!(
                        "table {}: column name {:?} is not allowed",
                        spec.table, column.name
                    ));
                }
                if !column.pointer.is_empty() && !column.pointer.starts_with('/') {
                    return Err(format!(
                        "table {}: column {}: pointer {:?} must start with '/'",
                        spec.table, column.name, column.pointer
                    ));
                }
                if !names.insert(column.name.clone()) {
                    return Err(format!("table {}: column {} appears twice", spec.table, column.name));
                }
            }
        }
        Ok(tables)
    }

    /// The parser, the topics, the warehouse, `from` and the batch limits.
    fn validate_source_and_batch(&self) -> Result<(), String> {
        self.parser()
            .map_err(|e| format!("[[load]] for table {}: {e}", self.label()))?;
        if self.topics.is_empty() {
            return Err(format!("[[load]] for table {}: no topic", self.label()));
        }
        if self.warehouse == "sqlite://" || self.warehouse.trim().is_empty() {
            return Err(format!(
                "[[load]] for table {}: warehouse {:?} names no database (sqlite:///path/to/file.db or postgres://user@host:port/db)",
                self.label(), self.warehouse
            ));
        }
        self.start_position()?;
        if self.batch_bytes_max == 0 {
            return Err("batch_bytes_max must be at least 1".into());
        }
        if self.batch_records_max == 0 {
            return Err("batch_records_max must be at least 1".into());
        }
        Ok(())
    }
}

/// The longest identifier PostgreSQL keeps whole (NAMEDATALEN - 1).
const IDENTIFIER_BYTES_MAX: usize = 63;

/// A name usable as an SQL identifier unquoted in both warehouses.
fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IDENTIFIER_BYTES_MAX
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// `scheme://user:password@host/…` without the password (`user:***@`); any
/// other text unchanged. URLs go to logs, errors and status screens: a
/// password never does.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::redact_url;

    #[test]
    fn passwords_never_show_in_a_url() {
        assert_eq!(
            redact_url("postgres://relay:s3cret@db:5432/analytics"),
            "postgres://relay:***@db:5432/analytics"
        );
        assert_eq!(
            redact_url("postgres://relay@db/analytics"),
            "postgres://relay@db/analytics"
        );
        assert_eq!(redact_url("sqlite:///tmp/w.db"), "sqlite:///tmp/w.db");
    }
}
