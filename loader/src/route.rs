//! Which table an event goes to. A `[[load]]` section may hold routes
//! (`[[load.route]]`), each a condition on the event and a table of its own
//! (columns, dedup key, create setting); the section's own `table`, when
//! set, is the default that takes what no route matched. First match wins.
//! A route with `discard = true` (and no table) drops what it matches on
//! purpose: counted apart (`relay_loader_records_discarded_total`), so the
//! unrouted alert stays for events nobody planned for. An event no route
//! takes and no default exists for is skipped by rule: counted
//! (`relay_loader_records_unrouted_total`), never rejected. With
//! `only_table`, every route is still evaluated in order, but only the rows
//! of that one table are written (a backfill of a table added later).

use crate::table::{whole_event_columns, ColumnSpec, MetadataColumn, TableSpec};
use serde::Deserialize;
use serde_json::Value;

/// `[[load.route]]`: events matching `when` are loaded into `table`, or
/// with `discard = true` dropped on purpose (counted, never loaded).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The route's table (empty for a discard route).
    #[serde(default)]
    pub table: String,
    pub when: Condition,
    /// Drop what matches on purpose (a route without a table).
    #[serde(default)]
    pub discard: bool,
    #[serde(default)]
    pub columns: Vec<ColumnSpec>,
    #[serde(default)]
    pub metadata: Vec<MetadataColumn>,
    #[serde(default = "crate::table::dedup_key_default")]
    pub dedup_key: String,
    #[serde(default = "crate::table::yes")]
    pub create_table: bool,
}

impl RouteConfig {
    /// A discard route has no table and no columns; any other route has a table.
    pub fn validate(&self) -> Result<(), String> {
        let name = if self.discard {
            "discard route".to_owned()
        } else {
            format!("route to table {}", self.table)
        };
        self.when.validate().map_err(|e| format!("{name}: {e}"))?;
        match (self.discard, self.table.is_empty()) {
            (false, true) => Err(format!(
                "route (pointer {:?}): no table (set table, or discard = true to drop these events on purpose)",
                self.when.pointer
            )),
            (true, false) => Err(format!(
                "discard route (pointer {:?}): has table {:?}; a discard route loads nothing (remove table, or discard)",
                self.when.pointer, self.table
            )),
            (true, true) if !self.columns.is_empty() || !self.metadata.is_empty() => Err(format!(
                "discard route (pointer {:?}): has columns; a discard route loads nothing",
                self.when.pointer
            )),
            _ => Ok(()),
        }
    }

    /// The route's table; without columns it keeps the whole event (see
    /// [`crate::table::WHOLE_EVENT_COLUMN`]).
    pub fn spec(&self) -> TableSpec {
        let (columns, metadata) = whole_event_columns(&self.columns, &self.metadata);
        TableSpec {
            table: self.table.clone(),
            columns,
            metadata,
            dedup_key: self.dedup_key.clone(),
            create_table: self.create_table,
        }
    }
}

/// A test of the value at `pointer`: exactly one of `equals`, `in`, `exists`.
/// A number or boolean also matches its text (`"200"` equals `200`), since
/// text and regex formats carry every field as text.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub pointer: String,
    #[serde(default)]
    pub equals: Option<Value>,
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<Value>>,
    #[serde(default)]
    pub exists: Option<bool>,
}

fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(_) | Value::Bool(_), Value::String(text)) => text.as_str() == expected.to_string().as_str(),
        (Value::String(text), Value::Number(_) | Value::Bool(_)) => text.as_str() == actual.to_string().as_str(),
        _ => expected == actual,
    }
}

impl Condition {
    pub fn validate(&self) -> Result<(), String> {
        if !self.pointer.is_empty() && !self.pointer.starts_with('/') {
            return Err(format!("when: pointer {:?} must start with '/'", self.pointer));
        }
        let tests = [self.equals.is_some(), self.one_of.is_some(), self.exists.is_some()];
        if tests.iter().filter(|t| **t).count() != 1 {
            return Err(format!(
                "when (pointer {:?}): give exactly one of equals, in, exists",
                self.pointer
            ));
        }
        Ok(())
    }

    #[cfg(test)]
    pub fn matches(&self, event: &Value) -> bool {
        self.matches_found(crate::pointer::lookup(event, &self.pointer).filter(|v| !v.is_null()))
    }

    /// Whether the value at the condition's pointer (`None`: missing or
    /// null) passes the test.
    pub fn matches_found(&self, found: Option<&Value>) -> bool {
        match (&self.equals, &self.one_of, self.exists) {
            (Some(expected), _, _) => found.is_some_and(|v| same(expected, v)),
            (_, Some(options), _) => found.is_some_and(|v| options.iter().any(|o| same(o, v))),
            (_, _, Some(exists)) => found.is_some() == exists,
            _ => false,
        }
    }
}

/// Where one event goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    /// The table at this index of [`Router::tables`].
    Table(usize),
    /// No route took it and there is no default table.
    Unrouted,
    /// A `discard = true` route took it: dropped on purpose.
    Discarded,
    /// Its table is not the one `only_table` loads.
    OtherTable,
}

/// Where a route sends what it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The table at this index of [`Router::tables`].
    Table(usize),
    Discard,
}

/// The routes of one loader, compiled.
#[derive(Debug, Clone)]
pub struct Router {
    tables: Vec<TableSpec>,
    /// In order: each route's condition (`None` for the default table,
    /// last) and its target.
    routes: Vec<(Option<Condition>, Target)>,
    only: Option<usize>,
}

