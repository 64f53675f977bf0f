//! Finding the rows a warehouse refuses. When a batch fails with a data
//! error ([`SinkError::Refused`]), the rows at fault are found by bisection
//! with probe transactions that are always rolled back (about 2·log2(n)
//! probes for one bad row in n), so they can go to `relay_rejects` with the
//! warehouse's own error text while every other row loads in the batch's
//! one transaction. Never writes anything that stays.

use crate::sink::{Sink, SinkError};
use crate::transform::Row;

/// Indices of the rows the warehouse refuses on their own, with why. Rows
/// that are refused only together (two rows breaking a unique constraint
/// between them) are found by growing a prefix until it fails: the row that
/// makes it fail is the one refused. An outage during the search is
/// returned as it is; the caller tries again.
pub async fn refused_rows(sink: &mut Sink, rows: &[Row]) -> Result<Vec<(usize, String)>, SinkError> {
    let mut refused = Vec::new();
    let mut ranges = vec![(0, rows.len())];
    while let Some((start, end)) = ranges.pop() {
        if start == end {
            continue;
        }
        match sink.probe(rows[start..end].to_vec()).await {
            Ok(()) => {}
            Err(SinkError::Refused(reason)) if end - start == 1 => refused.push((start, reason)),
            Err(SinkError::Refused(_)) => {
                let middle = start + (end - start) / 2;
                ranges.push((middle, end));
                ranges.push((start, middle));
            }
            Err(other) => return Err(other),
        }
    }
    if refused.is_empty() {
        for end in 1..=rows.len() {
            match sink.probe(rows[..end].to_vec()).await {
                Ok(()) => {}
                Err(SinkError::Refused(reason)) => {
                    refused.push((end - 1, format!("{reason} (together with an earlier row of its batch)")));
                    break;
                }
                Err(other) => return Err(other),
            }
        }
    }
    refused.sort_by_key(|(index, _)| *index);
    Ok(refused)
}
