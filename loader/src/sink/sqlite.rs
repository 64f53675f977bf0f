//! SQLite warehouse (the embedded default): WAL mode, `synchronous = FULL`
//! (a committed batch survives a power cut), prepared statements, one
//! `BEGIN IMMEDIATE` transaction per batch. Both settings are read back at
//! open: SQLite keeps another journal mode where WAL is impossible (an
//! in-memory database, a file system without shared memory), and opening
//! fails then rather than loading with weaker guarantees. Timestamps are
//! stored as RFC 3339 text with microseconds, UUIDs as text, JSON as text.

use super::sqlite_file::{likely_fix, make_parent, WarehouseFile};
use super::{column_names, column_types, schema, Batch, Result, SinkError, StoredOffsets};
use crate::config::LoaderConfig;
use crate::table::TableSpec;
use crate::transform::{Row, Value};
use relay_client::time::format_rfc3339_micros;
use rusqlite::types::{ToSqlOutput, Value as SqlValue};
use rusqlite::{params, Connection, ToSql};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// The journal mode a committed batch relies on, as `PRAGMA journal_mode`
/// names it.
const JOURNAL_MODE_WAL: &str = "wal";
/// `PRAGMA synchronous` set at open, and the number SQLite reads it back as:
/// FULL fsyncs the WAL at every commit.
const SYNCHRONOUS: &str = "FULL";
const SYNCHRONOUS_FULL: i64 = 2;

pub struct SqliteSink {
    connection: Arc<Mutex<Connection>>,
    /// Per table (the loader's routes in order, then its default): the
    /// table's name and its row INSERT.
    tables: Arc<Vec<(String, String)>>,
    /// The file opened, checked before each batch and named in errors.
    file: Arc<WarehouseFile>,
}

/// An outage, with its likely fix (the caller adds the path).
fn unavailable(error: rusqlite::Error) -> SinkError {
    SinkError::Unavailable(format!("{error}{}", likely_fix(&error)))
}

/// What a failed row insert means: the row's data (CONSTRAINT: NOT NULL,
/// CHECK, a unique index other than dedup_key's; MISMATCH; TOOBIG), the
/// table itself (SQLITE_ERROR: no such table or column), or an outage
/// (BUSY, LOCKED, IOERR, FULL, NOMEM, …: the same batch is tried again).
fn classify(error: rusqlite::Error) -> SinkError {
    use rusqlite::ErrorCode;
    match error.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation | ErrorCode::TypeMismatch | ErrorCode::TooBig) => {
            SinkError::Refused(error.to_string())
        }
        Some(ErrorCode::Unknown) => SinkError::Setup(error.to_string()),
        _ => unavailable(error),
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Owned(SqlValue::Null),
            Value::Text(text) => ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(text.as_bytes())),
            Value::BigInt(n) => ToSqlOutput::Owned(SqlValue::Integer(*n)),
            Value::Double(f) => ToSqlOutput::Owned(SqlValue::Real(*f)),
            Value::Bool(b) => ToSqlOutput::Owned(SqlValue::Integer(i64::from(*b))),
            Value::Timestamp(micros) => ToSqlOutput::Owned(SqlValue::Text(format_rfc3339_micros(*micros))),
            Value::Uuid(id) => ToSqlOutput::Owned(SqlValue::Text(id.hyphenated().to_string())),
            Value::Json(json) => ToSqlOutput::Owned(SqlValue::Text(json.to_string())),
        })
    }
}

impl SqliteSink {
    pub async fn open(path: &str, config: &LoaderConfig) -> Result<Self> {
        let (path, config) = (path.to_owned(), config.clone());
        tokio::task::spawn_blocking(move || Self::open_blocking(&path, &config))
            .await
            .expect("open task")
    }

