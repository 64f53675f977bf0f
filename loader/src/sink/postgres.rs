//! PostgreSQL warehouse: per batch, one transaction that writes the rows,
//! records rejects, and advances the offsets with a compare-and-set. Rows
//! are first COPYed in binary straight into the target table (written once,
//! like `psql \copy`); when that hits any unique violation (a replayed
//! event, whatever its unique index is called) the transaction is rolled
//! back and the batch goes the staged way: COPY into a session-local staging table, then insert into
//! the target ignoring conflicts. A lost connection is re-opened on the next try.
//!
//! Every session pins `synchronous_commit = on` ([`SESSION_SETTINGS`]): the
//! loader commits a batch's offsets to the broker once its transaction has
//! committed, and with a server or role default of `off` a commit returns
//! before it is flushed, so a crash of the server could lose a batch the
//! broker already counts as loaded.

use super::{column_names, column_types, schema, Batch, Result, SinkError, StoredOffsets};
use crate::config::LoaderConfig;
use crate::table::{ColumnType, TableSpec};
use crate::transform::{Row, Value};
use bytes::BytesMut;
use postgres_types::{IsNull, ToSql, Type};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::{Client, NoTls};

#[path = "postgres_relay_rows.rs"]
mod relay_rows;
use relay_rows::{advance_offsets, insert_gaps, insert_rejects};

pub struct PostgresSink {
    url: String,
    client: Option<Client>,
    /// The loader's tables (routes in order, then the default).
    tables: Vec<PgTable>,
}

/// One target table as a COPY needs it.
#[derive(Clone)]
struct PgTable {
    name: String,
    /// The column list, `dedup_key` last.
    names: String,
    /// The binary COPY types of those columns.
    types: Vec<Type>,
}

impl PgTable {
    fn of(spec: &TableSpec) -> PgTable {
        let mut types: Vec<Type> = column_types(spec).into_iter().map(|(_, t)| postgres_type(t)).collect();
        types.push(Type::TEXT);
        PgTable {
            name: spec.table.clone(),
            names: column_names(spec).join(", "),
            types,
        }
    }
}

/// The server's own message when there is one ("db error" alone says nothing).
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => error.to_string(),
    }
}

fn unavailable(error: tokio_postgres::Error) -> SinkError {
    SinkError::Unavailable(describe(&error))
}

/// A connection that fails for a reason retrying cannot fix (a wrong
/// password `28P01`, a role not allowed `28000`, a database that does not
/// exist `3D000`) is a configuration error; anything else (refused, timed
/// out, the server starting up) is an outage.
fn connect_error(error: tokio_postgres::Error, url: &str) -> SinkError {
    let message = format!("{} ({})", describe(&error), crate::config::redact_url(url));
    match error.code().map(|code| code.code()) {
        Some("28P01" | "28000" | "3D000") => SinkError::Setup(message),
        _ => SinkError::Unavailable(message),
    }
}

/// What an error while writing rows means, by SQLSTATE class: the data of a
/// row (`22` data exception, `23` integrity, `42804` datatype mismatch,
/// `54000` a value too large for an index), the table (`42` otherwise:
/// undefined table or column, privilege), or an outage (everything else:
/// connection loss, `08`, `53`, `57P`, `40001`, `40P01`, errors without a
/// server answer).
fn classify(error: tokio_postgres::Error) -> SinkError {
    let Some(code) = error.code().map(|code| code.code().to_owned()) else {
        return unavailable(error);
    };
    let message = describe(&error);
    match code.as_str() {
        "42804" | "54000" => SinkError::Refused(message),
        code if code.starts_with("22") || code.starts_with("23") => SinkError::Refused(message),
        code if code.starts_with("42") => SinkError::Setup(message),
        _ => SinkError::Unavailable(message),
    }
}

/// An error while setting tables up: an outage (the connection lost, the
/// server shutting down, no answer) is retried like any outage; anything
/// else (a privilege, a table in the way) is the operator's to fix.
fn setup_error(context: &str, error: tokio_postgres::Error) -> SinkError {
    let message = format!("{context}: {}", describe(&error));
    match classify(error) {
        SinkError::Unavailable(_) => SinkError::Unavailable(message),
        _ => SinkError::Setup(message),
    }
}

/// Why one way of writing a batch failed.
enum Failure {
    /// A direct COPY met a `dedup_key` already loaded (unique violation).
    Duplicate,
    Sink(SinkError),
}

