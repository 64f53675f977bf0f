//! The INFO line about records not loaded by rule (unrouted: no route took
//! them, no default table) or on purpose (a `discard = true` route): the
//! first at once, then at most one a minute with the counts since the last,
//! so a stream of skipped events says so without flooding the log.

use std::time::{Duration, Instant};

/// The shortest time between two "records skipped" lines.
pub const SKIPPED_LOG_INTERVAL_MIN: Duration = Duration::from_secs(60);

/// Counts of records skipped since the last line, and when it was logged.
#[derive(Debug, Default)]
pub struct SkippedLog {
    unrouted: u64,
    discarded: u64,
    logged: Option<Instant>,
}

impl SkippedLog {
    /// Counts a committed batch's skipped records; logs when a line is due.
    pub fn add(&mut self, unrouted: u64, discarded: u64) {
        self.unrouted += unrouted;
        self.discarded += discarded;
        if self.logged.is_none_or(|at| at.elapsed() >= SKIPPED_LOG_INTERVAL_MIN) {
            self.log();
        }
    }

    /// Logs what was counted since the last line, if anything (also at a stop).
    pub fn log(&mut self) {
        if self.unrouted == 0 && self.discarded == 0 {
            return;
        }
        let since_s = self.logged.map(|at| at.elapsed().as_secs());
        tracing::info!(
            unrouted = self.unrouted,
            discarded = self.discarded,
            since_s,
            "records skipped: unrouted (no route took them, no default table; relay_loader_records_unrouted_total) \
             and discarded (discard = true routes; relay_loader_records_discarded_total)"
        );
        self.unrouted = 0;
        self.discarded = 0;
        self.logged = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_gather_between_lines() {
        let mut log = SkippedLog::default();
        log.add(2, 1);
        assert_eq!((log.unrouted, log.discarded), (0, 0), "the first line comes at once");
        log.add(3, 4);
        log.add(1, 0);
        assert_eq!((log.unrouted, log.discarded), (4, 4), "within the minute: gathered");
        log.log();
        assert_eq!((log.unrouted, log.discarded), (0, 0));
    }
}