    fn open_blocking(path: &str, config: &LoaderConfig) -> Result<Self> {
        let setup = |e: rusqlite::Error| setup_error(path, e);
        make_parent(path)?;
        let connection = Connection::open(path).map_err(setup)?;
        connection
            .busy_timeout(std::time::Duration::from_secs(30))
            .map_err(setup)?;
        set_durability(&connection, path)?;
        for spec in config.tables() {
            if spec.create_table {
                create_table(&connection, &spec).map_err(setup)?;
            }
        }
        // Relay's own tables exist whatever create_table says: they are not the user's.
        connection.execute_batch(RELAY_TABLES).map_err(setup)?;
        add_rejects_source(&connection).map_err(setup)?;
        let tables = prepare_inserts(&connection, config)?;
        let file = WarehouseFile::identify(path)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            tables: Arc::new(tables),
            file: Arc::new(file),
        })
    }

    pub async fn offsets(&mut self, group: &str) -> Result<StoredOffsets> {
        self.per_partition(
            "SELECT topic, partition, next_offset FROM relay_offsets WHERE group_id = ?1",
            group,
        )
        .await
    }

    pub async fn open_gaps(&mut self, group: &str) -> Result<StoredOffsets> {
        self.per_partition(
            "SELECT topic, partition, count(*) FROM relay_gaps
             WHERE group_id = ?1 AND acknowledged_at IS NULL GROUP BY topic, partition",
            group,
        )
        .await
    }

    /// Runs `sql` (topic, partition, an integer; `?1` the group) into a map.
    async fn per_partition(&mut self, sql: &'static str, group: &str) -> Result<StoredOffsets> {
        let (connection, group) = (Arc::clone(&self.connection), group.to_owned());
        let file = Arc::clone(&self.file);
        tokio::task::spawn_blocking(move || {
            let connection = connection.lock().expect("sqlite lock");
            let mut statement = connection.prepare_cached(sql).map_err(unavailable)?;
            let rows = statement
                .query_map(params![group], |row| {
                    Ok(((row.get::<_, String>(0)?, row.get::<_, i32>(1)?), row.get::<_, i64>(2)?))
                })
                .map_err(unavailable)?;
            rows.collect::<rusqlite::Result<StoredOffsets>>().map_err(unavailable)
        })
        .await
        .expect("warehouse query task")
        .map_err(|e| file.name(e))
    }

    pub async fn probe(&mut self, rows: Vec<Row>) -> Result<()> {
        let (connection, tables) = (Arc::clone(&self.connection), Arc::clone(&self.tables));
        let file = Arc::clone(&self.file);
        tokio::task::spawn_blocking(move || {
            let mut connection = connection.lock().expect("sqlite lock");
            let transaction = connection.transaction().map_err(|e| file.name(unavailable(e)))?;
            insert_rows(&transaction, &tables, &rows)?;
            Ok(())
            // Dropping the transaction rolls it back.
        })
        .await
        .expect("probe task")
    }

    pub async fn write(&mut self, group: &str, batch: &Arc<Batch>) -> Result<()> {
        let (connection, batch) = (Arc::clone(&self.connection), Arc::clone(batch));
        let (group, tables) = (group.to_owned(), Arc::clone(&self.tables));
        let file = Arc::clone(&self.file);
        tokio::task::spawn_blocking(move || {
            // Before the batch: a file deleted or replaced since the open
            // must never take a commit.
            file.check()?;
            let mut connection = connection.lock().expect("sqlite lock");
            write_blocking(&mut connection, &group, &tables, &batch).map_err(|e| file.name(e))
        })
        .await
        .expect("write task")
    }
}

