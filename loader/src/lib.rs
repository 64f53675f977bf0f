//! relay-loader: consumes topics and writes rows, rejects and the next
//! offsets in ONE warehouse transaction per micro-batch, so killing it at
//! any instant neither loses nor duplicates a row (`proto-spec/LOADER.md`).
//!
//! # Layout
//! - [`config`]: what to load where: columns (JSON pointer + type), metadata
//!   columns, the dedup key, batch bounds.
//! - [`format`]: a record's value (JSON, a text line, a line matched by a
//!   regex) into one event object.
//! - [`event`], [`document`], [`scan`], [`leaf`]: an event as the loader reads it: a
//!   JSON event checked and read by pointer as its text, never built into
//!   a tree.
//! - [`table`]: one target table's shape (columns, their types, metadata
//!   columns, the dedup key), below both `config` and `route`.
//! - [`route`]: which table an event goes to (`[[load.route]]`).
//! - [`source`]: a record's line source from the sender's headers, either
//!   form (dedup key, `source_*` metadata cells).
//! - [`transform`]: one record into a typed row of its table, a reject, or
//!   skipped by rule.
//! - [`values`]: exact conversions of written values (RFC 3339 to
//!   microseconds, numbers a double holds, json kept as its text).
//! - [`sink`]: the warehouse: SQLite (rusqlite, WAL) or PostgreSQL (binary
//!   COPY into a staging table, then insert ignoring duplicates), with the
//!   offsets compare-and-set that fences a stale loader.
//! - [`isolate`]: finding the rows a warehouse refuses in a refused batch.
//! - [`loader`]: the loop: consume, batch, transform, write with retries,
//!   resume from the warehouse's offsets on every assignment.
//! - [`metrics`]: Prometheus counters, transaction latency and lag per partition.
//!
//! Layers look only down: loader → (consumer, sink) ; sink → transform's rows;
//! config → route → table.

pub mod config;
pub mod document;
pub mod event;
pub mod format;
pub mod isolate;
pub mod leaf;
pub mod loader;
pub mod metrics;
pub mod pointer;
pub mod route;
pub mod scan;
pub mod sink;
pub mod source;
pub mod table;
pub mod transform;
pub mod values;
