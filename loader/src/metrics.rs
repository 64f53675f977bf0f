//! The loader's Prometheus metrics, by warehouse table: rows loaded and
//! rejected, batches, warehouse errors, the latency of each committed
//! transaction, and lag per partition (the partition's end offset minus the
//! next offset stored in the warehouse, records not yet loaded), and records
//! lost before they were loaded, attempts at a batch that kept failing, and
//! records not loaded by rule (unrouted) or on purpose (discarded).

use metrics::{counter, gauge, histogram, Counter, Histogram};
use std::time::Duration;

pub const ROWS_LOADED: &str = "relay_loader_rows_loaded_total";
pub const ROWS_REJECTED: &str = "relay_loader_rows_rejected_total";
pub const BATCHES: &str = "relay_loader_batches_total";
pub const WAREHOUSE_ERRORS: &str = "relay_loader_warehouse_errors_total";
pub const TRANSACTION_LATENCY: &str = "relay_loader_transaction_latency_seconds";
pub const LAG: &str = "relay_loader_lag";
pub const WAREHOUSE_UP: &str = "relay_loader_warehouse_up";
pub const RECORDS_LOST: &str = "relay_loader_records_lost_total";
pub const FETCH_ERRORS: &str = "relay_loader_fetch_errors_total";
pub const RECORDS_UNROUTED: &str = "relay_loader_records_unrouted_total";
pub const RECORDS_DISCARDED: &str = "relay_loader_records_discarded_total";
pub const BATCH_RETRIES: &str = "relay_loader_batch_retries_total";

/// Help texts for the exposition; call once after installing a recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        ROWS_LOADED,
        Unit::Count,
        "Rows committed to the warehouse table (duplicates ignored by the table count too)."
    );
    describe_counter!(
        ROWS_REJECTED,
        Unit::Count,
        "Records written to relay_rejects instead of the table."
    );
    describe_counter!(BATCHES, Unit::Count, "Transactions committed.");
    describe_counter!(
        BATCH_RETRIES,
        Unit::Count,
        "Attempts at a batch that failed though the warehouse took each of its rows in probes (each retried with backoff)."
    );
    describe_counter!(
        RECORDS_UNROUTED,
        Unit::Count,
        "Records skipped by rule: no route took them and the loader has no default table."
    );
    describe_counter!(
        RECORDS_DISCARDED,
        Unit::Count,
        "Records dropped on purpose by a discard = true route (never loaded, never alerted on)."
    );
    describe_counter!(
        WAREHOUSE_ERRORS,
        Unit::Count,
        "Warehouse calls that failed as unavailable (each retried)."
    );
    describe_histogram!(
        TRANSACTION_LATENCY,
        Unit::Seconds,
        "One batch's warehouse transaction, rows and offsets."
    );
    describe_gauge!(
        LAG,
        Unit::Count,
        "Partition end offset minus the next offset stored in the warehouse."
    );
    describe_counter!(
        FETCH_ERRORS,
        Unit::Count,
        "Fetches from the broker that failed (each retried; ERROR in the log after 30 s of failing)."
    );
    describe_counter!(
        RECORDS_LOST,
        Unit::Count,
        "Records deleted by the broker before this loader loaded them (recorded in relay_gaps), by topic."
    );
    describe_gauge!(
        WAREHOUSE_UP,
        Unit::Count,
        "1 while the warehouse answers, 0 during an outage."
    );
}

/// One loader's handles (label `table`).
pub struct LoaderMetrics {
    table: String,
    pub rows_loaded: Counter,
    pub rows_rejected: Counter,
    pub batches: Counter,
    pub records_unrouted: Counter,
    pub records_discarded: Counter,
    pub warehouse_errors: Counter,
    pub fetch_errors: Counter,
    pub batch_retries: Counter,
    transaction_latency: Histogram,
}

impl LoaderMetrics {
    pub fn new(table: &str) -> Self {
        let label = [("table", table.to_owned())];
        let metrics = Self {
            table: table.to_owned(),
            rows_loaded: counter!(ROWS_LOADED, &label),
            rows_rejected: counter!(ROWS_REJECTED, &label),
            batches: counter!(BATCHES, &label),
            records_unrouted: counter!(RECORDS_UNROUTED, &label),
            records_discarded: counter!(RECORDS_DISCARDED, &label),
            warehouse_errors: counter!(WAREHOUSE_ERRORS, &label),
            fetch_errors: counter!(FETCH_ERRORS, &label),
            batch_retries: counter!(BATCH_RETRIES, &label),
            transaction_latency: histogram!(TRANSACTION_LATENCY, &label),
        };
        // At zero from the start, so an increase() alert sees the first one.
        metrics.batch_retries.increment(0);
        metrics.records_unrouted.increment(0);
        metrics.records_discarded.increment(0);
        metrics
    }

    /// A batch's transaction committed after `elapsed`.
    pub fn committed(&self, elapsed: Duration) {
        self.transaction_latency.record(elapsed.as_secs_f64());
    }

    /// 1 while the warehouse answers, 0 during an outage.
    pub fn warehouse_up(&self, up: bool) {
        gauge!(WAREHOUSE_UP, "table" => self.table.clone()).set(if up { 1.0 } else { 0.0 });
    }

    /// Records of `topic` lost to retention before they were loaded.
    /// Shows `topic`'s lost-records counter at zero from the start.
    pub fn lost_zero(&self, topic: &str) {
        counter!(RECORDS_LOST, "table" => self.table.clone(), "topic" => topic.to_owned()).increment(0);
    }

    pub fn lost(&self, topic: &str, records: i64) {
        counter!(RECORDS_LOST, "table" => self.table.clone(), "topic" => topic.to_owned())
            .increment(records.max(0) as u64);
    }

    pub fn lag(&self, topic: &str, partition: i32, lag: i64) {
        gauge!(LAG, "table" => self.table.clone(), "topic" => topic.to_owned(), "partition" => partition.to_string())
            .set(lag.max(0) as f64);
    }
}
