//! A batch the warehouse refused for the data of some rows: the rows at
//! fault are found ([`crate::isolate`]) and moved to the batch's rejects
//! with the warehouse's reason, so the rest loads; when no row is at fault
//! the batch waits ([`Loader::back_off_stuck_batch`]) and is tried again.
//! Never drops a row that is not in the rejects.

use super::{Loader, LoaderError};
use crate::isolate;
use crate::sink::Batch;
use crate::transform::reject_of;
use relay_client::records::RecordView;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Loader {
    /// The warehouse refused the batch for the data of some rows: find them
    /// (probe transactions, rolled back), and move each to the batch's
    /// rejects with the warehouse's reason, so the rest loads.
    pub(super) async fn reject_refused_rows(
        &mut self,
        batch: &mut Batch,
        sources: &mut Vec<RecordView<'_>>,
        reason: &str,
    ) -> Result<(), LoaderError> {
        // A batch already known to fail with no row at fault says so in
        // its own ERROR once a minute, not once per attempt.
        if self.stats.batch_retries.load(Ordering::Relaxed) == 0 {
            tracing::warn!(rows = batch.rows.len(), %reason, "the warehouse refused rows of a batch; isolating them into relay_rejects");
        } else {
            tracing::debug!(rows = batch.rows.len(), %reason, "the batch in hand failed again; isolating once more");
        }
        let rows = Arc::new(std::mem::take(&mut batch.rows));
        let refused = self
            .retry("isolating refused rows", |sink, _| {
                let rows = Arc::clone(&rows);
                Box::pin(async move { isolate::refused_rows(sink, &rows).await })
            })
            .await;
        batch.rows = Arc::try_unwrap(rows).expect("the rows are not shared after isolation");
        let refused = refused?;
        if refused.is_empty() {
            // Every subset loads: the refusal was not about these rows (the
            // warehouse changed under us, a trigger, a check at commit).
            // Write the batch again, after a pause that grows.
            self.back_off_stuck_batch(batch.rows.len(), reason).await;
            return Ok(());
        }
        for (index, why) in refused.iter().rev() {
            let row = batch.rows.remove(*index);
            let table = &self.loading.tables()[row.table].table;
            let record = sources.remove(*index);
            tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, reason = %why, "row refused by the warehouse; recorded in relay_rejects");
            batch
                .rejects
                .push(reject_of(&record, table, format!("refused by the warehouse: {why}")));
        }
        Ok(())
    }
}
