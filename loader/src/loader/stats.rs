//! The loader's state as `/health` and the logs see it: rows loaded, whether
//! the warehouse is down, and how often the batch in hand failed in a row.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What `/health` and the loader's last log line read (the counts go to
/// the metrics, [`crate::metrics::LoaderMetrics`]).
#[derive(Debug, Default)]
pub struct LoaderStats {
    /// Rows loaded since the start, for the "loader stopped" line.
    pub rows_loaded: AtomicU64,
    /// Rows of committed batches that their tables held already (same
    /// dedup key), for the same line: a backfill over loaded records.
    pub rows_present: AtomicU64,
    /// True from a warehouse call failing as unavailable until one succeeds.
    pub warehouse_down: AtomicBool,
    /// Attempts in a row at the batch in hand that failed while every probe
    /// of its rows passed (0 once a batch commits).
    pub batch_retries: AtomicU64,
}

/// Attempts in a row at one batch, failing while every probe of it passes,
/// after which `/health` says so (503): with the backoff doubling from
/// 100 ms, the fifth comes about 3 s after the first; a batch that fails
/// that often is not a passing hiccup.
pub const BATCH_RETRIES_UNHEALTHY_MIN: u64 = 5;

impl LoaderStats {
    /// This loader's part of `/health`: failing while its warehouse is
    /// unavailable, or while one batch keeps failing.
    pub fn health(&self) -> Result<(), String> {
        if self.warehouse_down.load(Ordering::Relaxed) {
            return Err("warehouse unavailable; retrying".into());
        }
        let retries = self.batch_retries.load(Ordering::Relaxed);
        if retries >= BATCH_RETRIES_UNHEALTHY_MIN {
            return Err(format!(
                "a batch failed {retries} times in a row though the warehouse takes each of its rows; retrying with backoff (see the loader's ERROR lines)"
            ));
        }
        Ok(())
    }
}
