//! Checking a table the loader did not make against its configuration, at
//! start: every configured column (and `dedup_key`) must exist with a type
//! the rows are written as (binary COPY writes bytes by the configured type,
//! so a `bigint` column configured as `double` would store garbage), and
//! `dedup_key` must carry a unique index (without one, duplicates load
//! silently). A mismatch is a [`SinkError::Setup`] naming table, column and
//! both types. Reads nothing itself: each sink passes what its catalog says.

use super::{column_types, SinkError};
use crate::table::{ColumnType, TableSpec};

/// A warehouse's view of one column: its name and declared type, lowercase.
pub struct ActualColumn {
    pub name: String,
    pub declared_type: String,
}

/// Which warehouse's type names `declared_type` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Whether a column declared `declared` can hold values written as `configured`.
fn compatible(dialect: Dialect, configured: ColumnType, declared: &str) -> bool {
    match dialect {
        // PostgreSQL's binary COPY needs the exact type (varchar and text share a format).
        Dialect::Postgres => match configured {
            ColumnType::Text => matches!(declared, "text" | "character varying"),
            ColumnType::Bigint => declared == "bigint",
            ColumnType::Double => declared == "double precision",
            ColumnType::Boolean => declared == "boolean",
            ColumnType::Timestamptz => declared == "timestamp with time zone",
            ColumnType::Uuid => declared == "uuid",
            ColumnType::Json => declared == "jsonb",
        },
        // SQLite stores any value in any column; its type affinity (by the
        // rules of its datatype3 page, in their order) decides how: a
        // configured number must not land in a TEXT column, nor text in an
        // INTEGER, REAL or NUMERIC one (NUMERIC, which `JSON`, `DATETIME`
        // or `DECIMAL` declare, turns the text 1.50 into the number 1.5).
        Dialect::Sqlite => {
            let integer = declared.contains("int");
            let text = !integer && ["char", "clob", "text"].iter().any(|t| declared.contains(t));
            let blob = !integer && !text && (declared.contains("blob") || declared.is_empty());
            let real = !integer && !text && !blob && ["real", "floa", "doub"].iter().any(|t| declared.contains(t));
            match configured {
                ColumnType::Bigint | ColumnType::Boolean => integer,
                ColumnType::Double => real,
                ColumnType::Text | ColumnType::Uuid | ColumnType::Json | ColumnType::Timestamptz => text || blob,
            }
        }
    }
}

/// Checks `actual` (the table's columns) and whether `dedup_key` has a
/// unique index of its own against `config`.
pub fn check(
    config: &TableSpec,
    dialect: Dialect,
    actual: &[ActualColumn],
    dedup_key_unique: bool,
) -> Result<(), SinkError> {
    let table = &config.table;
    if actual.is_empty() {
        return Err(SinkError::Setup(format!(
            "table {table} does not exist; create it or set create_table = true"
        )));
    }
    let find = |name: &str| actual.iter().find(|c| c.name == name);
    let expected = column_types(config)
        .into_iter()
        .chain(std::iter::once(("dedup_key".to_owned(), ColumnType::Text)));
    for (name, configured) in expected {
        let Some(column) = find(&name) else {
            return Err(SinkError::Setup(format!(
                "table {table} has no column {name} (configured as {configured:?})"
            )));
        };
        if !compatible(dialect, configured, &column.declared_type) {
            return Err(SinkError::Setup(format!(
                "table {table}: column {name} is {} in the table but configured as {configured:?} ({}); \
                 change the column or the configuration",
                column.declared_type,
                match dialect {
                    Dialect::Postgres => configured.postgres(),
                    Dialect::Sqlite => configured.sqlite(),
                }
            )));
        }
    }
    if !dedup_key_unique {
        return Err(SinkError::Setup(format!(
            "table {table}: dedup_key has no unique index, so duplicates would load; \
             CREATE UNIQUE INDEX {table}_dedup_key ON {table} (dedup_key)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LoaderConfig;
    use crate::table::{ColumnSpec, TimeFormat};

    fn config() -> TableSpec {
        let mut config = LoaderConfig::new(vec!["t".into()], "g", "w", "events");
        config.columns = vec![ColumnSpec {
            name: "amount".into(),
            pointer: "/amount".into(),
            column_type: ColumnType::Bigint,
            nullable: true,
            time_format: TimeFormat::default(),
        }];
        config.default_table().unwrap()
    }

    fn columns(amount: &str) -> Vec<ActualColumn> {
        [("amount", amount), ("dedup_key", "text")]
            .iter()
            .map(|(name, declared)| ActualColumn {
                name: name.to_string(),
                declared_type: declared.to_string(),
            })
            .collect()
    }

    #[test]
    fn a_column_of_another_type_names_table_column_and_both_types() {
        let error = check(&config(), Dialect::Postgres, &columns("double precision"), true).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("events")
                && text.contains("amount")
                && text.contains("double precision")
                && text.contains("Bigint"),
            "{text}"
        );
        assert!(check(&config(), Dialect::Postgres, &columns("bigint"), true).is_ok());
        assert!(check(&config(), Dialect::Sqlite, &columns("real"), true).is_err());
        assert!(check(&config(), Dialect::Sqlite, &columns("integer"), true).is_ok());
    }

    #[test]
    fn sqlite_text_columns_need_text_affinity_so_number_like_text_stays_text() {
        let mut config = config();
        config.columns[0].column_type = ColumnType::Json;
        for (declared, fits) in [
            ("text", true),
            ("varchar(40)", true),
            ("", true),
            ("blob", true),
            ("json", false),
            ("numeric", false),
            ("datetime", false),
            ("real", false),
            ("integer", false),
        ] {
            let outcome = check(&config, Dialect::Sqlite, &columns(declared), true);
            assert_eq!(outcome.is_ok(), fits, "{declared:?}: {outcome:?}");
        }
    }

    #[test]
    fn a_missing_unique_index_or_table_is_refused() {
        assert!(check(&config(), Dialect::Postgres, &columns("bigint"), false)
            .unwrap_err()
            .to_string()
            .contains("unique index"));
        assert!(check(&config(), Dialect::Postgres, &[], true)
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
    }
}
