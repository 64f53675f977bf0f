//! Wall-clock time as Kafka counts it: milliseconds (and, for warehouse
//! timestamps, microseconds) since the Unix epoch. The one place every crate
//! reads the wall clock; a clock set before 1970 reads as 0.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// Unix microseconds now.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_micros() as i64)
}
