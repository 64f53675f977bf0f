//! What a loader tells readers of its committed offsets on the broker, in
//! Kafka's per-partition metadata string: how many gaps (records deleted by
//! retention before they were loaded, rows of `relay_gaps`) nobody has
//! acknowledged yet. `relay lag` and `relay status` read it without access to
//! the warehouse. Layout: `relay-gaps=<count>`; an empty or foreign string
//! means none. `proto-spec/LOADER.md` ("Gaps") gives the same.

const GAPS_PREFIX: &str = "relay-gaps=";

/// The metadata string of a partition with `unacknowledged` open gaps.
pub fn encode_gaps(unacknowledged: i64) -> String {
    if unacknowledged > 0 {
        format!("{GAPS_PREFIX}{unacknowledged}")
    } else {
        String::new()
    }
}

/// Unacknowledged gaps recorded in a metadata string (0 when it says none).
pub fn unacknowledged_gaps(metadata: &str) -> i64 {
    metadata
        .strip_prefix(GAPS_PREFIX)
        .and_then(|count| count.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_counts_round_trip_and_anything_else_reads_as_none() {
        assert_eq!(encode_gaps(0), "");
        assert_eq!(unacknowledged_gaps(&encode_gaps(3)), 3);
        assert_eq!(unacknowledged_gaps(""), 0);
        assert_eq!(unacknowledged_gaps("some other consumer's note"), 0);
    }
}
