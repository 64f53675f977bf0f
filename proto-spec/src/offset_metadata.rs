//! What a loader tells readers of its committed offsets on the broker, in
//! Kafka's per-partition metadata string: that the committer is a Relay
//! loader (whose position lives in its warehouse: a broker-side offset reset
//! would be ignored), and how many gaps (records deleted by retention before
//! they were loaded, rows of `relay_gaps`) nobody has acknowledged yet.
//! `relay lag`, `relay status` and `relay groups reset-offsets` read it
//! without access to the warehouse. Layout: `relay-loader gaps=<count>`; an
//! empty or foreign string is another consumer's. `proto-spec/LOADER.md`
//! ("Gaps") gives the same.

const LOADER_PREFIX: &str = "relay-loader";
const GAPS_FIELD: &str = " gaps=";

/// The metadata string of a loader's partition with `unacknowledged` open gaps.
pub fn encode_gaps(unacknowledged: i64) -> String {
    format!("{LOADER_PREFIX}{GAPS_FIELD}{}", unacknowledged.max(0))
}

/// Whether the offset was committed by a Relay loader.
pub fn is_loader(metadata: &str) -> bool {
    metadata.starts_with(LOADER_PREFIX)
}

/// Unacknowledged gaps recorded in a metadata string (0 when it says none).
pub fn unacknowledged_gaps(metadata: &str) -> i64 {
    metadata
        .strip_prefix(LOADER_PREFIX)
        .and_then(|rest| rest.strip_prefix(GAPS_FIELD))
        .and_then(|count| count.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_counts_round_trip_and_anything_else_reads_as_none() {
        assert_eq!(encode_gaps(0), "relay-loader gaps=0");
        assert!(is_loader(&encode_gaps(0)));
        assert!(!is_loader(""));
        assert_eq!(unacknowledged_gaps(&encode_gaps(3)), 3);
        assert_eq!(unacknowledged_gaps(""), 0);
        assert_eq!(unacknowledged_gaps("some other consumer's note"), 0);
    }
}
