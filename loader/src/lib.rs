//! relay-loader: consumes topics and writes rows, rejects and the next
//! offsets in ONE warehouse transaction per micro-batch, so killing it at
//! any instant neither loses nor duplicates a row (`proto-spec/LOADER.md`).
//!
//! # Layout
//! - [`config`]: what to load where: columns (JSON pointer + type), metadata
//!   columns, the dedup key, batch bounds.
//! - [`transform`]: one record (a JSON line) into a typed row, or a reject.
//! - [`sink`]: the warehouse: SQLite (rusqlite, WAL) or PostgreSQL (binary
//!   COPY into a staging table, then insert ignoring duplicates), with the
//!   offsets compare-and-set that fences a stale loader.
//! - [`isolate`]: finding the rows a warehouse refuses in a refused batch.
//! - [`loader`]: the loop: consume, batch, transform, write with retries,
//!   resume from the warehouse's offsets on every assignment.
//! - [`metrics`]: Prometheus counters, transaction latency and lag per partition.
//!
//! Layers look only down: loader → (consumer, sink) ; sink → transform's rows.

pub mod config;
pub mod isolate;
pub mod loader;
pub mod metrics;
pub mod sink;
pub mod transform;