impl From<SinkError> for Failure {
    fn from(error: SinkError) -> Self {
        Failure::Sink(error)
    }
}

impl Failure {
    fn into_sink_error(self) -> SinkError {
        match self {
            // The staging table has no index: a staged write meets a
            // duplicate only in its INSERT, which says Refused itself.
            Failure::Duplicate => SinkError::Refused("unique violation in a staged write".into()),
            Failure::Sink(error) => error,
        }
    }
}

/// A COPY into the target that meets any unique violation falls back to the
/// staged path, whose `ON CONFLICT (dedup_key)` finds the dedup key's unique
/// index by its column, whatever it is called (`<t>_dedup_key`, a PRIMARY
/// KEY `<t>_pkey`, an operator's UNIQUE constraint): a replayed event is a
/// duplicate there, and a violation of another unique index is refused
/// there, as the row's data. Recognising the duplicate by the constraint's
/// name instead sent a replayed event of a PRIMARY KEY table into row
/// isolation, whose probes all passed, forever.
fn copy_failure(error: tokio_postgres::Error) -> Failure {
    if error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        Failure::Duplicate
    } else {
        Failure::Sink(classify(error))
    }
}

/// How a batch's rows reach the target table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// COPY into the target: rows written once; fails on any duplicate key.
    Direct,
    /// COPY into the staging table, then INSERT … ON CONFLICT DO NOTHING.
    Staged,
}

/// COPYs each table's share of `rows` into it, tables in order; how many
/// rows were new.
async fn copy_all(
    transaction: &tokio_postgres::Transaction<'_>,
    tables: &[PgTable],
    rows: &[Row],
    path: Path,
) -> std::result::Result<u64, Failure> {
    let mut inserted = 0;
    for (index, table) in tables.iter().enumerate() {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.table == index).collect();
        if !mine.is_empty() {
            inserted += copy_rows(transaction, table, &mine, path).await?;
        }
    }
    Ok(inserted)
}

/// COPYs `rows` (all of `table`) into it (`Path::Direct`), or into its
/// staging table and then into it ignoring duplicates (`Path::Staged`);
/// how many rows were new.
async fn copy_rows(
    transaction: &tokio_postgres::Transaction<'_>,
    table: &PgTable,
    rows: &[&Row],
    path: Path,
) -> std::result::Result<u64, Failure> {
    let (name, names) = (&table.name, &table.names);
    let copy_into = match path {
        Path::Direct => name.clone(),
        Path::Staged => format!("relay_stage_{name}"),
    };
    let sink = transaction
        .copy_in(&format!("COPY {copy_into} ({names}) FROM STDIN (FORMAT binary)"))
        .await
        .map_err(unavailable)?;
    let writer = BinaryCopyInWriter::new(sink, &table.types);
    tokio::pin!(writer);
    // One list of cells for every row: no allocation per row.
    let mut values: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(table.types.len());
    for row in rows {
        values.clear();
        values.extend(row.values.iter().map(|v| v as &(dyn ToSql + Sync)));
        values.push(&row.dedup_key);
        writer.as_mut().write(&values).await.map_err(copy_failure)?;
    }
    writer.finish().await.map_err(copy_failure)?;
    if path == Path::Staged {
        return transaction
            .execute(
                &format!("INSERT INTO {name} ({names}) SELECT {names} FROM relay_stage_{name} ON CONFLICT (dedup_key) DO NOTHING"),
                &[],
            )
            .await
            .map_err(|e| classify(e).into());
    }
    Ok(rows.len() as u64)
}

/// Run at the start of every session, before anything is written: a commit
/// returns only once it is flushed (and, with synchronous standbys, flushed
/// on them), whatever the server's or the role's default says.
const SESSION_SETTINGS: &str = "SET synchronous_commit = on";

/// Advisory lock key that serialises table creation between loaders
/// starting at once (`CREATE TABLE IF NOT EXISTS` alone races in PostgreSQL).
const SCHEMA_LOCK_KEY: i64 = 0x7265_6c61_7900;

