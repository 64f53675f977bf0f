//! Relay's own rows in a batch's PostgreSQL transaction: its rejects, its
//! gaps, and the offsets compare-and-set that fences a stale loader.

use super::unavailable;
use crate::sink::{Batch, Result};
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
/// a partition whose row is elsewhere (or already there) is fenced.
pub(super) async fn advance_offsets(transaction: &Transaction<'_>, group: &str, batch: &Batch) -> Result<()> {
    for offset in &batch.offsets {
        let changed = match offset.previous {
            Some(previous) => transaction
                .execute(
                    "UPDATE relay_offsets SET next_offset = $1, updated_at = now()
                     WHERE group_id = $2 AND topic = $3 AND partition = $4 AND next_offset = $5",
                    &[&offset.next, &group, &offset.topic, &offset.partition, &previous],
                )
                .await
                .map_err(unavailable)?,
            None => transaction
                .execute(
                    "INSERT INTO relay_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                    &[&group, &offset.topic, &offset.partition, &offset.next],
                )
                .await
                .map_err(unavailable)?,
        };
        offset.applied(changed)?;
    }
    Ok(())
}
