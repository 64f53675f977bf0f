//! Wall-clock time in Unix milliseconds, the unit of Kafka timestamps,
//! retention and commit times. A clock before 1970 reads as 0.

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