fn postgres_type(column_type: ColumnType) -> Type {
    match column_type {
        ColumnType::Text => Type::TEXT,
        ColumnType::Bigint => Type::INT8,
        ColumnType::Double => Type::FLOAT8,
        ColumnType::Boolean => Type::BOOL,
        ColumnType::Timestamptz => Type::TIMESTAMPTZ,
        ColumnType::Uuid => Type::UUID,
        ColumnType::Json => Type::JSONB,
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Text(text) => text.to_sql(ty, out),
            Value::BigInt(n) => n.to_sql(ty, out),
            Value::Double(f) => f.to_sql(ty, out),
            Value::Bool(b) => b.to_sql(ty, out),
            Value::Timestamp(micros) => {
                let time = if *micros >= 0 {
                    SystemTime::UNIX_EPOCH + Duration::from_micros(*micros as u64)
                } else {
                    SystemTime::UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
                };
                time.to_sql(ty, out)
            }
            Value::Uuid(id) => id.to_sql(ty, out),
            Value::Json(json) => json.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres_types::to_sql_checked!();
}

/// The target table as PostgreSQL's catalog describes it, checked against
/// the configuration.
async fn check_table(client: &Client, config: &TableSpec) -> Result<()> {
    let table = &config.table;
    let rows = client
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_name = $1 AND table_schema = current_schema()",
            &[table],
        )
        .await
        .map_err(unavailable)?;
    let actual: Vec<schema::ActualColumn> = rows
        .iter()
        .map(|row| schema::ActualColumn {
            name: row.get(0),
            declared_type: row.get(1),
        })
        .collect();
    // A unique index (a UNIQUE or PRIMARY KEY constraint's too) whose only
    // key column is dedup_key, usable as `ON CONFLICT (dedup_key)`'s
    // arbiter: not partial, not on an expression, not deferrable.
    let dedup_key_unique: bool = client
        .query_one(
            "SELECT EXISTS (
                 SELECT 1 FROM pg_index i
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                 WHERE i.indrelid = to_regclass($1::text) AND i.indisunique AND i.indnkeyatts = 1
                   AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL
                   AND a.attname = 'dedup_key')",
            &[table],
        )
        .await
        .map_err(unavailable)?
        .get(0);
    schema::check(config, schema::Dialect::Postgres, &actual, dedup_key_unique)
}