/// Relay's own tables: the offsets, the rejects and the gaps.
const RELAY_TABLES: &str = "CREATE TABLE IF NOT EXISTS relay_offsets (
         group_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
         next_offset INTEGER NOT NULL, updated_at TEXT NOT NULL,
         PRIMARY KEY (group_id, topic, partition));
     CREATE TABLE IF NOT EXISTS relay_rejects (
         target_table TEXT NOT NULL, group_id TEXT NOT NULL, topic TEXT NOT NULL,
         partition INTEGER NOT NULL, \"offset\" INTEGER NOT NULL, raw BLOB NOT NULL,
         error TEXT NOT NULL, rejected_at TEXT NOT NULL,
         UNIQUE (target_table, topic, partition, \"offset\"));
     CREATE TABLE IF NOT EXISTS relay_gaps (
         group_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
         first_offset INTEGER NOT NULL, last_offset INTEGER NOT NULL, records INTEGER NOT NULL,
         detected_at TEXT NOT NULL, acknowledged_at TEXT,
         UNIQUE (group_id, topic, partition, first_offset));";

/// A failure while opening `path`. Another process setting the same file
/// up at the same moment (two loaders starting together) can make SQLite
/// answer "locked" at once without waiting: that is worth retrying, not a
/// configuration error.
fn setup_error(path: &str, e: rusqlite::Error) -> SinkError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            SinkError::Unavailable(format!("SQLite {path}: {e}"))
        }
        _ => SinkError::Setup(format!("SQLite {path}: {e}{}", likely_fix(&e))),
    }
}

/// Sets WAL and `synchronous = FULL`, and reads both back: opening fails
/// rather than loading with weaker guarantees.
fn set_durability(connection: &Connection, path: &str) -> Result<()> {
    let setup = |e: rusqlite::Error| setup_error(path, e);
    // The pragma answers with the mode in effect, which stays the old
    // one where WAL cannot be used.
    let journal_mode: String = connection
        .pragma_update_and_check(None, "journal_mode", JOURNAL_MODE_WAL, |row| row.get(0))
        .map_err(setup)?;
    if !journal_mode.eq_ignore_ascii_case(JOURNAL_MODE_WAL) {
        return Err(SinkError::Setup(format!(
            "SQLite {path}: PRAGMA journal_mode = {JOURNAL_MODE_WAL} left the journal mode {journal_mode:?}; \
             the loader needs WAL so that a committed batch survives a power cut: use a database file \
             on a local file system (not :memory:)"
        )));
    }
    connection
        .pragma_update(None, "synchronous", SYNCHRONOUS)
        .map_err(setup)?;
    let synchronous: i64 = connection
        .pragma_query_value(None, "synchronous", |row| row.get(0))
        .map_err(setup)?;
    if synchronous != SYNCHRONOUS_FULL {
        return Err(SinkError::Setup(format!(
            "SQLite {path}: PRAGMA synchronous = {SYNCHRONOUS} left synchronous at {synchronous} \
             (FULL is {SYNCHRONOUS_FULL}); a committed batch would not survive a power cut"
        )));
    }
    Ok(())
}

/// Per table: checked against the configuration, and its row INSERT
/// (prepared once, so a table that does not fit fails at open).
fn prepare_inserts(connection: &Connection, config: &LoaderConfig) -> Result<Vec<(String, String)>> {
    let mut tables = Vec::new();
    for spec in config.tables() {
        check_table(connection, &spec)?;
        let names = column_names(&spec);
        let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        let table = &spec.table;
        let insert_row = format!(
            "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT (dedup_key) DO NOTHING",
            names.join(", "),
            placeholders.join(", ")
        );
        connection
            .prepare(&insert_row)
            .map_err(|e| SinkError::Setup(format!("table {table} does not fit the configured columns: {e}")))?;
        tables.push((table.clone(), insert_row));
    }
    Ok(tables)
}

/// `relay_rejects.source` (a line's source identity) and its unique index,
/// added to a table made before they existed: a line the sender sent twice
/// is rejected once.
fn add_rejects_source(connection: &Connection) -> rusqlite::Result<()> {
    // One write transaction: loaders starting together (a backfill beside
    // the main loader) add the column once.
    connection.execute_batch("BEGIN IMMEDIATE")?;
    let added = (|| {
        let has_source = connection
            .prepare("SELECT 1 FROM pragma_table_info('relay_rejects') WHERE name = 'source'")?
            .exists([])?;
        if !has_source {
            connection.execute_batch("ALTER TABLE relay_rejects ADD COLUMN source TEXT")?;
        }
        connection.execute_batch(
            "CREATE UNIQUE INDEX IF NOT EXISTS relay_rejects_source ON relay_rejects (target_table, source)
             WHERE source IS NOT NULL",
        )
    })();
    match added {
        Ok(()) => connection.execute_batch("COMMIT"),
        Err(error) => {
            let _ = connection.execute_batch("ROLLBACK");
            Err(error)
        }
    }
}

