//! The warehouse a test loads into: a SQLite file or a throwaway
//! PostgreSQL, queried the same way.

use super::postgres::Postgres;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub enum Warehouse {
    Sqlite(PathBuf),
    Postgres(Postgres),
}

impl Warehouse {
    pub fn sqlite(dir: &Path) -> Self {
        Self::Sqlite(dir.join("warehouse.db"))
    }

    pub fn url(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(postgres) => postgres.url(),
        }
    }

    /// One value as text; "" for no row.
    pub fn query(&self, sql: &str) -> String {
        match self {
            Self::Sqlite(path) => {
                if !path.exists() {
                    return String::new();
                }
                let connection = rusqlite::Connection::open(path).unwrap();
                connection.busy_timeout(Duration::from_secs(30)).unwrap();
                connection
                    .query_row(sql, [], |row| row.get::<_, rusqlite::types::Value>(0))
                    .map(|value| match value {
                        rusqlite::types::Value::Null => String::new(),
                        rusqlite::types::Value::Integer(n) => n.to_string(),
                        rusqlite::types::Value::Real(f) => f.to_string(),
                        rusqlite::types::Value::Text(t) => t,
                        rusqlite::types::Value::Blob(b) => String::from_utf8_lossy(&b).into_owned(),
                    })
                    .unwrap_or_default()
            }
            Self::Postgres(postgres) => postgres.try_query(sql).unwrap_or_default(),
        }
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.query(sql).parse().unwrap_or(0)
    }
}

impl Warehouse {
    /// Every value of the first column of `sql`, as text.
    pub fn column(&self, sql: &str) -> Vec<String> {
        match self {
            Self::Sqlite(path) => {
                let connection = rusqlite::Connection::open(path).unwrap();
                let mut statement = connection.prepare(sql).unwrap();
                let rows = statement.query_map([], |row| row.get::<_, String>(0)).unwrap();
                rows.map(Result::unwrap).collect()
            }
            Self::Postgres(postgres) => postgres.query(sql).lines().map(str::to_owned).collect(),
        }
    }
}