impl PostgresSink {
    pub async fn open(url: &str, config: &LoaderConfig) -> Result<Self> {
        let specs = config.tables();
        let mut sink = Self {
            url: url.to_owned(),
            client: None,
            tables: specs.iter().map(PgTable::of).collect(),
        };
        let client = sink.connect().await?;
        let user_table: String = specs
            .iter()
            .filter(|spec| spec.create_table)
            .map(|spec| {
                let table = &spec.table;
                let columns: Vec<String> = column_types(spec)
                    .iter()
                    .map(|(name, ty)| format!("{name} {}", ty.postgres()))
                    .collect();
                format!(
                    "CREATE TABLE IF NOT EXISTS {table} ({}{}dedup_key text NOT NULL);
                     CREATE UNIQUE INDEX IF NOT EXISTS {table}_dedup_key ON {table} (dedup_key);",
                    columns.join(", "),
                    if columns.is_empty() { "" } else { ", " },
                )
            })
            .collect();
        // Relay's own tables exist whatever create_table says: they are not the user's.
        client
            .batch_execute(&format!(
                "BEGIN;
                 SELECT pg_advisory_xact_lock({SCHEMA_LOCK_KEY});
                 {user_table}
                 CREATE TABLE IF NOT EXISTS relay_offsets (
                         group_id text NOT NULL, topic text NOT NULL, partition integer NOT NULL,
                         next_offset bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
                         PRIMARY KEY (group_id, topic, partition));
                     CREATE TABLE IF NOT EXISTS relay_rejects (
                         target_table text NOT NULL, group_id text NOT NULL, topic text NOT NULL,
                         partition integer NOT NULL, \"offset\" bigint NOT NULL, raw bytea NOT NULL,
                         error text NOT NULL, rejected_at timestamptz NOT NULL DEFAULT now(),
                         UNIQUE (target_table, topic, partition, \"offset\"));
                 CREATE TABLE IF NOT EXISTS relay_gaps (
                         group_id text NOT NULL, topic text NOT NULL, partition integer NOT NULL,
                         first_offset bigint NOT NULL, last_offset bigint NOT NULL, records bigint NOT NULL,
                         detected_at timestamptz NOT NULL DEFAULT now(), acknowledged_at timestamptz,
                         UNIQUE (group_id, topic, partition, first_offset));
                 ALTER TABLE relay_rejects ADD COLUMN IF NOT EXISTS source text;
                 CREATE UNIQUE INDEX IF NOT EXISTS relay_rejects_source ON relay_rejects (target_table, source)
                         WHERE source IS NOT NULL;
                 COMMIT;"
            ))
            .await
            .map_err(|e| setup_error("creating tables", e))?;
        for spec in &specs {
            check_table(&client, spec).await?;
        }
        sink.client = Some(client);
        sink.prepare_session().await?;
        Ok(sink)
    }

    /// A new session, with [`SESSION_SETTINGS`] applied.
    async fn connect(&self) -> Result<Client> {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .map_err(|error| connect_error(error, &self.url))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "PostgreSQL connection ended");
            }
        });
        client.batch_execute(SESSION_SETTINGS).await.map_err(|error| {
            SinkError::Unavailable(format!(
                "{SESSION_SETTINGS:?} for a new session ({}): {}",
                crate::config::redact_url(&self.url),
                describe(&error)
            ))
        })?;
        Ok(client)
    }

    /// The staging tables live as long as the session; rows go at commit.
    async fn prepare_session(&mut self) -> Result<()> {
        let client = self.client.as_ref().expect("connected");
        for table in &self.tables {
            let table = &table.name;
            client
                .batch_execute(&format!(
                    "CREATE TEMP TABLE IF NOT EXISTS relay_stage_{table} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                ))
                .await
                .map_err(|e| setup_error(&format!("table {table}"), e))?;
        }
        Ok(())
    }

    async fn client(&mut self) -> Result<&mut Client> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = Some(self.connect().await?);
            if let Err(error) = self.prepare_session().await {
                self.client = None;
                return Err(SinkError::Unavailable(error.to_string()));
            }
        }
        Ok(self.client.as_mut().expect("connected"))
    }

    pub async fn offsets(&mut self, group: &str) -> Result<StoredOffsets> {
        self.per_partition(
            "SELECT topic, partition, next_offset FROM relay_offsets WHERE group_id = $1",
            group,
        )
        .await
    }

    pub async fn open_gaps(&mut self, group: &str) -> Result<StoredOffsets> {
        self.per_partition(
            "SELECT topic, partition, count(*) FROM relay_gaps
             WHERE group_id = $1 AND acknowledged_at IS NULL GROUP BY topic, partition",
            group,
        )
        .await
    }

    /// Runs `sql` (topic, partition, a bigint; `$1` the group) into a map.
    async fn per_partition(&mut self, sql: &str, group: &str) -> Result<StoredOffsets> {
        let client = self.client().await?;
        let rows = client.query(sql, &[&group]).await.map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|r| ((r.get::<_, String>(0), r.get::<_, i32>(1)), r.get::<_, i64>(2)))
            .collect())
    }

    /// COPYs `rows` into their staging tables and inserts them into their
    /// tables (every constraint checked), then rolls back.
    pub async fn probe(&mut self, rows: Vec<Row>) -> Result<()> {
        let tables = self.tables.clone();
        let client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        copy_all(&transaction, &tables, &rows, Path::Staged)
            .await
            .map_err(Failure::into_sink_error)?;
        transaction.rollback().await.map_err(unavailable)
    }

    pub async fn write(&mut self, group: &str, batch: &Arc<Batch>) -> Result<()> {
        match self.write_as(group, batch, Path::Direct).await {
            Err(Failure::Duplicate) => {
                tracing::debug!("batch holds events already loaded; writing it through the staging table");
                self.write_as(group, batch, Path::Staged)
                    .await
                    .map_err(Failure::into_sink_error)
            }
            other => other.map_err(Failure::into_sink_error),
        }
    }

    async fn write_as(&mut self, group: &str, batch: &Arc<Batch>, path: Path) -> std::result::Result<(), Failure> {
        let tables = self.tables.clone();
        let result = async {
            let client = self.client().await?;
            let transaction = client.transaction().await.map_err(unavailable)?;
            let inserted = copy_all(&transaction, &tables, &batch.rows, path).await?;
            insert_rejects(&transaction, group, batch).await?;
            insert_gaps(&transaction, group, batch).await?;
            advance_offsets(&transaction, group, batch).await?;
            transaction.commit().await.map_err(unavailable)?;
            batch.inserted.store(inserted, Ordering::Relaxed);
            Ok(())
        }
        .await;
        if matches!(result, Err(Failure::Sink(SinkError::Unavailable(_))))
            && self.client.as_ref().is_some_and(Client::is_closed)
        {
            self.client = None;
        }
        result
    }
}

#[cfg(test)]
#[path = "postgres_tests.rs"]
mod tests;