/// `CREATE TABLE IF NOT EXISTS` for `spec`, with the unique index on dedup_key.
fn create_table(connection: &Connection, spec: &TableSpec) -> rusqlite::Result<()> {
    let table = &spec.table;
    let columns: Vec<String> = column_types(spec)
        .iter()
        .map(|(name, ty)| format!("{name} {}", ty.sqlite()))
        .collect();
    connection.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {table} ({}{}dedup_key TEXT NOT NULL);
         CREATE UNIQUE INDEX IF NOT EXISTS {table}_dedup_key ON {table} (dedup_key);",
        columns.join(", "),
        if columns.is_empty() { "" } else { ", " },
    ))
}

/// Inserts each row into its table (duplicates by dedup_key ignored), one
/// prepared statement per table; how many were new.
fn insert_rows(transaction: &rusqlite::Transaction<'_>, tables: &[(String, String)], rows: &[Row]) -> Result<u64> {
    let mut inserted = 0;
    for (index, (_, insert_row)) in tables.iter().enumerate() {
        let mut mine = rows.iter().filter(|row| row.table == index).peekable();
        if mine.peek().is_none() {
            continue;
        }
        let mut insert = transaction.prepare_cached(insert_row).map_err(unavailable)?;
        for row in mine {
            let mut values: Vec<&dyn ToSql> = row.values.iter().map(|v| v as &dyn ToSql).collect();
            values.push(&row.dedup_key);
            inserted += insert.execute(values.as_slice()).map_err(classify)? as u64;
        }
    }
    Ok(inserted)
}

/// A table as SQLite's catalog describes it, checked against the configuration.
fn check_table(connection: &Connection, config: &TableSpec) -> Result<()> {
    let table = &config.table;
    let mut statement = connection
        .prepare(&format!("PRAGMA table_info({table})"))
        .map_err(unavailable)?;
    let actual: Vec<schema::ActualColumn> = statement
        .query_map([], |row| {
            Ok(schema::ActualColumn {
                name: row.get::<_, String>(1)?,
                declared_type: row.get::<_, String>(2)?.to_ascii_lowercase(),
            })
        })
        .map_err(unavailable)?
        .collect::<rusqlite::Result<_>>()
        .map_err(unavailable)?;
    // A unique index whose only column is dedup_key, by its columns and
    // not its name: the loader's own `<t>_dedup_key`, an operator's UNIQUE
    // constraint or PRIMARY KEY (`sqlite_autoindex_<t>_N`, origin "u" or
    // "pk"). Not a partial one: `ON CONFLICT (dedup_key)` cannot use it.
    let mut indexes = connection
        .prepare(&format!("PRAGMA index_list({table})"))
        .map_err(unavailable)?;
    let unique: Vec<String> = indexes
        .query_map([], |row| {
            Ok((row.get::<_, String>(1)?, row.get::<_, i64>(2)?, row.get::<_, i64>(4)?))
        })
        .map_err(unavailable)?
        .filter_map(|r| r.ok())
        .filter(|(_, unique, partial)| *unique == 1 && *partial == 0)
        .map(|(name, _, _)| name)
        .collect();
    let dedup_key_unique = unique.iter().any(|index| {
        let columns: Vec<String> = connection
            .prepare(&format!("PRAGMA index_info({index})"))
            .and_then(|mut s| s.query_map([], |row| row.get::<_, String>(2))?.collect())
            .unwrap_or_default();
        columns == ["dedup_key"]
    });
    schema::check(config, schema::Dialect::Sqlite, &actual, dedup_key_unique)
}

