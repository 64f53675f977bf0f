//! Relay's own rows in a batch's PostgreSQL transaction: its rejects, its
//! gaps, and the offsets compare-and-set that fences a stale loader.

use super::unavailable;
use crate::sink::{Batch, OffsetAdvance, Result};
use std::collections::HashSet;
use tokio_postgres::Transaction;

/// The batch's rejects into relay_rejects (one per source line).
pub(super) async fn insert_rejects(transaction: &Transaction<'_>, group: &str, batch: &Batch) -> Result<()> {
    for reject in &batch.rejects {
        transaction
            .execute(
                "INSERT INTO relay_rejects (target_table, group_id, topic, partition, \"offset\", raw, error, source)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                &[
                    &reject.table,
                    &group,
                    &reject.topic,
                    &reject.partition,
                    &reject.offset,
                    &reject.raw,
                    &reject.error,
                    &reject.source,
                ],
            )
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// The batch's gaps into relay_gaps.
pub(super) async fn insert_gaps(transaction: &Transaction<'_>, group: &str, batch: &Batch) -> Result<()> {
    for gap in &batch.gaps {
        transaction
            .execute(
                "INSERT INTO relay_gaps (group_id, topic, partition, first_offset, last_offset, records)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[
                    &group,
                    &gap.topic,
                    &gap.partition,
                    &gap.first_offset,
                    &gap.last_offset,
                    &gap.records(),
                ],
            )
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Moves each partition's offset from where the loader last stored it;
/// a partition whose row is elsewhere (or already there) is fenced. Two
/// statements whatever the partitions (an UPDATE of the stored ones, an
/// INSERT of the new ones, each over arrays): a batch touching 1,000
/// partitions costs two round trips, not a thousand.
pub(super) async fn advance_offsets(transaction: &Transaction<'_>, group: &str, batch: &Batch) -> Result<()> {
    let (stored, new): (Vec<&OffsetAdvance>, Vec<&OffsetAdvance>) =
        batch.offsets.iter().partition(|offset| offset.previous.is_some());
    let mut moved: HashSet<(String, i32)> = HashSet::with_capacity(batch.offsets.len());
    if !stored.is_empty() {
        let (topics, partitions) = keys(&stored);
        let next: Vec<i64> = stored.iter().map(|offset| offset.next).collect();
        let previous: Vec<i64> = stored.iter().filter_map(|offset| offset.previous).collect();
        let rows = transaction
            .query(
                "UPDATE relay_offsets o SET next_offset = a.next, updated_at = now()
                 FROM unnest($2::text[], $3::int4[], $4::int8[], $5::int8[]) AS a(topic, partition, next, previous)
                 WHERE o.group_id = $1 AND o.topic = a.topic AND o.partition = a.partition
                   AND o.next_offset = a.previous
                 RETURNING o.topic, o.partition",
                &[&group, &topics, &partitions, &next, &previous],
            )
            .await
            .map_err(unavailable)?;
        moved.extend(rows.iter().map(|row| (row.get(0), row.get(1))));
    }
    if !new.is_empty() {
        let (topics, partitions) = keys(&new);
        let next: Vec<i64> = new.iter().map(|offset| offset.next).collect();
        let rows = transaction
            .query(
                "INSERT INTO relay_offsets (group_id, topic, partition, next_offset)
                 SELECT $1, a.topic, a.partition, a.next
                 FROM unnest($2::text[], $3::int4[], $4::int8[]) AS a(topic, partition, next)
                 ON CONFLICT DO NOTHING RETURNING topic, partition",
                &[&group, &topics, &partitions, &next],
            )
            .await
            .map_err(unavailable)?;
        moved.extend(rows.iter().map(|row| (row.get(0), row.get(1))));
    }
    for offset in &batch.offsets {
        // The key is looked up by value: one small allocation per partition.
        let key = (offset.topic.clone(), offset.partition);
        offset.applied(u64::from(moved.contains(&key)))?;
    }
    Ok(())
}

/// The topics and partitions of `offsets`, as the statements' arrays.
fn keys(offsets: &[&OffsetAdvance]) -> (Vec<String>, Vec<i32>) {
    offsets
        .iter()
        .map(|offset| (offset.topic.clone(), offset.partition))
        .unzip()
}