impl Router {
    /// `routes` in order, then the `default` table (if any); with
    /// `only_table`, only that table's rows are written.
    pub fn new(routes: &[RouteConfig], default: Option<TableSpec>, only_table: Option<&str>) -> Router {
        let mut tables = Vec::new();
        let mut compiled = Vec::new();
        for route in routes {
            let target = if route.discard {
                Target::Discard
            } else {
                tables.push(route.spec());
                Target::Table(tables.len() - 1)
            };
            compiled.push((Some(route.when.clone()), target));
        }
        if let Some(default) = default {
            tables.push(default);
            compiled.push((None, Target::Table(tables.len() - 1)));
        }
        let only = only_table.and_then(|name| tables.iter().position(|t| t.table == name));
        Router {
            tables,
            routes: compiled,
            only,
        }
    }

    /// Every pointer an event is read at: the route conditions', then each
    /// table's columns' and dedup key's.
    pub fn pointers(&self) -> impl Iterator<Item = &str> {
        let conditions = self.routes.iter().filter_map(|(condition, _)| condition.as_ref());
        let tables = self.tables.iter().flat_map(|table| {
            let columns = table.columns.iter().map(|column| column.pointer.as_str());
            columns.chain([table.dedup_key.as_str()])
        });
        conditions.map(|condition| condition.pointer.as_str()).chain(tables)
    }

    /// Every table, routes in order, then the default.
    pub fn tables(&self) -> &[TableSpec] {
        &self.tables
    }

    #[cfg(test)]
    pub fn route(&self, event: &Value) -> Routed {
        self.route_by(|condition| condition.matches(event))
    }

    /// Where an event goes, by whether it `matches` each condition in turn.
    pub fn route_by(&self, mut matches: impl FnMut(&Condition) -> bool) -> Routed {
        let Some((_, target)) = self
            .routes
            .iter()
            .find(|(condition, _)| condition.as_ref().is_none_or(&mut matches))
        else {
            return Routed::Unrouted;
        };
        let Target::Table(index) = *target else {
            return Routed::Discarded;
        };
        match self.only {
            Some(only) if only != index => Routed::OtherTable,
            _ => Routed::Table(index),
        }
    }

    /// The table an event that cannot be parsed was meant for: the default,
    /// else the only route, else `"(unrouted)"`.
    pub fn table_for_unparsed(&self) -> &str {
        let default = self
            .routes
            .iter()
            .find_map(|(condition, target)| match (condition, target) {
                (None, Target::Table(index)) => Some(*index),
                _ => None,
            });
        match default {
            Some(default) => &self.tables[default].table,
            None if self.tables.len() == 1 => &self.tables[0].table,
            None => "(unrouted)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn condition(text: &str) -> Condition {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn equals_in_and_exists() {
        let purchase = json!({"type": "purchase", "status": "200", "amount": 5});
        assert!(condition("pointer = \"/type\"\nequals = \"purchase\"").matches(&purchase));
        assert!(!condition("pointer = \"/type\"\nequals = \"login\"").matches(&purchase));
        assert!(condition("pointer = \"/type\"\nin = [\"login\", \"purchase\"]").matches(&purchase));
        assert!(
            condition("pointer = \"/status\"\nequals = 200").matches(&purchase),
            "text 200 is 200"
        );
        assert!(condition("pointer = \"/amount\"\nequals = \"5\"").matches(&purchase));
        assert!(condition("pointer = \"/amount\"\nexists = true").matches(&purchase));
        assert!(condition("pointer = \"/refund\"\nexists = false").matches(&purchase));
        assert!(!condition("pointer = \"/refund\"\nequals = \"x\"").matches(&purchase));
    }

    fn route(text: &str) -> RouteConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_discard_route_drops_what_it_matches_and_keeps_the_order() {
        let routes = [
            route("table = \"matches\"\nwhen = { pointer = \"/type\", equals = \"match\" }"),
            route("discard = true\nwhen = { pointer = \"/type\", in = [\"heartbeat\", \"match\"] }"),
            route("table = \"beats\"\nwhen = { pointer = \"/type\", equals = \"heartbeat\" }"),
        ];
        let router = Router::new(&routes, None, None);
        let names: Vec<&str> = router.tables().iter().map(|t| t.table.as_str()).collect();
        assert_eq!(names, ["matches", "beats"]);
        assert_eq!(router.route(&json!({"type": "match"})), Routed::Table(0));
        assert_eq!(router.route(&json!({"type": "heartbeat"})), Routed::Discarded);
        assert_eq!(router.route(&json!({"type": "login"})), Routed::Unrouted);
        let only = Router::new(&routes, None, Some("matches"));
        assert_eq!(only.route(&json!({"type": "heartbeat"})), Routed::Discarded);
    }

    #[test]
    fn a_discard_route_has_no_table_and_a_table_route_has_one() {
        let when = "when = { pointer = \"/t\", exists = true }";
        assert!(route(&format!("discard = true\n{when}")).validate().is_ok());
        assert!(route(&format!("table = \"a\"\n{when}")).validate().is_ok());
        let no_table = route(when).validate().unwrap_err();
        assert!(no_table.contains("discard = true"), "{no_table}");
        assert!(route(&format!("discard = true\ntable = \"a\"\n{when}"))
            .validate()
            .is_err());
    }

    #[test]
    fn a_condition_tests_one_thing() {
        assert!(condition("pointer = \"/t\"\nequals = 1\nexists = true")
            .validate()
            .is_err());
        assert!(condition("pointer = \"/t\"").validate().is_err());
        assert!(condition("pointer = \"t\"\nexists = true").validate().is_err());
    }
}