fn write_blocking(connection: &mut Connection, group: &str, tables: &[(String, String)], batch: &Batch) -> Result<()> {
    let transaction = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    let inserted = insert_rows(&transaction, tables, &batch.rows)?;
    let now = format_rfc3339_micros(relay_proto::clock::now_micros());
    insert_rejects(&transaction, group, batch, &now)?;
    insert_gaps(&transaction, group, batch, &now)?;
    advance_offsets(&transaction, group, batch, &now)?;
    transaction.commit().map_err(unavailable)?;
    batch.inserted.store(inserted, Ordering::Relaxed);
    Ok(())
}

/// The batch's rejects into relay_rejects (one per source line).
fn insert_rejects(transaction: &rusqlite::Transaction<'_>, group: &str, batch: &Batch, now: &str) -> Result<()> {
    let mut reject = transaction
        .prepare_cached(
            "INSERT INTO relay_rejects (target_table, group_id, topic, partition, \"offset\", raw, error, rejected_at, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
        )
        .map_err(unavailable)?;
    for r in &batch.rejects {
        reject
            .execute(params![
                r.table,
                group,
                r.topic,
                r.partition,
                r.offset,
                r.raw,
                r.error,
                now,
                r.source
            ])
            .map_err(unavailable)?;
    }
    Ok(())
}

/// The batch's gaps into relay_gaps.
fn insert_gaps(transaction: &rusqlite::Transaction<'_>, group: &str, batch: &Batch, now: &str) -> Result<()> {
    let mut gap = transaction
        .prepare_cached(
            "INSERT INTO relay_gaps (group_id, topic, partition, first_offset, last_offset, records, detected_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        )
        .map_err(unavailable)?;
    for g in &batch.gaps {
        gap.execute(params![
            group,
            g.topic,
            g.partition,
            g.first_offset,
            g.last_offset,
            g.records(),
            now
        ])
        .map_err(unavailable)?;
    }
    Ok(())
}

/// Moves each partition's offset from where the loader last stored it;
/// a partition whose row is elsewhere (or already there) is fenced.
fn advance_offsets(transaction: &rusqlite::Transaction<'_>, group: &str, batch: &Batch, now: &str) -> Result<()> {
    let mut advance = transaction
        .prepare_cached(
            "UPDATE relay_offsets SET next_offset = ?1, updated_at = ?2
             WHERE group_id = ?3 AND topic = ?4 AND partition = ?5 AND next_offset = ?6",
        )
        .map_err(unavailable)?;
    let mut first = transaction
        .prepare_cached(
            "INSERT INTO relay_offsets (group_id, topic, partition, next_offset, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        )
        .map_err(unavailable)?;
    for offset in &batch.offsets {
        let changed = match offset.previous {
            Some(previous) => advance
                .execute(params![
                    offset.next,
                    now,
                    group,
                    offset.topic,
                    offset.partition,
                    previous
                ])
                .map_err(unavailable)?,
            None => first
                .execute(params![group, offset.topic, offset.partition, offset.next, now])
                .map_err(unavailable)?,
        };
        offset.applied(changed as u64)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LoaderConfig {
        LoaderConfig::new(vec!["t".into()], "g", "sqlite://unused", "events")
    }

    #[test]
    fn a_file_database_loads_in_wal_with_full_synchronous() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let sink = SqliteSink::open_blocking(path.to_str().unwrap(), &config()).unwrap();
        let connection = sink.connection.lock().unwrap();
        let journal_mode: String = connection
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        let synchronous: i64 = connection
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap();
        assert_eq!(
            (journal_mode.as_str(), synchronous),
            (JOURNAL_MODE_WAL, SYNCHRONOUS_FULL)
        );
    }

    #[test]
    fn a_database_that_cannot_use_wal_is_refused_at_open() {
        // SQLite keeps an in-memory database's journal in memory: no WAL.
        match SqliteSink::open_blocking(":memory:", &config()) {
            Err(SinkError::Setup(message)) => assert!(
                message.contains(":memory:") && message.contains("journal_mode") && message.contains("\"memory\""),
                "the error should name the database, the pragma and the mode it got: {message}"
            ),
            Err(other) => panic!("expected a setup error, got {other}"),
            Ok(_) => panic!("an in-memory database (no WAL) was accepted"),
        }
    }
}
