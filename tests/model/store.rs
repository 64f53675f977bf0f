//! The warehouse of a model case, read the same way whichever it is: a
//! SQLite file of the case's directory, or a database of its own on one
//! throwaway PostgreSQL cluster shared by every case of the run (started on
//! first use; `RELAY_PG_BIN`). Rows come back as JSON values so that the
//! comparison in `check.rs` is written once. Changes nothing but what a case
//! asks for (its database, its tables, the server's outages).

use crate::support::postgres::Postgres;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

pub enum Store {
    Sqlite(PathBuf),
    Postgres { port: u16, database: String },
}

/// Leaked so that cases can hold it as `'static`; [`stop_cluster`] stops the
/// server at the end of a test (a static is never dropped, and a server left
/// behind would outlive the test process).
static CLUSTER: Mutex<Option<&'static Mutex<Postgres>>> = Mutex::new(None);

/// The cluster of the running test, started on first use; `None` without
/// the server binaries (outside CI: the case runs on SQLite, loudly).
pub fn cluster() -> Option<&'static Mutex<Postgres>> {
    let mut cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if cluster.is_none() {
        *cluster = Postgres::start().map(|postgres| &*Box::leak(Box::new(Mutex::new(postgres))));
    }
    *cluster
}

/// Stops the cluster a test started, if any.
pub fn stop_cluster() {
    if let Some(cluster) = CLUSTER.lock().unwrap_or_else(|e| e.into_inner()).take() {
        cluster.lock().unwrap_or_else(|e| e.into_inner()).stop_server();
    }
}

fn psql(port: u16, database: &str, sql: &str) -> Result<String, String> {
    let bin = PathBuf::from(std::env::var_os("RELAY_PG_BIN").expect("RELAY_PG_BIN"));
    let output = Command::new(bin.join("psql"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-c", sql, database])
        .output()
        .map_err(|error| error.to_string())?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

impl Store {
    /// A new, empty database for a case on the shared cluster.
    pub fn new_postgres(case_number: u64) -> Option<Self> {
        let port = cluster()?.lock().unwrap().port;
        let database = format!("model_{}_{case_number}", std::process::id());
        psql(port, "postgres", &format!("CREATE DATABASE {database}")).expect("create the case's database");
        Some(Store::Postgres { port, database })
    }

    pub fn url(&self) -> String {
        match self {
            Store::Sqlite(path) => format!("sqlite://{}", path.display()),
            Store::Postgres { port, database } => format!("postgres://postgres@127.0.0.1:{port}/{database}"),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Store::Postgres { .. })
    }

    /// Runs statements (DDL of the operator's own tables).
    pub fn execute(&self, sql: &str) {
        match self {
            Store::Sqlite(path) => rusqlite::Connection::open(path).unwrap().execute_batch(sql).unwrap(),
            Store::Postgres { port, database } => {
                psql(*port, database, sql).unwrap_or_else(|error| panic!("{sql}: {error}"));
            }
        }
    }

    /// One integer; 0 while the tables are not there yet.
    pub fn count(&self, sql: &str) -> i64 {
        match self {
            Store::Sqlite(path) => {
                let Some(connection) = open_sqlite(path) else {
                    return 0;
                };
                connection.query_row(sql, [], |row| row.get::<_, i64>(0)).unwrap_or(0)
            }
            Store::Postgres { port, database } => psql(*port, database, sql)
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .unwrap_or(0),
        }
    }

    /// Every row of `select` (SQLite), each column a JSON value; on
    /// PostgreSQL `select_postgres` gives each row as one JSON array.
    pub fn rows(&self, select: &str, select_postgres: &str) -> Vec<Vec<Value>> {
        match self {
            Store::Sqlite(path) => {
                let connection = open_sqlite(path).expect("warehouse");
                let mut statement = connection.prepare(select).unwrap();
                let width = statement.column_count();
                let rows = statement
                    .query_map([], |row| {
                        Ok((0..width).map(|i| sqlite_json(row.get(i).unwrap())).collect())
                    })
                    .unwrap();
                rows.map(Result::unwrap).collect()
            }
            Store::Postgres { port, database } => {
                let text =
                    psql(*port, database, select_postgres).unwrap_or_else(|error| panic!("{select_postgres}: {error}"));
                text.lines()
                    .map(|line| match serde_json::from_str::<Value>(line) {
                        Ok(Value::Array(columns)) => columns,
                        other => panic!("{select_postgres}: not a JSON array per row: {other:?}"),
                    })
                    .collect()
            }
        }
    }

    /// The warehouse goes away for `pause` (PostgreSQL: the server is
    /// stopped) or is held (SQLite: an exclusive transaction) while `during` runs.
    pub fn outage<T>(&self, during: impl FnOnce() -> T) -> T {
        match self {
            Store::Sqlite(path) => {
                let lock = rusqlite::Connection::open(path).unwrap();
                lock.busy_timeout(Duration::from_secs(30)).unwrap();
                lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
                let result = during();
                lock.execute_batch("COMMIT").unwrap();
                result
            }
            Store::Postgres { .. } => {
                let mut cluster = cluster().unwrap().lock().unwrap();
                cluster.stop_server();
                let result = during();
                cluster.start_server();
                result
            }
        }
    }

    /// Drops a PostgreSQL case's database (a passing case leaves nothing).
    pub fn remove(&self) {
        if let Store::Postgres { port, database } = self {
            let _ = psql(
                *port,
                "postgres",
                &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
            );
        }
    }
}

fn open_sqlite(path: &Path) -> Option<rusqlite::Connection> {
    if !path.exists() {
        return None;
    }
    let connection = rusqlite::Connection::open(path).ok()?;
    connection.busy_timeout(Duration::from_secs(30)).ok()?;
    Some(connection)
}

fn sqlite_json(value: rusqlite::types::Value) -> Value {
    use rusqlite::types::Value as V;
    match value {
        V::Null => Value::Null,
        V::Integer(n) => n.into(),
        V::Real(x) => serde_json::Number::from_f64(x)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        V::Text(text) => text.into(),
        V::Blob(bytes) => bytes.iter().map(|b| format!("{b:02x}")).collect::<String>().into(),
    }
}
